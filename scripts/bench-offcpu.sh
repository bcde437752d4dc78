#!/usr/bin/env bash
# Off-CPU collector overhead (issue 5): round trips per second of a pipe
# ping-pong between two threads pinned to one CPU, in one run: without
# instrumentation; with scorch offcpu filtered to another process (what every
# switch pays for the filter); with scorch offcpu on the ping-pong itself;
# and with the equivalent bpftrace one-liner.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-offcpu: needs root"; exit 0; }
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
gcc -O2 -pthread -o "$tmp/pingpong" scripts/bench/pingpong.c
SECS=${SECS:-3}

base=$("$tmp/pingpong" "$SECS")
printf '%-34s %10d round trips/s\n' "uninstrumented" "$base"

sleep 600 & other=$!
"$SCORCH" record --type offcpu --pid "$other" --duration 10m -o /dev/null 2>"$tmp/err1" & s=$!
sleep 1.5
filtered=$("$tmp/pingpong" "$SECS")
kill -INT $s; wait $s || true
printf '%-34s %10d round trips/s  (%.1f%% of uninstrumented; target >= 95%%)\n' "scorch offcpu, other process" "$filtered" "$(echo "100*$filtered/$base" | bc -l)"

for unwind in fp auto; do
	"$SCORCH" record --type offcpu --comm pingpong --duration 10m --unwind $unwind -o /dev/null 2>"$tmp/err2" & s=$!
	sleep 1.5
	targeted=$("$tmp/pingpong" "$SECS")
	kill -INT $s; wait $s || true
	printf '%-34s %10d round trips/s  (%.1f%% of uninstrumented; target >= 60%%) %s\n' "scorch offcpu on it, --unwind $unwind" "$targeted" "$(echo "100*$targeted/$base" | bc -l)" "$(grep -o '[0-9]* events.*lost' "$tmp/err2" | head -1 || true)"
done

if command -v bpftrace >/dev/null; then
	# bpftrace finds tracepoints through tracefs.
	[[ -e /sys/kernel/tracing/events/sched ]] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
	bpftrace -e 'tracepoint:sched:sched_switch { @start[args->prev_pid] = nsecs; } tracepoint:sched:sched_switch /@start[args->next_pid]/ { @us[kstack, ustack, args->next_comm] = sum(nsecs - @start[args->next_pid]); delete(@start[args->next_pid]); }' >/dev/null 2>&1 & bt=$!
	sleep 6
	bpft=$("$tmp/pingpong" "$SECS")
	kill -INT $bt; wait $bt || true
	printf '%-34s %10d round trips/s  (%.1f%% of uninstrumented)\n' "bpftrace offcputime one-liner" "$bpft" "$(echo "100*$bpft/$base" | bc -l)"
fi
echo "targets: filtered >= 95%; targeted >= 60% and above bpftrace"
