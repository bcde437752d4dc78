#!/usr/bin/env bash
# User-space unwinding cost per stack with warm CFI tables (issue 4), on
# samples recorded from the issue's workloads, next to plain frame pointers
# (the chain taken as is) measured in the same run. Target: under 2 µs per
# stack. The BPF side (cost per event, ring bytes at 1 and 16 KiB copies) is
# in bench-sampler.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'Unwind' -benchtime "${BENCHTIME:-200000x}" -count 1 ./unwind/)
ns() { awk -v name="Benchmark$1-" 'index($1, name) == 1 {print $3}' <<<"$out"; }
base=$(ns UnwindFP)
[[ -n $base ]] || { echo "$out"; echo "bench-unwind: UnwindFP missing" >&2; exit 1; }
for b in UnwindAutoLeaf UnwindAutoMemset UnwindDWARFNoFP UnwindDWARFQsort; do
	t=$(ns "$b")
	if [[ -z $t ]]; then
		echo "$b: skipped (see go test -bench $b ./unwind/)"
		continue
	fi
	awk -v n="$b" -v t="$t" -v b="$base" 'BEGIN {
		printf "%-18s %8.0f ns/stack  x%.0f plain frame pointers (%.0f ns)  x%.2f the 2 us target: %s\n", n, t, t/b, b, t/2000, (t <= 2000 ? "ok" : "OVER")
	}'
done
