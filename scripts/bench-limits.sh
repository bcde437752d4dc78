#!/usr/bin/env bash
# Limits under attack (issue 21). 1: the service's peak RSS while it is sent
# each decompression bomb (gzip of 1 GiB of zeros, 900 MB gzipped folded and
# perf script, a pprof of 8M tiny samples, capture files claiming a 1 GiB
# header or 2^40 events) and then three honest 64 MiB folded imports at
# once, against its idle RSS; target peak <= 256 MiB. 2: 50 clients, 30% of
# their queries unique (cache misses), while a capture runs (as root): p99
# and RSS against /healthz under the same load; targets p99 < 1 s, RSS <
# 160 MiB. 503s with Retry-After (the render queue shedding load) are
# counted apart from errors. Exits 0; the verdicts are printed. PART=1 or
# PART=2 runs one part; SERVE_ARGS adds flags to serve's. Part 2 runs serve
# as the issue found it, with --memory-limit 96MiB (LOAD_SERVE_ARGS; empty:
# serve's default limit).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-50}
SECONDS_LOAD=${SECONDS_LOAD:-20}
# SCORCH=bin: measure that build (a baseline) instead of building this tree.
if [[ -z ${SCORCH:-} ]]; then
	SCORCH=bin/scorch
	go build -o "$SCORCH" ./cmd/scorch
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/webload" ./scripts/bench/webload
go build -o "$tmp/bombs" ./scripts/bench/bombs
"$tmp/bombs" "$tmp/in"

