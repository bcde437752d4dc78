#!/usr/bin/env bash
# Heatmap and range flame graph cost (issue 8): a heatmap of 10M events, the
# stacks of a time range of 1M events and that range's SVG flame graph, each
# against a plain pass over the same events measured in this run. Targets:
# 200 ms for the heatmap, 300 ms for the range.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'PlainPass|Heatmap10M|Range1M|RangeFlameGraph1M' -benchtime "${BENCHTIME:-10x}" -count "${COUNT:-3}" ./heatmap/)
# The fastest of the runs: the machine is shared, noise only adds time.
ns() { awk -v name="Benchmark$1-" 'index($1, name) == 1 && (m == "" || $3 < m) {m = $3} END {print m}' <<<"$out"; }
report() { # name, baseline, target ms
	local t b
	t=$(ns "$1")
	b=$(ns "$2")
	[[ -n $t && -n $b ]] || { echo "$out"; echo "bench-heatmap: $1 or $2 missing" >&2; exit 1; }
	awk -v n="$1" -v t="$t" -v b="$b" -v tgt="$3" 'BEGIN {
		printf "%-18s %8.1f ms  x%.2f a plain pass (%.1f ms)  target <= %d ms: %s\n", n, t/1e6, t/b, b/1e6, tgt, (t/1e6 <= tgt ? "ok" : "OVER")
	}'
}
report Heatmap10M PlainPass10M 200
report Range1M PlainPass1M 300
report RangeFlameGraph1M PlainPass1M 300
