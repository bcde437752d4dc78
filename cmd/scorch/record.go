package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/internal/peakheap"
	"github.com/scorch-dev/scorch/output"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/symbolizer"
)

// paramFlag is the flag of one capture parameter (capture.Fields): the
// parameter's own parser, under its name with '-' for '_'.
type paramFlag struct {
	p    *capture.Params
	name string
}

func (f *paramFlag) String() string {
	if f.p == nil { // flag's zero value, for PrintDefaults
		return ""
	}
	return f.p.Get(f.name)
}

func (f *paramFlag) Set(s string) error { return f.p.Set(f.name, s) }

// paramFlags adds a flag per capture parameter to fs, set into p.
func paramFlags(fs *flag.FlagSet, p *capture.Params) {
	for _, f := range capture.Fields {
		fs.Var(&paramFlag{p: p, name: f.Name}, strings.ReplaceAll(f.Name, "_", "-"), f.Usage)
	}
}

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The CLI's defaults; a command runs until it exits unless --duration is given.
	p := capture.Params{Type: capture.CPU, Duration: capture.Duration(capture.DefaultDuration), Hz: capture.DefaultHz, Unwind: capture.DefaultUnwind}
	paramFlags(fs, &p)
	var (
		format      = fs.String("format", "folded", "output format: "+output.Names())
		out         = fs.String("o", "", "output file (default stdout)")
		idle        = fs.String("idle", "exclude", "samples of the idle task: include or exclude")
		verbose     = fs.Bool("v", false, "log progress to stderr, and where the time and memory went")
		title       = fs.String("title", "", "flame graph title")
		memprof     = fs.String("memprofile", "", "write a Go heap profile of scorch itself to this file (profile the profiler)")
		cpuprof     = fs.String("cpuprofile", "", "write a Go CPU profile of scorch itself, from start to the output written, to this file")
		ring        = byteSize{defaultRingSize}
		symbolCache = byteSize{defaultSymbolCache}
		memLimit    = byteSize{defaultMemoryLimit}
		boostNice   = fs.Int("boost-nice", defaultBoostNice, "nice value of scorch's threads before and after the window (load, attach; drain, naming, output) when below the one it runs at, so that a busy host delays the capture's start and its output less; the window itself and a command run at scorch's own; 0: no boost")
		gcPercent   = fs.Int("gc-percent", defaultGCPercent, "the garbage collector's target, as GOGC: the heap grows this many percent over the live heap before a collection (GOGC in the environment overrides the default)")
		unwindCache = fs.String("unwind-cache", profiler.DefaultUnwindCacheDir(), "directory keeping the BPF unwinder's tables for the next captures (--unwind auto); empty: build them each time")
		kernelCache = fs.String("kernel-cache", symbolizer.DefaultKernelCacheDir(), "directory keeping the kernel's and its modules' symbols for the next captures of this boot (keyed by boot id and kernel and module builds; other kernel code is read from /proc/kallsyms as it is met); empty: read /proc/kallsyms each time")
		dwarfCache  = fs.String("dwarf-cache", symbolizer.DefaultDWARFCacheDir(), "directory keeping the decompressed DWARF sections of debug files (libc's) for the next captures' file:line; empty: decompress them each time")
	)
	// Bounds like serve's: a long whole-host capture must not hold every
	// symbol table it met.
	fs.Var(&ring, "ring-size", "BPF ring buffer, e.g. 16MiB (default 0: the profiler's, 8 MiB, 16 MiB with --unwind dwarf, twice that for off-CPU types)")
	fs.Var(&symbolCache, "symbol-cache", "memory for parsed symbol tables, e.g. 256MiB; a smaller cache parses large binaries again")
	fs.Var(&memLimit, "memory-limit", "soft limit of scorch's Go memory, e.g. 256MiB (the garbage collector works harder near it, and without end below the live heap; default none)")
	setUsage(fs, stderr, "scorch record --type TYPE [TARGET] [flags] [-- CMD ARGS...]")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	p.Command = fs.Args()
	if len(p.Command) > 0 && !durationSet {
		p.Duration = 0 // a command runs until it exits
	}
	if len(fs.Args()) > 0 && !hasDashDash(args) {
		fmt.Fprintf(stderr, "scorch record: unexpected argument %q: put a command to profile after --\n", fs.Args()[0])
		return exitUsage
	}
	if durationSet && p.Duration <= 0 {
		fmt.Fprintf(stderr, "scorch record: --duration %s must be positive, e.g. --duration 10s\n", time.Duration(p.Duration))
		return exitUsage
	}
	if p.Hz < capture.MinHz || p.Hz > capture.MaxHz {
		fmt.Fprintf(stderr, "scorch record: --hz %d is out of range: allowed %d..%d\n", p.Hz, capture.MinHz, capture.MaxHz)
		return exitUsage
	}
	if err := p.Validate(0); err != nil {
		fmt.Fprintf(stderr, "scorch record: %v\n", err)
		return exitUsage
	}
	if _, err := output.Lookup(*format); err != nil {
		fmt.Fprintf(stderr, "scorch record: --%v\n", err)
		return exitUsage
	}
	if *idle != "include" && *idle != "exclude" {
		fmt.Fprintf(stderr, "scorch record: --idle %q is not supported: allowed values are include, exclude\n", *idle)
		return exitUsage
	}
	for _, pid := range p.PIDs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			fmt.Fprintf(stderr, "scorch record: --pid %d: no such process (list processes with ps)\n", pid)
			return exitUsage
		}
	}
	for _, tid := range p.TIDs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", tid)); err != nil {
			fmt.Fprintf(stderr, "scorch record: --tid %d: no such thread (list threads with ps -eL)\n", tid)
			return exitUsage
		}
	}
	if ring.n != 0 && (ring.n < 64<<10 || ring.n > 1<<30) {
		fmt.Fprintf(stderr, "scorch record: --ring-size %d is out of range: allowed 64KiB..1GiB, or 0 for the profiler's default\n", ring.n)
		return exitUsage
	}
	if symbolCache.n < 1<<20 {
		fmt.Fprintf(stderr, "scorch record: --symbol-cache %d is too small: give at least 1MiB\n", symbolCache.n)
		return exitUsage
	}
	if *boostNice < profiler.MinNice || *boostNice > profiler.MaxNice {
		fmt.Fprintf(stderr, "scorch record: --boost-nice %d is out of range: allowed %d..%d, or 0 for no boost\n", *boostNice, profiler.MinNice, profiler.MaxNice)
		return exitUsage
	}
	if *gcPercent < 10 || *gcPercent > 1000 {
		fmt.Fprintf(stderr, "scorch record: --gc-percent %d is out of range: allowed 10..1000\n", *gcPercent)
		return exitUsage
	}
	if memLimit.n > 0 {
		debug.SetMemoryLimit(memLimit.n)
	}
	gcSet := false
	fs.Visit(func(f *flag.Flag) { gcSet = gcSet || f.Name == "gc-percent" })
	if _, env := os.LookupEnv("GOGC"); gcSet || !env {
		debug.SetGCPercent(*gcPercent)
	}

	defer peakheap.FromEnv()()
	if *cpuprof != "" {
		if f, err := os.Create(*cpuprof); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sym := symbolizer.New(symbolizer.Options{Logger: logger, CacheBytes: symbolCache.n, Lines: true, DWARFCache: *dwarfCache, KernelCache: *kernelCache})
	defer sym.Close()
	var phases profiler.Phases
	opts := profiler.Options{Logger: logger, Symbolizer: sym, RingBytes: int(ring.n), CommandStdout: stderr, CommandStderr: stderr, Phases: &phases,
		UnwindCacheDir: *unwindCache, BoostNice: *boostNice}
	cmdExit := -1
	opts.CommandExit = func(code int) { cmdExit = code }
	var line *progressLine
	switch {
	case *verbose:
		opts.Progress = func(pr profiler.Progress) {
			logger.Info("recording", "elapsed", pr.Elapsed.Round(time.Millisecond), "events", pr.Events, "lost", pr.Lost)
		}
	case isTerminal(stderr):
		line = &progressLine{w: stderr, typ: p.Type, planned: time.Duration(p.Duration)}
		opts.Progress = line.show
	}
	recordAt := time.Now()
	c, err := profiler.Record(ctx, p, opts)
	line.clear()
	if *memprof != "" {
		if f, ferr := os.Create(*memprof); ferr == nil {
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "scorch record: %v\n", err)
		if errors.Is(err, profiler.ErrBadTarget) {
			return exitUsage
		}
		return exitFailure
	}
	st := c.Meta.Stats
	if *verbose {
		for _, n := range st.Counters.Sorted() {
			fmt.Fprintf(stderr, "scorch: stat %s=%d\n", capture.CounterKey{Counter: n.Counter, Reason: n.Reason}, n.Value)
		}
	}
	if u := profiler.UnwindSummary(st); u != "" && st.UnwindEnded == 0 {
		fmt.Fprintf(stderr, "scorch: %s\n", u)
	}
	for _, w := range c.Meta.Warnings {
		fmt.Fprintf(stderr, "scorch: warning: %s\n", w)
	}
	for _, n := range c.Meta.Notes {
		fmt.Fprintf(stderr, "scorch: note: %s\n", n)
	}
	// The summary is stderr's last line.
	fmt.Fprintf(stderr, "scorch: %d events in %s, %d lost", st.Samples, c.Meta.Duration.Round(time.Millisecond), st.Lost)
	if st.StackErrors > 0 || st.Truncated > 0 {
		fmt.Fprintf(stderr, ", %d stack errors, %d truncated", st.StackErrors, st.Truncated)
	}
	fmt.Fprintln(stderr)
	q := capture.Query{IncludeIdle: *idle == "include", View: p.View}
	began := time.Now()
	var writing time.Duration // in the output's Write calls
	if err := writeFile(*out, stdout, func(w io.Writer) error {
		return writeOutput(&timedWriter{w: w, d: &writing}, c, *format, q, flamegraph.Options{Title: *title})
	}); err != nil {
		fmt.Fprintf(stderr, "scorch record: %v\n", err)
		return exitFailure
	}
	if *verbose {
		// Writing is what the output's writes and the file's close and
		// rename took; rendering the rest.
		total := time.Since(began)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
		// start is the process's own start-up (runtime, flags, caches)
		// until Record; close what releasing the capture's BPF objects,
		// tables and snapshots took after it was built.
		fmt.Fprintf(stderr, "scorch: phases start=%s load=%s attach=%s window=%s drain=%s symbolize=%s aggregate=%s close=%s render=%s write=%s before_window=%s after_window=%s beyond_window=%s\n",
			ms(recordAt.Sub(processStart)), ms(phases.Load), ms(phases.Attach), ms(phases.Window), ms(phases.Drain), ms(phases.Symbolize), ms(phases.Aggregate),
			ms(phases.Close), ms(total-writing), ms(writing),
			ms(recordAt.Sub(processStart)+phases.Load+phases.Attach), ms(phases.Drain+phases.Symbolize+phases.Aggregate+phases.Close+total),
			ms(time.Since(processStart)-phases.Window))
		if hwm := peakRSS(); hwm > 0 {
			cs := sym.CacheStats()
			fmt.Fprintf(stderr, "scorch: peak RSS %.1f MiB (--memory-limit %.0f MiB, --symbol-cache %.0f MiB: %.1f MiB used, %d files parsed, %d evicted)\n",
				float64(hwm)/(1<<20), float64(memLimit.n)/(1<<20), float64(symbolCache.n)/(1<<20), float64(cs.Cost)/(1<<20), cs.Misses, cs.Evictions)
		}
	}
	if cmdExit >= 0 {
		// Like perf record: the profiled command's status, once the
		// output is written.
		return cmdExit
	}
	return exitOK
}

