#!/usr/bin/env bash
# Compact unwind tables (issue 16): the time and memory to compile a file's
# .eh_frame into the table the BPF unwinder will load, per MB of .eh_frame,
# for libc and libLLVM (a large C++ library; skipped when package llvm is
# missing), and per MB of .gopclntab for a stripped Go binary (its table
# comes from the pclntab's frame sizes), and the table's entries and bytes.
# Baseline, same run: parsing libc's CFI for the user-space unwinder
# (BenchmarkLoadLibc).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'LoadLibc|BuildCompact' -benchtime "${BENCHTIME:-10x}" -count 1 ./unwind/)
field() { awk -v name="Benchmark$1-" -v unit="$2" 'index($1, name) == 1 { for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' <<<"$out"; }
base=$(field LoadLibc ns/op)
[[ -n $base ]] || { echo "$out"; echo "bench-unwind-tables: LoadLibc missing" >&2; exit 1; }
for b in BuildCompactLibc BuildCompactLLVM BuildCompactGo; do
	sec=eh_frame
	[[ $b == BuildCompactGo ]] && sec=gopclntab
	ns=$(field "$b" ns/op)
	if [[ -z $ns ]]; then
		echo "$b: skipped ($(grep -A1 "$b" <<<"$out" | grep -o 'none of.*' || echo 'see go test -bench '"$b"' ./unwind/'))"
		continue
	fi
	awk -v n="$b" -v ns="$ns" -v base="$base" -v msmb="$(field "$b" ms/MB)" -v amb="$(field "$b" allocMB/MB)" \
		-v ent="$(field "$b" entries)" -v tb="$(field "$b" table-bytes)" -v eh="$(field "$b" "$sec-bytes")" -v sec="$sec" 'BEGIN {
		printf "%-17s %7.1f ms  %6.0f ms/MB of .%s (%.2f MB)  %5.0f MB allocated/MB  x%.1f parsing libc CFI (%.1f ms)  %d entries, %.0f KiB table (%.2f of .%s)\n",
			n, ns/1e6, msmb, sec, eh/1048576, amb, ns/base, base/1e6, ent, tb/1024, tb/eh, sec
	}'
done
