#!/usr/bin/env bash
# Memory collector overhead (issue 9), in one run: malloc/free calls per
# second of a malloc-heavy loop uninstrumented and with `scorch record
# --type mem --event malloc` attached (uprobes trap into the kernel: the
# ratio and the cost per call); pages touched per second by grow_heap
# uninstrumented and with the page-faults collector on it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-mem: needs root"; exit 0; }
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -g -fno-omit-frame-pointer -fno-builtin -o "$tmp/memload" scripts/bench/memload.c
SECS=${SECS:-3}

# run MODE [SCORCH ARGS...]: the workload's rate, with scorch recording it
# when arguments are given. The workload waits on a fifo until scorch is
# attached.
run() {
	local mode=$1
	shift
	rm -f "$tmp/go"
	mkfifo "$tmp/go"
	"$tmp/memload" "$mode" "$SECS" <"$tmp/go" >"$tmp/rate" &
	local w=$!
	exec 3>"$tmp/go"
	local s=
	if (($#)); then
		"$SCORCH" record "$@" --pid "$w" --duration 10m --format folded -o /dev/null 2>"$tmp/err" &
		s=$!
		sleep 2
	fi
	echo go >&3
	exec 3>&-
	wait "$w"
	if [[ -n $s ]]; then
		kill -INT "$s"
		wait "$s" || true
	fi
	cat "$tmp/rate"
}

# best MODE: the better of two uninstrumented runs (the first one also
# warms the page cache and the CPU frequency).
best() {
	local a b
	a=$(run "$1")
	b=$(run "$1")
	echo $((a > b ? a : b))
}

lost() { grep -o '[0-9]* events in [^,]*, [0-9]* lost' "$tmp/err" | tail -1 || true; }

base=$(best malloc)
base_malloc=$base
printf '%-40s %12d calls/s\n' "malloc+free, uninstrumented (best of 2)" "$base"
for unwind in fp auto; do
	inst=$(run malloc --type mem --event malloc --unwind "$unwind")
	printf '%-40s %12d calls/s  (%.2f%% of uninstrumented, %.2f us more per call) %s\n' "with mem malloc, --unwind $unwind" "$inst" \
		"$(echo "100*$inst/$base" | bc -l)" "$(echo "1000000/$inst - 1000000/$base" | bc -l)" "$(lost)"
done

base=$(best grow)
printf '%-40s %12d pages/s\n' "grow_heap, uninstrumented (best of 2)" "$base"
for unwind in fp auto; do
	inst=$(run grow --type mem --event page-faults --unwind "$unwind")
	printf '%-40s %12d pages/s  (%.1f%% of uninstrumented, %.2f us more per fault) %s\n' "with mem page-faults, --unwind $unwind" "$inst" \
		"$(echo "100*$inst/$base" | bc -l)" "$(echo "1000000/$inst - 1000000/$base" | bc -l)" "$(lost)"
done
if command -v bpftrace >/dev/null; then
	# The floor: one uprobe that only counts, per malloc/free pair (scorch
	# places three: malloc entry and return, free).
	libc=$(ldd "$tmp/memload" | awk '/libc.so/ {print $3}')
	rm -f "$tmp/go"
	mkfifo "$tmp/go"
	"$tmp/memload" malloc "$SECS" <"$tmp/go" >"$tmp/rate" &
	w=$!
	exec 3>"$tmp/go"
	bpftrace -e "uprobe:$libc:free /pid == $w/ { @n = count(); }" >/dev/null 2>&1 &
	bt=$!
	sleep 5
	echo go >&3
	exec 3>&-
	wait "$w"
	kill -INT $bt
	wait $bt || true
	bpft=$(cat "$tmp/rate")
	printf '%-40s %12d calls/s  (%.2f%% of uninstrumented, %.2f us more per call)\n' "bpftrace: one counting uprobe" "$bpft" \
		"$(echo "100*$bpft/$base_malloc" | bc -l)" "$(echo "1000000/$bpft - 1000000/$base_malloc" | bc -l)"
fi
echo "uprobes cost a trap per call (scorch: malloc entry, return and free): expect a large ratio on malloc-heavy code"
