#!/usr/bin/env bash
# Analysis workspace (issue 14): a synthetic capture of 1,000,000 samples
# over 100,000 distinct stacks, 60 frames deep on average
# (scripts/bench/workspace), served by scorch and opened in headless
# Chromium at 1920x1080. Figures, each against the SVG route in the same
# run: the server's tree.json and flamegraph.svg (first answer, then with
# the view's aggregation reused) and their compressed size; the page's
# first painted flame graph, hover, zoom, search and transform redraws and
# the JS heap. Both pages' answers are in the server's render cache by then
# (the curl runs), so the browser figures are the browser's own work plus
# the transfer. Targets: first paint under 1 s, redraws under 100 ms,
# tree.json under 200 ms and 2 MB on the wire, heap under 200 MB; each
# figure's line ends with its verdict (ok, or MISSED). The server runs
# with its defaults (memory limit, render cache, upload size) unless
# SERVE_FLAGS says otherwise. Shared CI machines are slow and noisy: the
# ratios are the comparable figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SCORCH=${SCORCH:-bin/scorch}
SAMPLES=${SAMPLES:-1000000}
STACKS=${STACKS:-100000}
DEPTH=${DEPTH:-60}
ROUNDS=${ROUNDS:-5}
# Extra flags of scorch serve, e.g. SERVE_FLAGS="--memory-limit 2GiB";
# both routes run under the same ones.
read -r -a serve_flags <<<"${SERVE_FLAGS:-}"
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
server=
cleanup() {
	[[ -n $server ]] && kill "$server" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go run ./scripts/bench/workspace -samples "$SAMPLES" -stacks "$STACKS" -depth "$DEPTH" >"$tmp/bench.scorch"
"$SCORCH" serve --listen 127.0.0.1:0 --data "$tmp/data" ${serve_flags[@]+"${serve_flags[@]}"} >"$tmp/serve.out" 2>"$tmp/serve.log" &
server=$!
base=
for _ in $(seq 100); do
	base=$(sed -n 's|^scorch: serving on \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")
	[[ -n $base ]] && break
	sleep 0.1
done
[[ -n $base ]] || { echo "bench-workspace: the server did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }
id=$(curl -sf --data-binary @"$tmp/bench.scorch" -H 'Content-Type: application/octet-stream' "$base/api/imports" |
	sed -n 's/^  "id": "\([^"]*\)".*/\1/p')
[[ -n $id ]] || { echo "bench-workspace: import failed" >&2; exit 1; }
echo "capture: $SAMPLES samples, $STACKS stacks, ~$DEPTH frames deep ($(du -h "$tmp/bench.scorch" | cut -f1) file); serve ${SERVE_FLAGS:-with its defaults}"

# time_of URL: seconds and compressed bytes of one answer.
# A busy server answers 503 with Retry-After, as the page's requests are
# retried: curl retries too (the figure is then the last attempt's).
time_of() { curl -sf --retry 5 -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total} %{size_download}' "$1"; }
load=$(time_of "$base/api/captures/$id/folded?pid=4000000000" | cut -d' ' -f1)
printf 'load the capture (first request): %.0f ms\n' "$(echo "$load * 1000" | bc -l)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
tree_first=$(time_of "$base/api/captures/$id/tree.json")
svg_first=$(time_of "$base/api/captures/$id/flamegraph.svg?width=1920")
for i in 1 2 3; do
	time_of "$base/api/captures/$id/tree.json?nodes=$((20000 + i))" >>"$tmp/tree"; echo >>"$tmp/tree"
	time_of "$base/api/captures/$id/flamegraph.svg?width=$((1920 + i))" >>"$tmp/svg"; echo >>"$tmp/svg"
done
tree_warm=$(cut -d' ' -f1 "$tmp/tree" | median)
svg_warm=$(cut -d' ' -f1 "$tmp/svg" | median)
ms() { echo "$1 * 1000" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
read -r tf tb <<<"$tree_first"
read -r sf sb <<<"$svg_first"
# verdict FIGURE LIMIT: ok when FIGURE < LIMIT.
verdict() { if (($(echo "$1 < $2" | bc -l))); then echo ok; else echo MISSED; fi; }
printf 'server tree.json, first:        %6.0f ms, %7d bytes gzipped (svg %6.0f ms, %7d bytes; ratio %s time, %s size) target <200 ms, <2 MB: %s, %s\n' \
	"$(ms "$tf")" "$tb" "$(ms "$sf")" "$sb" "$(ratio "$tf" "$sf")" "$(ratio "$tb" "$sb")" "$(verdict "$tf" 0.2)" "$(verdict "$tb" 2000000)"
printf 'server tree.json, view reused:  %6.0f ms (svg, every answer rendered: %6.0f ms; ratio %s) target <200 ms: %s\n' \
	"$(ms "$tree_warm")" "$(ms "$svg_warm")" "$(ratio "$tree_warm" "$svg_warm")" "$(verdict "$tree_warm" 0.2)"
# After a transform: what the page asks at once (tree, table, health)
# until the last answer, against the SVG of the same view. The merged
# frames are wide ones deeper than those the page merges (depth 2-6), so
# that the page's answers are not cached by then.
for fn in fn_7_0 fn_8_0 fn_9_0; do
	t0=$(date +%s.%N)
	pids=()
	time_of "$base/api/captures/$id/tree.json?t=merge:$fn" >/dev/null & pids+=($!)
	time_of "$base/api/captures/$id/functions.json?limit=2000&t=merge:$fn" >/dev/null & pids+=($!)
	time_of "$base/api/captures/$id/summary.json?t=merge:$fn" >/dev/null & pids+=($!)
	wait "${pids[@]}" || echo "a request after merge:$fn failed"
	echo "$(date +%s.%N) - $t0" | bc -l >>"$tmp/ttree"
	time_of "$base/api/captures/$id/flamegraph.svg?width=1920&t=merge:$fn" | cut -d' ' -f1 >>"$tmp/tsvg"
done
tt=$(median <"$tmp/ttree")
ts=$(median <"$tmp/tsvg")
printf 'server after a transform:       %6.0f ms for tree, functions and summary (svg %6.0f ms; ratio %s) target <100 ms: %s\n' \
	"$(ms "$tt")" "$(ms "$ts")" "$(ratio "$tt" "$ts")" "$(verdict "$tt" 0.1)"
rss=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
printf 'server peak RSS so far:         %6.0f MiB\n' "$(echo "$rss / 1024" | bc -l)"

if ! node -e 'require.resolve("playwright-core")' 2>/dev/null && [[ ! -d internal/browser/node_modules/playwright-core ]]; then
	echo "browser figures skipped: playwright-core is not installed (npm ci in internal/browser)"
	exit 0
fi
if [[ ! -x /usr/bin/chromium ]]; then
	echo "browser figures skipped: /usr/bin/chromium is missing"
	exit 0
fi
if ! ROUNDS=$ROUNDS node internal/browser/bench-workspace.mjs "$base" "$id" >"$tmp/browser.json" 2>"$tmp/browser.err"; then
	echo "browser figures failed:" >&2
	cat "$tmp/browser.err" >&2
	exit 0
fi
# BENCH_JSON=FILE keeps the browser's figures, each round's too.
[[ -n ${BENCH_JSON:-} ]] && cp "$tmp/browser.json" "$BENCH_JSON"
python3 - "$tmp/browser.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w, s = r["workspace"], r["svg"]
def line(name, key, limit, unit="ms"):
    a, b = w.get(key), s.get(key)
    ratio = f"ratio {a / b:.2f}" if a is not None and b else "no svg figure"
    bs = f"{b:.0f} {unit}" if b is not None else "n/a"
    av = f"{a:.0f} {unit}" if a is not None else "n/a"
    verdict = "n/a" if a is None else "ok" if a < limit else "MISSED"
    print(f"browser {name:<22} {av:>9} (svg {bs}; {ratio}) target <{limit} {unit}: {verdict}")
line("first paint, 1st visit", "first_paint_first_ms", 1000)
line("first paint, median", "first_paint_ms", 1000)
line("hover", "hover_ms", 100)
line("zoom", "zoom_ms", 100)
line("search", "search_ms", 100)
line("transform (with server)", "transform_ms", 100)
line("JS heap", "heap_mb", 200, "MB")
st = w.get("transform_steps")
if st:
    print("browser transform, steps (median ms from the click): data in %s, laid out %s, drawn %s, table %s" % tuple("n/a" if x is None else f"{x:.0f}" for x in st))
for name, (sent, first, last) in (w.get("transform_requests") or {}).items():
    print(f"browser transform, {name + '.json':<15} sent at {sent:.0f} ms, first byte {first:.0f} ms, last {last:.0f} ms (medians from the click)")
print(f"frames drawn: workspace {w.get('frames_drawn')}, svg {s.get('frames_drawn')}; search: {w.get('search_info')}")
for e in r["errors"]:
    print("browser error:", e)
PY
exit 0
