#!/usr/bin/env bash
# make bench: runs every scripts/bench-*.sh; each prints its figures as
# ratios against a baseline measured in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for b in scripts/bench-*.sh; do
	[[ -x $b ]] || continue
	echo "== $b"
	"$b" || { echo "$b failed" >&2; status=1; }
	echo
done
exit $status