start_server() { # data dir; sets $base and $server
	# shellcheck disable=SC2086
	"$SCORCH" serve --listen 127.0.0.1:0 --data "$1" ${SERVE_ARGS:-} >"$tmp/serve.out" 2>"$tmp/serve.log" &
	server=$!
	pids+=("$server")
	for _ in $(seq 100); do
		base=$(sed -n 's|^scorch: serving on \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")
		[[ -n $base ]] && return 0
		sleep 0.1
	done
	echo "bench-limits: the server did not start" >&2
	cat "$tmp/serve.log" >&2
	exit 1
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$server/status"; }
# Reset the peak (VmHWM) to the current RSS.
reset_peak() { echo 5 >"/proc/$server/clear_refs" 2>/dev/null || true; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Each bomb against a fresh server, so that one's leftovers do not count
# towards the next one's peak.
n=0
worst=0
[[ ${PART:-} == 2 ]] && bombs=() || bombs=(zeros.gz folded.gz perf.gz pprof.pb.gz capture-header.scorch capture-events.scorch big.folded)
for f in "${bombs[@]}"; do
	n=$((n + 1))
	start_server "$tmp/data$n"
	sleep 0.5
	idle=$(rss)
	size=$(stat -c %s "$tmp/in/$f")
	t0=$(date +%s.%N)
	if [[ $f == big.folded ]]; then
		# Three honest 64 MiB imports at once.
		cpids=()
		for i in 1 2 3; do
			curl -s -o "$tmp/answer$i" -w '%{http_code} ' --data-binary @"$tmp/in/$f" -H 'Content-Type: text/plain' "$base/api/imports" >"$tmp/code$i" &
			cpids+=("$!")
		done
		wait "${cpids[@]}" || true
		code=$(cat "$tmp/code1" "$tmp/code2" "$tmp/code3")
		f="3 x big.folded at once"
		msg=""
	else
		code=$(curl -s -o "$tmp/answer" -w '%{http_code}' --data-binary @"$tmp/in/$f" -H 'Content-Type: application/octet-stream' "$base/api/imports" || echo 000)
		msg=$(sed -n 's/.*"error": *"\([^"]\{0,100\}\).*/\1/p' "$tmp/answer")
	fi
	t1=$(date +%s.%N)
	peak=$(hwm)
	((peak > worst)) && worst=$peak
	awk -v f="$f" -v s="$size" -v c="$code" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" -v p="$peak" -v i="$idle" -v m="$msg" 'BEGIN {
		printf "%-24s %9.1f KiB: %s in %.2f s, peak RSS %.1f MiB (%.2fx idle %.1f MiB) %s\n", f, s / 1024, c, t, p / 1024, p / i, i / 1024, m }'
	kill "$server"; wait "$server" 2>/dev/null || true
done
((${#bombs[@]})) && awk -v w="$worst" 'BEGIN { printf "target peak RSS <= 256 MiB over the bombs and the three imports: %s (worst %.1f MiB)\n", (w / 1024 <= 256) ? "met" : "MISSED", w / 1024 }'
pids=()
[[ ${PART:-} == 1 ]] && exit 0

# 2: 50 clients, 30% unique queries, with a capture running.
LOAD_SERVE_ARGS=${LOAD_SERVE_ARGS---memory-limit 96MiB}
SERVE_ARGS="${SERVE_ARGS:-} $LOAD_SERVE_ARGS" start_server "$tmp/data2"
make_folded() {
	awk -v seed="$1" 'BEGIN {
		srand(seed)
		for (s = 0; s < 4000; s++) {
			d = 8 + int(rand() * 25)
			line = "app" int(rand() * rand() * 4) ";main"
			for (i = 0; i < d; i++) line = line ";fn_" i "_" int(rand() * rand() * (2 + i / 2))
			print line, 1 + int(rand() * 1000)
		}
	}'
}
paths=()
for seed in 1 2 3; do
	make_folded "$seed" >"$tmp/p$seed.folded"
	id=$(curl -sf --data-binary @"$tmp/p$seed.folded" -H 'Content-Type: text/plain' "$base/api/imports" |
		sed -n 's/^  "id": "\([^"]*\)".*/\1/p')
	[[ -n $id ]] || { echo "bench-limits: import failed" >&2; exit 1; }
	paths+=("/api/captures/$id/flamegraph.svg" "/api/captures/$id/flamegraph.svg?reverse=true"
		"/api/captures/$id/profile.pb.gz" "/api/captures/$id/folded")
done
for p in "${paths[@]}"; do curl -sf -o /dev/null "$base$p"; done
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
hz=$("$tmp/webload" -base "$base" -c "$CLIENTS" -d 5s -label "baseline /healthz (5 s)" /healthz)
echo "$hz"
capnote="no capture running (needs root to load BPF programs)"
if [[ $(id -u) -eq 0 ]]; then
	answer=$(curl -s -H 'Content-Type: application/json' -d "{\"type\":\"cpu\",\"duration\":\"$((SECONDS_LOAD + 10))s\",\"hz\":999}" "$base/api/captures" || true)
	if grep -q '"id"' <<<"$answer"; then capnote="a 999 Hz whole-host capture running"; else capnote="the capture did not start: $answer"; fi
fi
sleep 1
reset_peak
load=$("$tmp/webload" -base "$base" -c "$CLIENTS" -d "${SECONDS_LOAD}s" -unique-frac 0.3 -label "svg+pprof+folded, 30% unique (${SECONDS_LOAD} s)" "${paths[@]}")
peak=$(hwm)
echo "$load"
p99=$(field p99_ms "$load")
errs=$(field errors "$load")
shed=$(field shed "$load")
limits="serve flags:${SERVE_ARGS:+ $SERVE_ARGS} ${LOAD_SERVE_ARGS:-(none: the default memory limit of serve)}"
echo "$limits"
echo "with $capnote; p99 $(awk -v a="$p99" -v b="$(field p99_ms "$hz")" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')x the /healthz baseline"
awk -v p="$p99" -v r="$peak" -v e="$errs" -v s="$shed" 'BEGIN {
	printf "target p99 < 1 s: %s (%.0f ms); target RSS < 160 MiB: %s (peak %.1f MiB); errors %d, shed (503 + Retry-After) %d\n",
		(p < 1000) ? "met" : "MISSED", p, (r / 1024 < 160) ? "met" : "MISSED", r / 1024, e, s }'
exit 0
