#!/usr/bin/env bash
# Regenerates the BPF objects into a temporary copy of bpf/ and compares them
# with the committed ones, so a C change without `make generate` fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ls bpf/*.c >/dev/null 2>&1 || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" && cp go.mod go.sum "$tmp/src/" && cp -r bpf "$tmp/src/"
(cd "$tmp/src" && go generate ./bpf/... >/dev/null)
status=0
for f in bpf/*_bpfel.go bpf/*_bpfel.o; do
	if ! cmp -s "$f" "$tmp/src/$f"; then
		echo "$f does not match its C source: run 'make generate' and commit the result" >&2
		status=1
	fi
done
exit $status
