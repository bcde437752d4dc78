#!/usr/bin/env bash
# Agent overhead (issue 18): `scorch agent` at its defaults (CPU at 19 Hz per
# CPU, 15 s windows, pushing to a local Pyroscope Push sink) for
# AGENT_MINUTES (default 10) while a busy CPU-bound workload runs on every
# CPU. Reports the agent's CPU share of one core, its RSS over time, the
# bytes it pushes per minute and the workload's slowdown (median round time
# with the agent against the median of rounds without it, before and after,
# in this run), against the OpenTelemetry eBPF profiler's published 1% CPU
# and 250 MB, and this issue's 1% and 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-agent: needs root"; exit 0; }
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
MINUTES=${AGENT_MINUTES:-10}
SAMPLE=${AGENT_SAMPLE_SECONDS:-30}
ROUNDS=${ROUNDS:-5}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
gcc -O2 -fno-omit-frame-pointer -pthread -o "$tmp/cpuwork" scripts/bench/cpuwork.c
go build -o "$tmp/pushsink" ./scripts/bench/pushsink
ncpu=$(nproc)
tick=$(getconf CLK_TCK)
ITERS=${ITERS:-200000000}

round() { # the wall time of one fixed round of work on every CPU
	local s e
	s=$(date +%s.%N)
	"$tmp/cpuwork" "$ncpu" "$ITERS"
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpu_seconds() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

for i in $(seq "$ROUNDS"); do round; done >"$tmp/base"

"$tmp/pushsink" --addr-file "$tmp/addr" >"$tmp/sink.out" &
sink=$!
pids+=("$sink")
for _ in $(seq 50); do [[ -s $tmp/addr ]] && break; sleep 0.1; done
"$SCORCH" agent --remote "http://$(cat "$tmp/addr")" --remote-kind pyroscope --listen 127.0.0.1:0 \
	>"$tmp/agent.out" 2>"$tmp/agent.err" &
agent=$!
pids+=("$agent")
sleep 5 # start-up: BPF load, first symbol tables
if ! kill -0 "$agent" 2>/dev/null; then
	echo "bench-agent: the agent did not start:"; cat "$tmp/agent.err"; exit 0
fi
metrics=$(grep -o 'http://[^ ]*/metrics' "$tmp/agent.out" | head -1)

# The workload runs in rounds for the whole period; the agent is sampled
# every SAMPLE seconds.
end=$(( $(date +%s) + MINUTES * 60 ))
( while (( $(date +%s) < end )); do round; done >"$tmp/with" ) &
work=$!
pids+=("$work")
t0=$(date +%s.%N); c0=$(cpu_seconds "$agent")
echo "minute  agent_cpu_%_of_one_core  rss_MiB"
rss_max=0
while kill -0 "$work" 2>/dev/null; do
	sleep "$SAMPLE"
	kill -0 "$agent" 2>/dev/null || break
	t=$(date +%s.%N); c=$(cpu_seconds "$agent"); r=$(rss_mib "$agent")
	printf '%6.1f  %23.2f  %7s\n' "$(echo "($t - $t0) / 60" | bc -l)" "$(echo "100 * ($c - ${cprev:-$c0}) / ($t - ${tprev:-$t0})" | bc -l)" "$r"
	cprev=$c; tprev=$t
	rss_max=$(echo "if ($r > $rss_max) $r else $rss_max" | bc -l)
done
wait "$work" || true
t1=$(date +%s.%N); c1=$(cpu_seconds "$agent")
pushed=$(curl -s "$metrics" | awk '/^scorch_agent_pushed_bytes_total/ {printf "%.0f", $2}')
dropped=$(curl -s "$metrics" | awk '/^scorch_agent_dropped_profiles_total/ {s += $2} END {printf "%.0f", s}')
kill -TERM "$agent"; wait "$agent" || true
kill -TERM "$sink"; wait "$sink" || true
for i in $(seq "$ROUNDS"); do round; done >>"$tmp/base"

elapsed=$(echo "$t1 - $t0" | bc -l)
share=$(echo "100 * ($c1 - $c0) / $elapsed" | bc -l)
base=$(median <"$tmp/base")
with=$(median <"$tmp/with")
printf 'agent CPU: %.2f%% of one core over %.1f min (OpenTelemetry profiler: 1%%; issue target: 1%%)\n' "$share" "$(echo "$elapsed / 60" | bc -l)"
printf 'agent RSS: max %s MiB (OpenTelemetry profiler: 250 MB; issue target: 64 MiB)\n' "$rss_max"
printf 'pushed: %.1f KiB per minute (%s bytes, %s profiles dropped); sink: %s\n' \
	"$(echo "${pushed:-0} / 1024 / ($elapsed / 60)" | bc -l)" "${pushed:-0}" "$dropped" "$(cat "$tmp/sink.out")"
printf 'workload round: %.3fs without the agent, %.3fs with it (median of %d and %d rounds): slowdown %.2f%%\n' \
	"$base" "$with" "$(wc -l <"$tmp/base")" "$(wc -l <"$tmp/with")" "$(echo "100 * ($with / $base - 1)" | bc -l)"
exit 0
