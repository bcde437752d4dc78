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
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/output"
	"github.com/scorch-dev/scorch/profiler"
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
		format  = fs.String("format", "folded", "output format: "+output.Names())
		out     = fs.String("o", "", "output file (default stdout)")
		idle    = fs.String("idle", "exclude", "samples of the idle task: include or exclude")
		ring    = fs.Int("ring-size", 0, "BPF ring buffer size in bytes (0: 8 MiB; 16 MiB with --unwind dwarf; twice that for off-CPU types)")
		verbose = fs.Bool("v", false, "log progress to stderr")
		title   = fs.String("title", "", "flame graph title")
		memprof = fs.String("memprofile", "", "write a Go heap profile of scorch itself to this file (profile the profiler)")
	)
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
