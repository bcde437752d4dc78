#!/usr/bin/env bash
# Flame graph benchmark: render 100k distinct stacks (about 2M frames) to an
# SVG with the default minwidth, next to reading the same profile as folded
# text, measured in the same run. Targets: render at most 1 s and 15 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'RenderLarge|FoldedParseLarge' -benchtime 5x -count 1 ./flamegraph)
echo "$out" | grep '^Benchmark'
echo "$out" | awk '
	/^BenchmarkRenderLarge/     { render = $3; for (i = 4; i <= NF; i++) if ($(i) == "MB-svg") mb = $(i-1) }
	/^BenchmarkFoldedParseLarge/ { parse = $3 }
	END {
		if (!render || !parse) { print "benchmark output missing" > "/dev/stderr"; exit 1 }
		printf "render 100k stacks to SVG: %.0f ms, %.1f MB (targets: 1000 ms, 15 MB)\n", render / 1e6, mb
		printf "read the same profile as folded text: %.0f ms\n", parse / 1e6
		printf "ratio render / folded read: %.2f\n", render / parse
		if (render > 1e9 || mb > 15) print "note: over target (a loaded machine inflates the time; the ratio is the stable figure)"
	}'
