#!/usr/bin/env bash
# Time views (issue 15): threads.json and stackchart.json of the synthetic
# 60 s, 999 Hz, 2-CPU capture of 50 threads (internal/synthcapture; `go run
# ./internal/synthcapture/gen -o FILE` writes the same capture for the
# browser's figures), through the HTTP service: uncached (computed from the
# decoded capture), cached (the render cache), cold (the capture file
# decoded too). Baseline: heatmap.json of the same capture, uncached, in
# this run. Targets: threads.json within 100 ms, cached or not; a stack
# chart of one thread over 10 s within 100 ms on the server (the page's
# budget to paint it is 300 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'Timeviews' -benchtime "${BENCHTIME:-10x}" -count "${COUNT:-3}" ./web/)
# The fastest of the runs: the machine is shared, noise only adds time.
ns() { awk -v name="BenchmarkTimeviews$1-" 'index($1, name) == 1 && (m == "" || $3 < m) {m = $3} END {print m}' <<<"$out"; }
bytes() { awk -v name="BenchmarkTimeviews$1-" 'index($1, name) == 1 {b = $5} END {print b}' <<<"$out"; }
report() { # name, target ms (0: no target)
	local t b n
	t=$(ns "$1")
	b=$(ns HeatmapUncached)
	n=$(bytes "$1")
	[[ -n $t && -n $b ]] || { echo "$out"; echo "bench-timeviews: $1 or HeatmapUncached missing" >&2; exit 1; }
	awk -v n="$1" -v t="$t" -v b="$b" -v tgt="$2" -v bytes="$n" 'BEGIN {
		verdict = "(no target)"
		if (tgt > 0) verdict = sprintf("target <= %d ms: %s", tgt, (t/1e6 <= tgt ? "ok" : "OVER"))
		printf "%-24s %8.2f ms  x%.2f heatmap.json (%.2f ms)  %7.1f KiB JSON  %s\n", n, t/1e6, t/b, b/1e6, bytes/1024, verdict
	}'
}
report ThreadsUncached 100
report ThreadsCached 100
report ThreadsCold 0
report ThreadsFocusUncached 100
report ThreadsOffCPUUncached 100
report Stackchart10sUncached 100
report Stackchart60sUncached 0
