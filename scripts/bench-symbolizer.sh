#!/usr/bin/env bash
# Symbolizer benchmark: scorch vs addr2line -f and llvm-symbolizer on the same
# 100k addresses from libc and from a large library, each tool in a fresh
# process. cold = whole run (start, load symbols, 100k lookups, print);
# warm = per-address cost after loading (run of 100k minus run of 1 address).
# Printed as ratios tool/scorch (above 1: scorch is faster). Then the Go
# benchmarks (warm lookups/s, cold load of libc, bytes per symbol).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/sym.test" ./symbolizer

now() { date +%s.%N; }
# elapsed CMD... < input: best wall seconds of up to 3 runs (1 when a run
# takes over 10 s), so that a busy machine disturbs the figures less.
elapsed() {
	local input best="" t0 t1 d i
	input=$(mktemp -p "$tmp")
	cat >"$input"
	for i in 1 2 3; do
		t0=$(now)
		if ! "$@" <"$input" >"$tmp/out" 2>"$tmp/err"; then
			echo "$* failed: $(head -3 "$tmp/err")" >&2
			return 1
		fi
		t1=$(now)
		d=$(echo "$t1 - $t0" | bc -l)
		if [[ -z $best ]] || (($(echo "$d < $best" | bc -l))); then best=$d; fi
		(($(echo "$d > 10" | bc -l))) && break
	done
	echo "$best"
}
scorch() { SCORCH_SYMBOLIZE_ELF=$1 "$tmp/sym.test" -test.run '^TestSymbolizeDriver$' -test.count=1; }
# All three print demangled function names only.
a2l() { addr2line -f -C -e "$1"; }
# llvm-symbolizer reads hex only with 0x (a bare "16d9af" is echoed back).
llvm() { sed "s/^/0x/" | llvm-symbolizer --functions=linkage --demangle --no-inlines --obj="$1"; }

# addresses FILE: N random addresses inside the file's .text (ELF addresses)
addresses() {
	read -r addr size < <(readelf -SW "$1" | awk '$2==".text" {print $4, $6}')
	python3 - "$addr" "$size" "$N" <<'PY'
import random, sys
a, s, n = int(sys.argv[1], 16), int(sys.argv[2], 16), int(sys.argv[3])
random.seed(42)
print("\n".join("%x" % (a + random.randrange(s)) for _ in range(n)))
PY
}

big=""
for cand in /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 /usr/bin/clang-14; do
	[[ -f $cand ]] && { big=$(readlink -f "$cand"); break; }
done
libc=$(readlink -f /usr/lib/x86_64-linux-gnu/libc.so.6)

printf '%-24s %-8s %10s %14s %11s %11s\n' file tool cold_s warm_us/addr cold_ratio warm_ratio
for file in "$libc" $big; do
	addresses "$file" >"$tmp/addrs"
	head -1 "$tmp/addrs" >"$tmp/one"
	declare -A cold warm
	for tool in scorch a2l llvm; do
		if [[ $tool == a2l ]] && ! command -v addr2line >/dev/null; then continue; fi
		if [[ $tool == llvm ]] && ! command -v llvm-symbolizer >/dev/null; then continue; fi
		c=$(elapsed $tool "$file" <"$tmp/addrs") || continue
		o=$(elapsed $tool "$file" <"$tmp/one") || continue
		cold[$tool]=$c
		warm[$tool]=$(echo "($c - $o) / $N * 1000000" | bc -l)
	done
	[[ -n ${cold[scorch]:-} ]] || { echo "scorch failed on $file" >&2; exit 1; }
	for tool in scorch a2l llvm; do
		[[ -n ${cold[$tool]:-} ]] || continue
		# The warm figure is a difference of two runs: floor it at 1 ns/addr.
		w=${warm[$tool]}; (($(echo "$w < 0.001" | bc -l))) && w=0.001
		ws=${warm[scorch]}; (($(echo "$ws < 0.001" | bc -l))) && ws=0.001
		warm[$tool]=$w
		wr=$(echo "$w / $ws" | bc -l)
		printf '%-24s %-8s %10.3f %14.3f %10.1fx %10.1fx\n' "$(basename "$file")" "$tool" "${cold[$tool]}" "${warm[$tool]}" \
			"$(echo "${cold[$tool]} / ${cold[scorch]}" | bc -l)" "$wr"
	done
	unset cold warm
done

echo
"$tmp/sym.test" -test.run '^$' -test.bench 'ColdLoadLibc|WarmLookup|User|ModuleFor' -test.benchtime 1s | grep -E '^Benchmark'
