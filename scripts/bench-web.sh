#!/usr/bin/env bash
# Web service (issue 7): 50 concurrent clients fetch flame graphs, pprof and
# folded stacks of stored captures for a bounded 30 s on loopback
# (requests/s, p50/p99, errors), against /healthz under the same load as the
# baseline; then renders that miss the cache; then, as root, the service's
# peak RSS during a 60 s, 999 Hz all-CPU capture against its idle RSS.
# Targets: 0 errors, p99 under 500 ms, peak RSS under 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
SCORCH=${SCORCH:-bin/scorch}
CLIENTS=${CLIENTS:-50}
SECONDS_LOAD=${SECONDS_LOAD:-30}
RSS_SECONDS=${RSS_SECONDS:-60}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/webload" ./scripts/bench/webload

start_server() { # data dir; sets $base and $server
	"$SCORCH" serve --listen 127.0.0.1:0 --data "$1" >"$tmp/serve.out" 2>"$tmp/serve.log" &
	server=$!
	pids+=("$server")
	for _ in $(seq 100); do
		base=$(sed -n 's|^scorch: serving on \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")
		[[ -n $base ]] && return 0
		sleep 0.1
	done
	echo "bench-web: the server did not start" >&2
	cat "$tmp/serve.log" >&2
	exit 1
}

# Synthetic profiles shaped like real ones: 4000 stacks, 8..32 frames
# deep, each level choosing among a few callees (skewed), so prefixes are
# shared as call trees share them.
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

start_server "$tmp/data"
ids=()
for seed in 1 2 3; do
	make_folded "$seed" >"$tmp/p$seed.folded"
	id=$(curl -sf --data-binary @"$tmp/p$seed.folded" -H 'Content-Type: text/plain' "$base/api/imports" |
		sed -n 's/^  "id": "\([^"]*\)".*/\1/p')
	[[ -n $id ]] || { echo "bench-web: import failed" >&2; exit 1; }
	ids+=("$id")
done
paths=()
for id in "${ids[@]}"; do
	paths+=("/api/captures/$id/flamegraph.svg" "/api/captures/$id/flamegraph.svg?reverse=true"
		"/api/captures/$id/flamegraph.svg?layout=icicle&comm=app1" "/api/captures/$id/profile.pb.gz"
		"/api/captures/$id/folded")
done

# Warm the render cache once: the timed run measures serving stored
# captures; the cost of a first rendering is the cache-miss line below.
for p in "${paths[@]}"; do curl -sf -o /dev/null "$base$p"; done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

svg=$(curl -s "$base/api/captures/${ids[0]}/flamegraph.svg" | wc -c)
echo "stored captures: ${#ids[@]} imports of 4000 stacks each (SVG $((svg / 1024)) KiB); $CLIENTS clients"
hz=$("$tmp/webload" -base "$base" -c "$CLIENTS" -d 5s -label "baseline /healthz (5 s)" /healthz)
echo "$hz"
mix=$("$tmp/webload" -base "$base" -c "$CLIENTS" -d "${SECONDS_LOAD}s" -label "svg+pprof+folded (${SECONDS_LOAD} s)" "${paths[@]}")
echo "$mix"
miss=$("$tmp/webload" -base "$base" -c 8 -d 10s -unique -label "svg render, cache miss (8 clients, 10 s)" "/api/captures/${ids[0]}/flamegraph.svg")
echo "$miss"
echo "ratios against /healthz: rps $(ratio "$(field rps "$mix")" "$(field rps "$hz")"), p99 $(ratio "$(field p99_ms "$mix")" "$(field p99_ms "$hz")")x"
p99=$(field p99_ms "$mix")
errs=$(field errors "$mix")
verdict=$(awk -v p="$p99" -v e="$errs" 'BEGIN { print (e == 0 && p < 500) ? "met" : "MISSED" }')
echo "target 0 errors, p99 < 500 ms: $verdict (errors $errs, p99 ${p99} ms)"
kill "$server"; wait "$server" 2>/dev/null || true

if [[ $(id -u) -ne 0 ]]; then
	echo "peak RSS during a capture: skipped (needs root to load BPF programs)"
	exit 0
fi
start_server "$tmp/data-rss"
sleep 1
idle=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
gcc -O2 -fno-omit-frame-pointer -pthread -o "$tmp/cpuwork" scripts/bench/cpuwork.c
"$tmp/cpuwork" "$(nproc)" 100000000000 &
pids+=("$!")
work=$!
answer=$(curl -s -H 'Content-Type: application/json' -d "{\"type\":\"cpu\",\"duration\":\"${RSS_SECONDS}s\",\"hz\":999}" "$base/api/captures" || true)
id=$(sed -n 's/^  "id": "\([^"]*\)".*/\1/p' <<<"$answer")
[[ -n $id ]] || { echo "bench-web: the capture did not start: $answer" >&2; tail -5 "$tmp/serve.log" >&2; exit 1; }
peak=$idle
while :; do
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
	((rss > peak)) && peak=$rss
	status=$(curl -s "$base/api/captures/$id" | sed -n 's/^  "status": "\([^"]*\)".*/\1/p' || true)
	[[ -n $status ]] || { echo "bench-web: the server stopped answering" >&2; tail -5 "$tmp/serve.log" >&2; exit 1; }
	[[ $status == running ]] || break
	sleep 0.5
done
kill "$work" 2>/dev/null || true
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
((hwm > peak)) && peak=$hwm
samples=$(curl -sf "$base/api/captures/$id" | sed -n 's/^  "samples": \([0-9]*\).*/\1/p')
lost=$(curl -sf "$base/api/captures/$id" | sed -n 's/^  "lost": \([0-9]*\).*/\1/p')
echo "capture ${RSS_SECONDS} s at 999 Hz on $(nproc) CPUs: status $status, $samples samples, $lost lost"
awk -v i="$idle" -v p="$peak" 'BEGIN {
	printf "service RSS: idle %.1f MiB, peak %.1f MiB during the capture (%.2fx idle); target < 100 MiB: %s\n",
		i / 1024, p / 1024, p / i, (p / 1024 < 100) ? "met" : "MISSED"
}'
