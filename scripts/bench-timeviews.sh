#!/usr/bin/env bash
# Time views (issue 15): threads.json and stackchart.json of the synthetic
# 60 s, 999 Hz, 2-CPU capture of 50 threads (internal/synthcapture; `go run
# ./internal/synthcapture/gen -o FILE` writes the same capture for the
# browser's figures), through the HTTP service: uncached (computed from the
# decoded capture), cached (the render cache), cold (the capture file
# decoded too). Baseline: heatmap.json of the same capture, uncached, in
# this run. Targets: threads.json within 100 ms, cached or not; a stack
# chart of one thread over 10 s within 100 ms on the server (the page's
# budget to paint it is 300 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'Timeviews' -benchtime "${BENCHTIME:-10x}" -count "${COUNT:-3}" ./web/)
# The fastest of the runs: the machine is shared, noise only adds time.
ns() { awk -v name="BenchmarkTimeviews$1-" 'index($1, name) == 1 && (m == "" || $3 < m) {m = $3} END {print m}' <<<"$out"; }
bytes() { awk -v name="BenchmarkTimeviews$1-" 'index($1, name) == 1 {b = $5} END {print b}' <<<"$out"; }
report() { # name, target ms (0: no target)
	local t b n
	t=$(ns "$1")
	b=$(ns HeatmapUncached)
	n=$(bytes "$1")
	[[ -n $t && -n $b ]] || { echo "$out"; echo "bench-timeviews: $1 or HeatmapUncached missing" >&2; exit 1; }
	awk -v n="$1" -v t="$t" -v b="$b" -v tgt="$2" -v bytes="$n" 'BEGIN {
		verdict = "(no target)"
		if (tgt > 0) verdict = sprintf("target <= %d ms: %s", tgt, (t/1e6 <= tgt ? "ok" : "OVER"))
		printf "%-24s %8.2f ms  x%.2f heatmap.json (%.2f ms)  %7.1f KiB JSON  %s\n", n, t/1e6, t/b, b/1e6, bytes/1024, verdict
	}'
}
report ThreadsUncached 100
report ThreadsCached 100
report ThreadsCold 0
report ThreadsFocusUncached 100
report ThreadsOffCPUUncached 100
report Stackchart10sUncached 100
report Stackchart60sUncached 0

# The browser's figures (timeui): the same capture, written by the
# generator, served by scorch and opened in headless Chromium at 1920x1080.
# A brush across the tracks until every view is redrawn (graph, table,
# sandwich, tracks, heatmap), target 150 ms; the stack chart of the busiest
# thread over 10 s from the key that steps to it until it is painted,
# target 300 ms; each against the page fetching heatmap.json uncached in
# this run. Skipped, with the reason, where Chromium or playwright-core
# are missing.
if [[ ! -x /usr/bin/chromium ]] || [[ ! -d internal/browser/node_modules/playwright-core ]]; then
	echo "browser figures skipped: /usr/bin/chromium or playwright-core (npm ci in internal/browser) is missing"
	exit 0
fi
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
server=
cleanup() {
	[[ -n $server ]] && kill "$server" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go run ./internal/synthcapture/gen -o "$tmp/synth.scorch"
"$SCORCH" serve --listen 127.0.0.1:0 --data "$tmp/data" --max-upload 1GiB >"$tmp/serve.out" 2>"$tmp/serve.log" &
server=$!
base=
for _ in $(seq 100); do
	base=$(sed -n 's|^scorch: serving on \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")
	[[ -n $base ]] && break
	sleep 0.1
done
[[ -n $base ]] || { echo "bench-timeviews: the server did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }
id=$(curl -sf --data-binary @"$tmp/synth.scorch" -H 'Content-Type: application/octet-stream' "$base/api/imports" |
	sed -n 's/^  "id": "\([^"]*\)".*/\1/p')
[[ -n $id ]] || { echo "bench-timeviews: import failed" >&2; exit 1; }
if ! ROUNDS=${ROUNDS:-5} node internal/browser/bench-timeviews.mjs "$base" "$id" >"$tmp/browser.json" 2>"$tmp/browser.err"; then
	echo "browser figures failed:" >&2
	cat "$tmp/browser.err" >&2
	exit 0
fi
python3 - "$tmp/browser.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
base = r.get("heatmap_fetch_ms")
def line(name, key, target):
    v = r.get(key)
    if v is None:
        print(f"browser {name:<34} n/a")
        return
    ratio = f"x{v / base:.2f} heatmap.json fetch ({base:.0f} ms)" if base else "no baseline"
    verdict = f"target <= {target} ms: {'ok' if v <= target else 'OVER'}" if target else "(no target)"
    print(f"browser {name:<34} {v:8.1f} ms  {ratio}  {verdict}")
line("brush, every view redrawn", "brush_ms", 150)
line("brush, first", "brush_first_ms", 0)
line("stack chart 10 s, painted", "stackchart_ms", 300)
line("stack chart 10 s, first", "stackchart_first_ms", 0)
line("stack chart, drawing the runs", "stackchart_draw_ms", 0)
print(f"tracks drawn: {r.get('tracks')}; stack chart runs: {r.get('stackchart_runs')}")
for e in r["errors"]:
    print("browser error:", e)
PY
