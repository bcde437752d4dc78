package profiler

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Nice values are per thread on Linux: setpriority(PRIO_PROCESS, tid)
// changes one thread, and a new thread starts with its creator's. Scorch's
// goroutines move between the Go runtime's threads, so a boost is applied
// to every thread of the process at once.

// MinNice and MaxNice bound a nice value.
const (
	MinNice = -20
	MaxNice = 19
)

// ownNice is the calling thread's nice value.
func ownNice() (int, error) {
	// The raw syscall returns 20 - nice (1..40), never negative.
	v, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0, fmt.Errorf("getpriority: %w", err)
	}
	return 20 - v, nil
}

// setThreadsNice sets the nice value of every thread of the process. A
// thread that ends meanwhile is skipped; the first other error is returned
// once every thread was tried.
func setThreadsNice(nice int) error {
	var first error
	// Twice: a thread created from one not yet set during the first pass
	// starts with the old value.
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("listing threads: %w", err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH && first == nil {
				first = fmt.Errorf("setpriority %d on thread %d: %w", nice, tid, err)
			}
		}
	}
	return first
}

// boost runs scorch's threads at a lower nice value outside the capture
// window (Options.BoostNice): on a busy host the load and attach before the
// window and the drain, naming and output after it wait less for a CPU.
// The window itself runs at the nice value scorch was started with, so the
// sampled workload gets the CPU it would have had.
type boost struct {
	base, high int
	on         bool // high is below base
}

// newBoost raises the nice value of scorch's threads to opts.BoostNice
// when that is below the starting value (0: no boost).
func newBoost(opts *Options) *boost {
	b := &boost{high: opts.BoostNice}
	if b.high == 0 {
		return b
	}
	base, err := ownNice()
	if err != nil {
		opts.Logger.Debug("nice value unknown: no priority boost", "err", err)
		return b
	}
	b.base, b.on = base, b.high < base
	b.raise(opts)
	return b
}

// raise sets the boosted nice value; a kernel that refuses (no
// CAP_SYS_NICE) leaves scorch at its own, with a debug line.
func (b *boost) raise(opts *Options) {
	if b == nil || !b.on {
		return
	}
	if err := setThreadsNice(b.high); err != nil {
		opts.Logger.Debug("no priority boost", "nice", b.high, "err", err)
	}
}

// lower sets the starting nice value back.
func (b *boost) lower(opts *Options) {
	if b == nil || !b.on {
		return
	}
	if err := setThreadsNice(b.base); err != nil {
		opts.Logger.Debug("nice value not restored", "nice", b.base, "err", err)
	}
}
