#!/usr/bin/env bash
# Runs every Go fuzz target of the repository briefly (FUZZTIME, default 3s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
	dir=$(dirname "$file")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r target; do
		echo "fuzz $dir $target ($fuzztime)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$dir" >/tmp/scorch-fuzz.log 2>&1 || { cat /tmp/scorch-fuzz.log; exit 1; }
	done
done
