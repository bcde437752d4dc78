#!/usr/bin/env bash
# Heatmap and range flame graph cost (issue 8): a heatmap of 10M events and
# the stacks of a time range of 1M events, each against a plain pass over the
# same events measured in this run. Targets: 200 ms and 300 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'PlainPass|Heatmap10M|Range1M' -benchtime "${BENCHTIME:-10x}" -count 1 ./heatmap/)
ns() { awk -v name="Benchmark$1-" 'index($1, name) == 1 {print $3}' <<<"$out"; }
report() { # name, baseline, target ms
	local t b
	t=$(ns "$1")
	b=$(ns "$2")
	[[ -n $t && -n $b ]] || { echo "$out"; echo "bench-heatmap: $1 or $2 missing" >&2; exit 1; }
	awk -v n="$1" -v t="$t" -v b="$b" -v tgt="$3" 'BEGIN {
		printf "%-12s %8.1f ms  x%.2f a plain pass (%.1f ms)  target <= %d ms: %s\n", n, t/1e6, t/b, b/1e6, tgt, (t/1e6 <= tgt ? "ok" : "OVER")
	}'
}
report Heatmap10M PlainPass10M 200
report Range1M PlainPass1M 300
