#!/usr/bin/env bash
# Sampler overhead (issue 2): wall time of a fixed CPU-bound workload on all
# CPUs with scorch sampling every CPU at 99 and 999 Hz and with
# `perf record -g -a` at the same rates, against no profiling, all in this
# run; the profilers' own CPU seconds per 10k samples; the BPF program's cost
# per sample (kernel.bpf_stats_enabled) and scorch's load+attach time.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "bench-sampler: needs root"; exit 0; }
SCORCH=${SCORCH:-bin/scorch}
[[ -x $SCORCH ]] || go build -o "$SCORCH" ./cmd/scorch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; sysctl -qw kernel.bpf_stats_enabled=${old_stats:-0}' EXIT
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
gcc -O2 -fno-omit-frame-pointer -pthread -o "$tmp/cpuwork" scripts/bench/cpuwork.c
ncpu=$(nproc)
ITERS=${ITERS:-1000000000}
RUNS=${RUNS:-5}
tick=$(getconf CLK_TCK)

work() { # prints the workload's wall time in seconds
	local s e
	s=$(date +%s.%N)
	"$tmp/cpuwork" "$ncpu" "$ITERS"
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cputime() { # user+sys seconds of every thread of a process group (perf runs under a wrapper)
	local p files=()
	for p in $(pgrep -g "$1"); do files+=(/proc/"$p"/task/*/stat); done
	cat "${files[@]}" 2>/dev/null | awk -v t="$tick" '{s += $14 + $15} END {print s / t}'
}

base=$(for i in $(seq "$RUNS"); do work; done | median)
printf '%-28s %8.3fs (median of %d runs of %d threads)\n' "no profiling" "$base" "$RUNS" "$ncpu"

declare -A slow own samples total
run_profiled() { # name, command...: run the workload under a profiler
	local name=$1; shift
	local times=() cpu=0 n=0 all=0
	for i in $(seq "$RUNS"); do
		setsid /usr/bin/time -f '%U %S' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" &
		local pid=$!
		sleep 1
		local t0; t0=$(cputime "$pid")
		times+=("$(work)")
		local t1; t1=$(cputime "$pid")
		cpu=$(echo "$cpu + $t1 - $t0" | bc -l)
		if [[ $name == scorch* ]]; then
			bpftool prog show name sample_cpu -j 2>/dev/null >"$tmp/prog.json" || true
		fi
		kill -INT -- "-$pid"; wait "$pid" || true
		all=$(echo "$all + $(tail -1 "$tmp/time" | awk '{print $1 + $2}')" | bc -l)
		if [[ $name == scorch* ]]; then
			n=$((n + $(grep -o '^scorch: [0-9]* events' "$tmp/err" | awk '{print $2}')))
		else
			n=$((n + $(perf script -i "$tmp/perf.data" -F time 2>/dev/null | wc -l)))
			# perf names the frames afterwards: count what that costs too.
			/usr/bin/time -f '%U %S' -o "$tmp/time" perf script -i "$tmp/perf.data" >/dev/null 2>&1 || true
			all=$(echo "$all + $(tail -1 "$tmp/time" | awk '{print $1 + $2}')" | bc -l)
		fi
	done
	local med; med=$(printf '%s\n' "${times[@]}" | median)
	slow[$name]=$(echo "$med / $base" | bc -l)
	samples[$name]=$n
	own[$name]=$(echo "$cpu * 10000 / ($n + 1)" | bc -l)
	total[$name]=$(echo "$all * 10000 / ($n + 1)" | bc -l)
	printf '%-28s %8.3fs  slowdown x%.4f  own CPU while recording %.3fs, to a symbolized profile %.3fs, per 10k samples (%d samples)\n' "$name" "$med" "${slow[$name]}" "${own[$name]}" "${total[$name]}" "$n"
}

sysctl -qw kernel.bpf_stats_enabled=1
for hz in 99 999; do
	run_profiled "scorch $hz Hz" "$SCORCH" record --type cpu --hz "$hz" --duration 10m --unwind fp -o "$tmp/scorch.folded"
	if [[ -s $tmp/prog.json ]]; then
		python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p=p[0] if isinstance(p,list) else p; print("  BPF program: %.0f ns per sample (%d runs)" % (p.get("run_time_ns",0)/max(p.get("run_cnt",1),1), p.get("run_cnt",0)))' "$tmp/prog.json"
	fi
	if command -v perf >/dev/null; then
		run_profiled "perf -g -a $hz Hz" perf record -q -g -a -F "$hz" -e cpu-clock -o "$tmp/perf.data"
		# A ratio to a baseline under the clock tick (perf's own CPU while
		# recording often rounds to 0) or to no added slowdown says nothing.
		ratio() { # a b: a / b, or a sentence when b is too small to divide by
			if (($(echo "$2 < $3" | bc -l))); then echo "n/a (perf's figure is below $3)"; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
		}
		printf '  scorch/perf at %d Hz: added slowdown ratio %s; own CPU ratio while recording %s, to a symbolized profile %s\n' "$hz" \
			"$(ratio "$(echo "${slow["scorch $hz Hz"]} - 1" | bc -l)" "$(echo "${slow["perf -g -a $hz Hz"]} - 1" | bc -l)" 0.005)" \
			"$(ratio "${own["scorch $hz Hz"]}" "${own["perf -g -a $hz Hz"]}" "$(echo "10000 / $tick / (${samples["perf -g -a $hz Hz"]} + 1)" | bc -l)")" \
			"$(ratio "${total["scorch $hz Hz"]}" "${total["perf -g -a $hz Hz"]}" 0.000001)"
	fi
done

# The BPF side of unwinding (issue 4): cost per event and ring-buffer bytes
# per event with no stack copy (fp), a 1 KiB copy (auto) and 16 KiB (dwarf),
# sampling the workload at 999 Hz.
for unwind in fp auto dwarf; do
	"$SCORCH" record --type cpu --hz 999 --duration 10m --unwind "$unwind" -v -o /dev/null 2>"$tmp/u.err" & s=$!
	sleep 1
	work >/dev/null
	kill -INT $s; wait $s || true
	awk -v u="$unwind" -F'[ =]' '
		/^scorch: [0-9]+ events/ {n = $2}
		/stat bpf_run_ns=/ {ns = $4} /stat bpf_runs=/ {runs = $4} /stat ring_bytes=/ {rb = $4}
		END {printf "  --unwind %-6s BPF %5.0f ns per event, ring %6.0f bytes per event (%d events)\n", u, ns/(runs+1e-9), rb/(n+1e-9), n}' "$tmp/u.err"
done

# Load and attach time: a one-second capture reports it in verbose mode.
"$SCORCH" record --type cpu --duration 1s -v -o /dev/null 2>&1 | grep -o 'attach[a-z_]*=[^ ]*' | head -1 | sed 's/^/  load+attach: /' || true
echo "targets: slowdown <= 1.01 at 99 Hz, below perf at 999 Hz; own CPU <= half of perf's"
