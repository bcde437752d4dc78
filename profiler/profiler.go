// Package profiler loads scorch's BPF programs, attaches them to the
// targets a user chose, collects their events and turns them into a
// symbolized capture.
package profiler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

// Errors callers tell apart.
var (
	// ErrUnavailable: this host cannot run the collector (kernel, PMU, lockdown).
	ErrUnavailable = errors.New("collector unavailable on this host")
	// ErrPermission: scorch needs root (or CAP_BPF and CAP_PERFMON).
	ErrPermission = errors.New("permission denied")
	// ErrBadTarget: the target named does not exist.
	ErrBadTarget = errors.New("bad target")
)

// Options configure a recording.
type Options struct {
	Symbolizer *symbolizer.Symbolizer // shared caches; nil: one for this capture
	Unwinder   *unwind.Unwinder       // shared CFI tables; nil: one for this capture
	// UnwindTables are the BPF unwinder's maps, shared by the captures
	// that use them (--unwind auto); nil: one set for this capture.
	UnwindTables *UnwindTables
	// UnwindEntries sizes the unwind tables made for this capture (see
	// UnwindTableOptions.Entries); 0: the default.
	UnwindEntries int
	// UnwindCacheDir keeps the unwind tables this capture builds on disk
	// for the next ones (DefaultUnwindCacheDir); "": built each time.
	UnwindCacheDir string
	Logger         *slog.Logger
	// Progress is called about every 250 ms while the capture runs.
	Progress func(Progress)
	// RingBytes is the BPF ring buffer size (a power of two, at least a
	// page); 0: 8 MiB, 16 MiB for --unwind dwarf (twice that for off-CPU).
	RingBytes int
	// CommandStdout and CommandStderr receive the output of a `-- CMD` target.
	CommandStdout, CommandStderr io.Writer
	// CommandExit, when set, receives a `-- CMD` target's status (ExitCode)
	// when it ended by itself, not because the capture's duration was over.
	CommandExit func(code int)
	// Ready, when set, is called once the collector is attached (tests use it
	// to start their workload).
	Ready func()
	// Mappings, when set, also hears of the executable mappings,
	// execs, forks and exits of every process during the capture, in time
	// order (see MappingListener).
	Mappings MappingListener
	// Phases, when set, receives where the capture's time went.
	Phases *Phases
	// BoostNice, when below the nice value scorch runs at, is the nice
	// value of scorch's threads outside a Record's window: from Record's
	// start until the window starts, and from the window's end on (drain,
	// naming; the threads keep it after Record returns, for the caller's
	// output). The window runs at the starting value. 0: no boost.
	// StartContinuous ignores it.
	BoostNice int

	began time.Time // when Record was called
	boost *boost    // BoostNice's state, nil without one
	// ownTables: the unwind tables are this capture's (made by Record),
	// not shared with later captures.
	ownTables bool
	// idleWait, when set, is the longest the readers of the ring and of
	// the mapping records sleep without a wakeup (pollInterval and
	// trackerIdle otherwise): a continuous capture at a low rate reads
	// once a second, not 220 times.
	idleWait time.Duration
}

// Phases is where a capture's time went: before its window (Load, Attach),
// the window, and after it.
type Phases struct {
	Load      time.Duration // from Record to the BPF objects loaded
	Attach    time.Duration // filters, ring buffer and event sources attached
	Window    time.Duration // sampling
	Drain     time.Duration // the ring buffer read to its end once the sources stopped
	Symbolize time.Duration // naming the stacks still unnamed when the window ended
	Aggregate time.Duration // the capture built from the events
	Close     time.Duration // the event sources, maps, tables and process snapshots released
}

// phases is where the timings go: Options.Phases, or nowhere.
func (o *Options) phases() *Phases {
	if o.Phases == nil {
		o.Phases = new(Phases)
	}
	return o.Phases
}

// Progress reports a running capture.
type Progress struct {
	Elapsed time.Duration
	Events  uint64
	Lost    uint64
}

