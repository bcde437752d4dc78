#!/usr/bin/env bash
# Host overview (issue 19): the sampler's own CPU and memory over
# OVERVIEW_WINDOW (default 10m), beside a vmstat-like reader of
# /proc/stat, meminfo and vmstat run for the same window at the same time
# (the baseline); then /api/overview.json latency under 50 concurrent
# clients for OVERVIEW_LOAD (20s) against /healthz under the same load.
# Targets: sampler ≤ 1% of one core and ≤ 16 MiB; 0 errors.
set -euo pipefail
cd "$(dirname "$0")/.."
SCORCH=${SCORCH:-bin/scorch}
WINDOW=${OVERVIEW_WINDOW:-10m}
LOAD=${OVERVIEW_LOAD:-20s}
CLIENTS=${CLIENTS:-50}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/hostsampler" ./scripts/bench/hostsampler
go build -o "$tmp/webload" ./scripts/bench/webload

echo "sampling for $WINDOW (sampler and the vmstat-like baseline side by side)"
"$tmp/hostsampler" -mode sampler -window "$WINDOW" >"$tmp/sampler.out" &
a=$!
pids+=("$a")
"$tmp/hostsampler" -mode vmstat -window "$WINDOW" >"$tmp/vmstat.out" &
b=$!
pids+=("$b")
wait "$a" "$b"
cat "$tmp/sampler.out" "$tmp/vmstat.out"
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$1"; }
awk -v w="$(field "$tmp/sampler.out" wall)" -v c="$(field "$tmp/sampler.out" cpu)" \
	-v bw="$(field "$tmp/vmstat.out" wall)" -v bc="$(field "$tmp/vmstat.out" cpu)" \
	-v r0="$(field "$tmp/sampler.out" rss0_kib)" -v r="$(field "$tmp/sampler.out" rss_kib)" \
	-v hwm="$(field "$tmp/sampler.out" hwm_kib)" -v heap="$(field "$tmp/sampler.out" heap_inuse_kib)" \
	-v n="$(field "$tmp/sampler.out" samples)" -v res="$(field "$tmp/sampler.out" resources)" 'BEGIN {
	p = c / w * 100; bp = bc / bw * 100
	printf "sampler CPU: %.3f%% of one core over %.0f s (%d samples, %d resources); vmstat-like baseline %.3f%% (%.1fx the baseline); target <= 1%%: %s\n",
		p, w, n, res, bp, (bp > 0 ? p / bp : 0), (p <= 1 ? "met" : "MISSED")
	printf "sampler memory: RSS %.1f MiB at the start, %.1f MiB after (peak %.1f MiB), Go heap in use %.1f MiB; growth %.1f MiB, target <= 16 MiB: %s\n",
		r0 / 1024, r / 1024, hwm / 1024, heap / 1024, (hwm - r0) / 1024, ((hwm - r0) / 1024 <= 16 ? "met" : "MISSED")
}'

"$SCORCH" serve --listen 127.0.0.1:0 --data "$tmp/data" >"$tmp/serve.out" 2>"$tmp/serve.log" &
server=$!
pids+=("$server")
base=
for _ in $(seq 100); do
	base=$(sed -n 's|^scorch: serving on \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")
	[[ -n $base ]] && break
	sleep 0.1
done
[[ -n $base ]] || { echo "bench-overview: the server did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }
curl -sf "$base/api/overview.json" >/dev/null # waits for the first two samples
"$tmp/webload" -base "$base" -c "$CLIENTS" -d "$LOAD" -label healthz /healthz | tee "$tmp/healthz.txt"
"$tmp/webload" -base "$base" -c "$CLIENTS" -d "$LOAD" -label overview.json /api/overview.json | tee "$tmp/overview.txt"
p99() { sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' "$1" | head -1; }
awk -v h="$(p99 "$tmp/healthz.txt")" -v o="$(p99 "$tmp/overview.txt")" 'BEGIN {
	if (h > 0) printf "overview.json p99 %.1f ms under %d clients = %.1fx /healthz p99 (%.1f ms)\n", o, '"$CLIENTS"', o / h, h
}'
