#!/usr/bin/env bash
# Whole-host user stacks (issue 16): a whole-host CPU capture at 999 Hz in
# each --unwind mode (auto, the default; dwarf; fp) while the mix of
# profiler/testdata/stacks runs (C -O2 without frame pointers with a 4 KiB
# frame, C++ without frame pointers, Go, stripped Go, Node --perf-basic-prof,
# Python 3.12+ -X perf; the same programs as TestWholeHostStacks), and:
#   - the share of the mix's user stacks that reach the thread's entry
#     (target >= 95%), per program too;
#   - the sampler's BPF time per sample (kernel.bpf_stats_enabled=1; target
#     <= 3 us), ring bytes per event (target <= 1 KiB), the unwind tables' map
#     bytes and the memlock of every BPF map of the capture;
#   - the mix's slowdown under each mode and under `perf record -g -a` at
#     999 Hz: each program's work per CPU second it used (the machine's other
#     users move its share of the CPUs, not that), in interleaved rounds
#     against the unprofiled runs just before and after, each round
#     starting at another condition (medians and quartiles over ROUNDS,
#     7 by default; target: auto no worse than perf, within the spread).
# Table build time and memory per MB of .eh_frame/.gopclntab are in
# bench-unwind-tables.sh. Prints figures and verdicts; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-stacks: needs root"; exit 0; }
SECS=${SECS:-10}
SLOW_SECS=${SLOW_SECS:-5}
ROUNDS=${ROUNDS:-7}
HZ=${HZ:-999}
ONLY=${ONLY:-} # a comma-separated subset of the mix
tmp=$(mktemp -d)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'rm -rf "$tmp"; sysctl -qw kernel.bpf_stats_enabled="$old_stats"' EXIT
sysctl -qw kernel.bpf_stats_enabled=1
go test -c -o "$tmp/profiler.test" ./profiler
cd profiler

# metric OUT NAME: the value of a benchmark metric in go test output.
metric() { awk -v unit="$2" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' <<<"$1" | head -1; }
# num V DIGITS: V rounded, or n/a when the benchmark did not report it.
num() { if [[ -n $1 ]]; then printf "%.${2}f" "$1"; else printf 'n/a'; fi; }
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { if (v == "") print "n/a"; else if ((dir == "max" && v <= t) || (dir == "min" && v >= t)) print "ok"; else print "MISSED" }'; }

progs="c-bigframe cxx-nofp go go-stripped node python"
printf '%-6s %9s %8s %11s %13s %12s %11s  %s\n' mode complete samples "BPF ns/smp" "ring B/event" "table bytes" "memlock" "per program (complete %)"
for mode in auto dwarf fp; do
	out=$("$tmp/profiler.test" -test.run '^$' -test.bench '^BenchmarkWholeHostStacks$' -test.benchtime 1x \
		-stacks.unwind="$mode" -stacks.hz="$HZ" -stacks.seconds="$SECS" -stacks.only="$ONLY" 2>&1) || true
	if ! grep -q '^BenchmarkWholeHostStacks' <<<"$out"; then
		echo "$mode: no figures"
		tail -20 <<<"$out"
		continue
	fi
	per=""
	for p in $progs; do
		v=$(metric "$out" "$p-complete-%")
		per+="$p ${v:-skipped} "
	done
	declare "complete_$mode=$(metric "$out" complete-%)" "ns_$mode=$(metric "$out" bpf-ns/sample)" "ring_$mode=$(metric "$out" ring-B/event)"
	printf '%-6s %8s%% %8s %11s %13s %12s %11s  %s\n' "$mode" "$(num "$(metric "$out" complete-%)" 1)" "$(num "$(metric "$out" mix-samples)" 0)" \
		"$(num "$(metric "$out" bpf-ns/sample)" 0)" "$(num "$(metric "$out" ring-B/event)" 0)" "$(num "$(metric "$out" table-bytes)" 0)" "$(num "$(metric "$out" memlock-B)" 0)" "$per"
	grep -o 'skipped\|: no Python.*\|node is not installed' <<<"$out" | sort -u | sed 's/^/  /' || true
done
echo "targets (auto): complete >= 95%: $(verdict "${complete_auto:-}" 95 min) (${complete_auto:-?}%); BPF <= 3000 ns/sample: $(verdict "${ns_auto:-}" 3000 max) (${ns_auto:-?}); ring <= 1024 B/event: $(verdict "${ring_auto:-}" 1024 max) (${ring_auto:-?})"

out=$("$tmp/profiler.test" -test.run '^$' -test.bench '^BenchmarkStackSlowdown$' -test.benchtime 1x \
	-stacks.hz="$HZ" -stacks.seconds="$SLOW_SECS" -stacks.rounds="$ROUNDS" -stacks.only="$ONLY" 2>&1) || true
if grep -q '^BenchmarkStackSlowdown' <<<"$out"; then
	for c in auto dwarf fp perf; do
		printf 'slowdown of the mix, %-5s %6s%%  quartiles %6s%% .. %6s%%  (%d rounds; rate ratios %s)\n' "$c" "$(num "$(metric "$out" "$c-slowdown-%")" 1)" \
			"$(num "$(metric "$out" "$c-slowdown-q1-%")" 1)" "$(num "$(metric "$out" "$c-slowdown-q3-%")" 1)" "$ROUNDS" \
			"$(grep -o "$c: rate ratios \[.*\]" <<<"$out" | sed 's/.*\[//; s/\]//')"
	done
	a=$(metric "$out" auto-slowdown-%)
	p=$(metric "$out" perf-slowdown-%)
	aq=$(metric "$out" auto-slowdown-q3-%)
	pq=$(metric "$out" perf-slowdown-q1-%)
	# Within the noise: auto's median at most perf's plus the rounds' own
	# spread (auto's upper quartile minus its median), at least 2 points.
	echo "target: auto no worse than perf -g: $(awk -v a="$a" -v p="$p" -v aq="$aq" 'BEGIN { n = aq - a; if (n < 2) n = 2; print (a == "" || p == "") ? "n/a" : (a <= p + n) ? "ok" : "MISSED" }') (auto ${a:-?}%, perf ${p:-?}% median; auto's upper quartile ${aq:-?}%, perf's lower ${pq:-?}%)"
else
	echo "slowdown: no figures"
	tail -20 <<<"$out"
fi