// Record runs one capture with the given parameters until the duration ends,
// ctx is cancelled (what was collected is returned, without error) or a
// `-- CMD` target exits.
func Record(ctx context.Context, p capture.Params, opts Options) (*capture.Capture, error) {
	if opts.BoostNice != 0 {
		if opts.Logger == nil {
			opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		opts.boost = newBoost(&opts)
	}
	mode, cleanup, err := prepare(&p, &opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	col, ok := collectorFor(p.Type)
	if !ok {
		return nil, fmt.Errorf("%w: capture type %s is not implemented yet", ErrUnavailable, p.Type)
	}
	c, err := col.record(ctx, p, mode, opts)
	if c != nil {
		t := time.Now()
		completeRoots(c)
		opts.Phases.Aggregate += time.Since(t)
	}
	return c, err
}

// prepare checks a capture's parameters and fills in the options' defaults
// (symbolizer, unwinder, unwind tables) for Record and StartContinuous;
// cleanup releases what it made.
func prepare(p *capture.Params, opts *Options) (mode unwind.Mode, cleanup func(), err error) {
	cleanup = func() {}
	opts.began = time.Now()
	opts.phases()
	warmKernelTypes()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := p.Duration
	p.Defaults()
	if len(p.Command) > 0 {
		p.Duration = d // 0: a command runs until it exits
	}
	if err := p.Validate(0); err != nil {
		return 0, cleanup, err
	}
	if err := checkPrivileges(); err != nil {
		return 0, cleanup, err
	}
	for _, pid := range p.PIDs {
		if !processExists(pid) {
			return 0, cleanup, fmt.Errorf("%w: process %d does not exist", ErrBadTarget, pid)
		}
	}
	for _, tid := range p.TIDs {
		if !processExists(tid) {
			return 0, cleanup, fmt.Errorf("%w: thread %d does not exist", ErrBadTarget, tid)
		}
	}
	if mode, err = unwind.ParseMode(p.Unwind); err != nil {
		return 0, cleanup, err
	}
	var closers []func()
	cleanup = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if opts.Symbolizer == nil {
		sym := symbolizer.New(symbolizer.Options{Logger: opts.Logger, Lines: true})
		opts.Symbolizer = sym
		closers = append(closers, func() { sym.Close() })
	}
	if opts.Unwinder == nil && mode != unwind.ModeFP {
		opts.Unwinder = unwind.New(unwind.Options{Logger: opts.Logger})
	}
	if opts.UnwindTables == nil && mode == unwind.ModeAuto {
		var store *unwind.CompactStore
		if opts.Unwinder != nil {
			store = opts.Unwinder.Store() // one build of a file's table for both unwinders
		}
		t, err := NewUnwindTables(UnwindTableOptions{Entries: opts.UnwindEntries, Logger: opts.Logger, CacheDir: opts.UnwindCacheDir, Store: store})
		if err != nil {
			// The copy path still works: unwind as before the tables.
			opts.Logger.Warn("BPF unwind tables unavailable: user stacks are unwound from stack copies", "err", err)
		} else {
			opts.UnwindTables, opts.ownTables = t, true
			phases := opts.Phases
			closers = append(closers, func() {
				s := time.Now()
				t.Close()
				phases.Close += time.Since(s)
			})
		}
	}
	return mode, cleanup, nil
}

func checkPrivileges() error {
	if os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("%w: scorch loads BPF programs and needs root (run it with sudo)", ErrPermission)
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// copyBytes is the user stack copy per unwinding mode.
func copyBytes(mode unwind.Mode) uint32 {
	switch mode {
	case unwind.ModeAuto:
		return 1024
	case unwind.ModeDWARF:
		return 16384
	}
	return 0
}

func ringBytes(opts Options, mode unwind.Mode) uint32 {
	if opts.RingBytes > 0 {
		n := uint32(os.Getpagesize())
		for n < uint32(opts.RingBytes) {
			n <<= 1
		}
		return n
	}
	// The reader polls every 20 ms and is woken when an eighth of the ring
	// fills, so 8 MiB holds bursts of ~5k stack records with 1 KiB copies.
	// The ring is mapped twice into scorch, so it counts double in its RSS.
	if mode == unwind.ModeDWARF {
		return 16 << 20
	}
	return 8 << 20
}

// wakeupBytes is the data that makes the BPF programs wake the reader: an
// eighth of the ring.
func wakeupBytes(ring uint32) uint64 { return uint64(ring / 8) }

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// hostMeta fills the host facts of a capture's metadata.
func hostMeta(p capture.Params) capture.Meta {
	host, _ := os.Hostname()
	m := capture.Meta{
		Type:       p.Type,
		Event:      p.Event,
		Unit:       p.Type.Unit(p.Event),
		Params:     p,
		Host:       host,
		Kernel:     kernelRelease(),
		Arch:       hostArch.Name,
		Timestamps: true,
		Source:     "bpf",
	}
	return m
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// verifierError adds the verifier log to load errors.
func verifierError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("loading BPF objects: %+v", ve)
	}
	return fmt.Errorf("loading BPF objects: %w", err)
}