// The bounds of record's memory. The ring is the profiler's default (8 MiB,
// twice that for off-CPU types and for --unwind dwarf): serve's flat 8 MiB
// lost events of off-CPU storms. The symbol cache is
// the agent's, which also names every process of a host: with serve's
// 64 MiB a whole-host capture among a few large Go binaries evicted and
// parsed them again all along (143 parses in 15 s here, twice the CPU, no
// less RSS). Not serve's 96 MiB soft limit: a whole-host capture's live
// heap is above it, and the garbage collector then runs without end (3x the
// CPU for a 5 s capture here, for no less memory).
//
// The collector's target is half of Go's default: a whole-host capture's
// garbage is mostly unwind and symbol tables being built, and at GOGC=100
// the heap grew to twice its live size (20 s whole-host cpu captures, 2 busy
// threads: anonymous RSS 105 -> 83 MiB at GOGC=50, the CPU within noise);
// unlike a soft limit it cannot make the collector run without end.
//
// Outside the window scorch runs at nice -10 (--boost-nice): on 2 CPUs
// busy with the workload, the load and attach waited for a CPU most of
// their time (load 130 -> 65 ms at nice -20, 5 s whole-host captures, 2
// busy threads, load average 5.5). -10 rather than -20 or a real-time
// class: a boosted thread still leaves a nice-0 thread on its CPU about a
// tenth of it, and never starves it.
const (
	defaultBoostNice   = -10
	defaultGCPercent   = 50
	defaultRingSize    = 0
	defaultSymbolCache = 256 << 20
	defaultMemoryLimit = 0
)

// processStart is about when scorch started: package initialization.
var processStart = time.Now()

// timedWriter adds the time spent in w's writes to d.
type timedWriter struct {
	w io.Writer
	d *time.Duration
}

func (t *timedWriter) Write(b []byte) (int, error) {
	s := time.Now()
	n, err := t.w.Write(b)
	*t.d += time.Since(s)
	return n, err
}

// peakRSS is the process's peak resident set (VmHWM), in bytes; 0 when
// unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func hasDashDash(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return true
		}
	}
	return false
}
