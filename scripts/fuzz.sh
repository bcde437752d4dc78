#!/usr/bin/env bash
# Runs every Go fuzz target of the repository briefly (FUZZTIME, default 3s).
# A crash found by the fuzzer fails the run (go test writes the input under
# testdata/fuzz). The fuzzing coordinator sometimes ends with "context
# deadline exceeded" when a worker is slow to stop on a loaded machine,
# without any failing input: that run is retried once and then reported.
# New interesting inputs are minimized for at most 2 s (the default, 60 s,
# would spend the whole run shrinking the first one).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
while read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "fuzz $dir $target ($fuzztime)"
		for attempt in 1 2; do
			if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$dir" >"$log" 2>&1; then
				break
			fi
			if grep -q 'Failing input written to' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
				cat "$log"
				status=1
				break
			fi
			if [[ $attempt == 2 ]]; then
				echo "warning: $target: the fuzzing coordinator timed out twice without a failing input"
			fi
		done
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)
exit $status
