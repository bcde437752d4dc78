#!/usr/bin/env bash
# Symbolization with file:line and inlined frames: scorch vs addr2line -f -i
# and llvm-symbolizer --inlines on the same 100k addresses of a library with
# DWARF (libLLVM when its debug info is installed, else libc with
# libc6-dbg), each tool in a fresh process. Times are CPU seconds (user +
# sys: the machine is shared, wall time says more about the neighbours);
# cold = the whole run (start, load symbols, lines and inlined calls, 100k
# lookups, print), warm = per-address cost after loading (the 100k run minus
# a 1-address run). Ratios are tool/scorch: above 1, scorch is faster.
# "agree" is the share of addresses where the tool's innermost file:line
# (base name) equals scorch's.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TIMEFORMAT='%U %S'

go test -c -o "$tmp/sym.test" ./symbolizer

# cpu CMD... < input: the best user+sys seconds of 3 runs.
cpu() {
	local input best="" d i
	input=$(mktemp -p "$tmp")
	cat >"$input"
	for i in 1 2 3; do
		if ! { time "$@" <"$input" >"$tmp/out.$1" 2>"$tmp/err"; } 2>"$tmp/time"; then
			echo "$* failed: $(head -3 "$tmp/err")" >&2
			return 1
		fi
		d=$(awk '{print $1 + $2}' "$tmp/time")
		if [[ -z $best ]] || (($(echo "$d < $best" | bc -l))); then best=$d; fi
	done
	echo "$best"
}
scorch() { SCORCH_SYMBOLIZE_LINES=1 SCORCH_SYMBOLIZE_ELF=$1 "$tmp/sym.test" -test.run '^TestSymbolizeDriver$' -test.count=1; }
a2l() { addr2line -a -f -C -i -e "$1"; }
llvm() { sed 's/^/0x/' | llvm-symbolizer --print-address --functions=linkage --demangle --inlines --output-style=GNU --obj="$1"; }

hasdwarf() {
	local id dbg
	readelf -SW "$1" 2>/dev/null | grep -q '\.debug_info' && return 0
	id=$(readelf -n "$1" 2>/dev/null | awk '/Build ID/ {print $3}')
	dbg=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
	[[ -n $id && -f $dbg ]] && readelf -SW "$dbg" | grep -q '\.debug_info'
}
file=""
# libLLVM needs its debug package (libllvmNN-dbgsym, from Debian's debug
# archive, which scripts/install-deps.sh adds where it is reachable); else
# the biggest -g library at hand: a pyenv build of libpython (-O3 -g, about
# 30 MB), then libc with libc6-dbg.
pyroot=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
pylibs=$(ls -S "$pyroot"/versions/*/lib/libpython3*.so.1.0 2>/dev/null || true)
for cand in /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1 $pylibs /usr/lib/x86_64-linux-gnu/libc.so.6; do
	cand=$(readlink -f "$cand" 2>/dev/null) || continue
	if [[ -f $cand ]] && hasdwarf "$cand"; then file=$cand; break; fi
	echo "bench-lines: $cand has no DWARF (no debug package installed): skipped"
done
[[ -n $file ]] || { echo "bench-lines: no library with DWARF found (apt-get install libc6-dbg)"; exit 0; }

read -r addr size < <(readelf -SW "$file" | awk '$2==".text" {print $4, $6}')
python3 - "$addr" "$size" "$N" >"$tmp/addrs" <<'PY'
import random, sys
a, s, n = int(sys.argv[1], 16), int(sys.argv[2], 16), int(sys.argv[3])
random.seed(42)
print("\n".join("%x" % (a + random.randrange(s)) for _ in range(n)))
PY
head -1 "$tmp/addrs" >"$tmp/one"

# agree TOOL: the share of addresses whose innermost file:line (base name)
# is scorch's (names differ by policy: scorch names an address from the
# symbol table, as perf does, "fdopen" where llvm says "_IO_fdopen"). Every tool prints, per address, "0x..."
# then its frames innermost first as "name" and "file:line".
agree() {
	python3 - "$tmp/out.scorch" "$tmp/out.$1" <<'PY'
import re, sys
def inner(path):
    out, lines, i = [], open(path).read().split("\n"), 0
    while i < len(lines):
        if lines[i].startswith("0x") and i + 2 < len(lines):
            name, loc = lines[i + 1], re.sub(r" \(discriminator \d+\)$", "", lines[i + 2])
            m = re.match(r"(.*?):(\d+|\?)(?::\d+)?$", loc)
            out.append((name, m.group(1).rsplit("/", 1)[-1], m.group(2)) if m else (name, "??", "?"))
            i += 3
            continue
        i += 1
    return out
a, b = inner(sys.argv[1]), inner(sys.argv[2])
same = sum(1 for x, y in zip(a, b) if x[1:] == y[1:])
print("%.1f%%" % (100.0 * same / max(len(a), len(b), 1)))
PY
}

echo "file: $file ($N addresses)"
printf '%-8s %12s %16s %11s %11s %8s\n' tool cold_cpu_s warm_us/addr cold_ratio warm_ratio agree
declare -A cold warm
for tool in scorch a2l llvm; do
	if [[ $tool == a2l ]] && ! command -v addr2line >/dev/null; then continue; fi
	if [[ $tool == llvm ]] && ! command -v llvm-symbolizer >/dev/null; then continue; fi
	o=$(cpu $tool "$file" <"$tmp/one") || continue
	c=$(cpu $tool "$file" <"$tmp/addrs") || continue
	cold[$tool]=$c
	w=$(echo "($c - $o) / $N * 1000000" | bc -l)
	(($(echo "$w < 0.001" | bc -l))) && w=0.001
	warm[$tool]=$w
done
[[ -n ${cold[scorch]:-} ]] || { echo "scorch failed on $file" >&2; exit 1; }
for tool in scorch a2l llvm; do
	[[ -n ${cold[$tool]:-} ]] || continue
	ag="-"
	[[ $tool != scorch ]] && ag=$(agree $tool)
	printf '%-8s %12.3f %16.3f %10.1fx %10.1fx %8s\n' "$tool" "${cold[$tool]}" "${warm[$tool]}" \
		"$(echo "${cold[$tool]} / ${cold[scorch]}" | bc -l)" "$(echo "${warm[$tool]} / ${warm[scorch]}" | bc -l)" "$ag"
done
