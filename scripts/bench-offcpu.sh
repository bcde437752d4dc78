#!/usr/bin/env bash
# Off-CPU collector overhead (issue 5): round trips per second of a pipe
# ping-pong between two threads pinned to one CPU (two context switches per
# round trip), uninstrumented and with: scorch offcpu filtered to another
# process (what every switch pays for the filter); scorch offcpu on the
# ping-pong itself (stacks on every switch), --unwind fp and auto; and the
# equivalent bpftrace one-liner.
#
# Shared VMs drift by tens of percent within a minute, so each figure is the
# median of ROUNDS rounds, and each round compares the instrumented run with
# the mean of uninstrumented runs just before and just after it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-offcpu: needs root"; exit 0; }
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -pthread -o "$tmp/pingpong" scripts/bench/pingpong.c
SECS=${SECS:-2}
ROUNDS=${ROUNDS:-5}
sleep 3600 & other=$!

# bpftrace finds tracepoints through tracefs.
if command -v bpftrace >/dev/null && [[ ! -e /sys/kernel/tracing/events/sched ]]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi

median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# pingpong_with WAIT CMD...: the ping-pong's rate with CMD attached to it
# (CMD's "PID" argument becomes the ping-pong's pid; it is given WAIT
# seconds to attach before the ping-pong starts).
pingpong_with() {
	local wait=$1 pp s
	shift
	rm -f "$tmp/go"
	mkfifo "$tmp/go"
	"$tmp/pingpong" "$SECS" wait <"$tmp/go" >"$tmp/rate" &
	pp=$!
	exec 3>"$tmp/go"
	"${@/#PID/$pp}" >/dev/null 2>"$tmp/err" &
	s=$!
	sleep "$wait"
	echo go >&3
	exec 3>&-
	wait "$pp"
	kill -INT "$s" 2>/dev/null || true
	wait "$s" || true
	cat "$tmp/rate"
}

# measure NAME WAIT CMD...: ROUNDS rounds of base, CMD in the background
# (given WAIT seconds to attach), ping-pong, stop CMD, base. CMD's argument
# PID is the ping-pong's pid: then CMD attaches to it before it starts.
measure() {
	local name=$1 wait=$2
	shift 2
	local ratios=() runs=() i b1 b2 r pid
	for ((i = 0; i < ROUNDS; i++)); do
		b1=$("$tmp/pingpong" "$SECS")
		if [[ " $* " == *" PID "* ]]; then
			r=$(pingpong_with "$wait" "$@")
		else
			"$@" >/dev/null 2>"$tmp/err" &
			pid=$!
			sleep "$wait"
			r=$("$tmp/pingpong" "$SECS")
			kill -INT $pid
			wait $pid || true
		fi
		b2=$("$tmp/pingpong" "$SECS")
		ratios+=("$(echo "200 * $r / ($b1 + $b2)" | bc -l)")
		runs+=("$r")
	done
	printf '%-36s %8.0f round trips/s  %5.1f%% of uninstrumented (median of %d; rounds %s)\n' "$name" \
		"$(printf '%s\n' "${runs[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)" "$ROUNDS" \
		"$(printf '%s\n' "${ratios[@]}" | sort -n | xargs printf '%.0f ' | sed 's/ $//')"
	# scorch -v: events handled and lost, stack caches (last round).
	if grep -q 'events in' "$tmp/err"; then
		printf '%-36s %s; %s\n' "" "$(grep -o '[0-9]* events in [0-9.]*s, [0-9]* lost' "$tmp/err" | head -1)" \
			"$(grep -o '\(kernel\|user\)_stacks_[a-z]*=[0-9]*' "$tmp/err" | tr '\n' ' ')"
	fi
}

base=$("$tmp/pingpong" "$SECS")
printf '%-36s %8d round trips/s  (one run, for scale)\n' "uninstrumented" "$base"
measure "scorch offcpu, another process" 1.5 "$SCORCH" record -v --type offcpu --pid "$other" --duration 10m -o /dev/null
for unwind in fp auto; do
	measure "scorch offcpu --pid it, --unwind $unwind" 2.5 "$SCORCH" record -v --type offcpu --pid PID --duration 10m --unwind $unwind -o /dev/null
done
if command -v bpftrace >/dev/null; then
	measure "bpftrace offcputime one-liner" 6 bpftrace -e 'tracepoint:sched:sched_switch { @start[args->prev_pid] = nsecs; } tracepoint:sched:sched_switch /@start[args->next_pid]/ { @us[kstack, ustack, args->next_comm] = sum(nsecs - @start[args->next_pid]); delete(@start[args->next_pid]); }'
fi
echo "targets: another process >= 95%; --pid it: --unwind auto >= 85%, fp >= 90%, 0 lost, above bpftrace"
