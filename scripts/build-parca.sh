#!/usr/bin/env bash
# Builds the Parca server that the fleet end-to-end test pushes to, once, and
# prints the binary's path. The build uses tools/parca (its own go.mod, so
# scorch's stays clean) and is cached by the hash of that module's go.sum:
# a cold build downloads ~500 MB of modules and compiles for several minutes
# on 2 cores; later calls return at once. Concurrent callers wait on a lock.
#
#   SCORCH_TOOLS_CACHE  where binaries are kept (default ~/.cache/scorch/tools)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/tools/parca"
version="$(awk '$1=="github.com/parca-dev/parca"{print $2}' "$mod/go.mod")"
sum="$(sha256sum "$mod/go.sum" | cut -c1-12)"
cache="${SCORCH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scorch/tools}"
dir="$cache/parca-$version-$sum"
bin="$dir/parca"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [[ ! -x "$bin" ]]; then
	echo "build-parca: building parca $version into $dir (cold: several minutes)" >&2
	start=$(date +%s)
	(cd "$mod" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$bin.tmp" github.com/parca-dev/parca/cmd/parca)
	mv "$bin.tmp" "$bin"
	echo "build-parca: built in $(( $(date +%s) - start )) s" >&2
fi
echo "$bin"
