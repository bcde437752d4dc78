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
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/output"
	"github.com/scorch-dev/scorch/profiler"
)

// intList is a flag holding a comma-separated list of ids.
type intList []int

func (l *intList) String() string { return fmt.Sprint([]int(*l)) }

func (l *intList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive number", part)
		}
		*l = append(*l, n)
	}
	return nil
}

// durationFlag accepts a Go duration or a number of seconds and remembers
// whether it was given.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := capture.ParseDuration(s)
	if err != nil {
		return err
	}
	f.d, f.set = d, true
	return nil
}

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		p        capture.Params
		typ      = fs.String("type", "cpu", "capture type: "+capture.TypeList())
		duration durationFlag
		pids     intList
		tids     intList
		minBlock durationFlag
		maxBlock durationFlag
		format   = fs.String("format", "folded", "output format: "+output.Names())
		out      = fs.String("o", "", "output file (default stdout)")
		idle     = fs.String("idle", "exclude", "samples of the idle task: include or exclude")
		ring     = fs.Int("ring-size", 0, "BPF ring buffer size in bytes (0: 8 MiB; 16 MiB with --unwind dwarf; twice that for off-CPU types)")
		verbose  = fs.Bool("v", false, "log progress to stderr")
		title    = fs.String("title", "", "flame graph title")
		memprof  = fs.String("memprofile", "", "write a Go heap profile of scorch itself to this file (profile the profiler)")
	)
	duration.d = capture.DefaultDuration
	fs.Var(&duration, "duration", "how long to record (Go duration or seconds)")
	fs.IntVar(&p.Hz, "hz", capture.DefaultHz, fmt.Sprintf("sampling frequency, %d..%d", capture.MinHz, capture.MaxHz))
	fs.Var(&pids, "pid", "profile these processes (comma-separated)")
	fs.Var(&tids, "tid", "profile these threads (comma-separated)")
	fs.StringVar(&p.Comm, "comm", "", "profile processes with this name")
	fs.StringVar(&p.Unwind, "unwind", capture.DefaultUnwind, "user stack unwinding: fp, auto or dwarf")
	fs.StringVar(&p.Event, "event", "", "event name (mem and event types)")
	fs.StringVar(&p.View, "view", "", "mem: alloc or inuse")
	fs.StringVar(&p.State, "state", "", "off-CPU task state: all, S or D")
	fs.Var(&minBlock, "min-block", "off-CPU: shortest blocked time kept (default 1us)")
	fs.Var(&maxBlock, "max-block", "off-CPU: longest blocked time kept (default unbounded)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	p.Type = capture.Type(*typ)
	p.PIDs, p.TIDs = pids, tids
	p.Command = fs.Args()
	p.Duration = capture.Duration(duration.d)
	p.MinBlock, p.MaxBlock = capture.Duration(minBlock.d), capture.Duration(maxBlock.d)
	if len(p.Command) > 0 && !duration.set {
		p.Duration = 0 // a command runs until it exits
	}
	if len(fs.Args()) > 0 && !hasDashDash(args) {
		fmt.Fprintf(stderr, "scorch record: unexpected argument %q: put a command to profile after --\n", fs.Args()[0])
		return exitUsage
	}
	if duration.set && duration.d <= 0 {
		fmt.Fprintf(stderr, "scorch record: --duration %s must be positive, e.g. --duration 10s\n", duration.d)
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
	if *ring < 0 {
		fmt.Fprintf(stderr, "scorch record: --ring-size must not be negative\n")
		return exitUsage
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := profiler.Options{Logger: logger, RingBytes: *ring, CommandStdout: stderr, CommandStderr: stderr}
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
	if *verbose && len(st.Extra) > 0 {
		keys := make([]string, 0, len(st.Extra))
		for k := range st.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stderr, "scorch: stat %s=%d\n", strings.ReplaceAll(k, " ", "_"), st.Extra[k])
		}
	}
	if u := profiler.UnwindSummary(st); u != "" && st.UnwindEnded == 0 {
		fmt.Fprintf(stderr, "scorch: %s\n", u)
	}
	for _, w := range c.Meta.Warnings {
		fmt.Fprintf(stderr, "scorch: warning: %s\n", w)
	}
	// The summary is stderr's last line.
	fmt.Fprintf(stderr, "scorch: %d events in %s, %d lost", st.Samples, c.Meta.Duration.Round(time.Millisecond), st.Lost)
	if st.StackErrors > 0 || st.Truncated > 0 {
		fmt.Fprintf(stderr, ", %d stack errors, %d truncated", st.StackErrors, st.Truncated)
	}
	fmt.Fprintln(stderr)
	q := capture.Query{IncludeIdle: *idle == "include", View: p.View}
	if err := writeFile(*out, stdout, func(w io.Writer) error {
		return writeOutput(w, c, *format, q, flamegraph.Options{Title: *title})
	}); err != nil {
		fmt.Fprintf(stderr, "scorch record: %v\n", err)
		return exitFailure
	}
	if cmdExit >= 0 {
		// Like perf record: the profiled command's status, once the
		// output is written.
		return cmdExit
	}
	return exitOK
}

func hasDashDash(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return true
		}
	}
	return false
}
