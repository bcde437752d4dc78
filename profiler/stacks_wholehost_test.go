package profiler_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
)

// logHealth logs the capture's unwinding counters and checks that they
// add up: every user stack is counted once, every early end has a reason.
func logHealth(t *testing.T, c *capture.Capture) {
	t.Helper()
	st := c.Meta.Stats
	reasons := st.Counters.Reasons(capture.UnwindEndedBy)
	var byReason uint64
	for _, n := range reasons {
		byReason += n
	}
	t.Logf("--unwind %s: %d samples (%d lost), %d processes gone before their snapshot; user stacks: %d CFI, %d fp, %d ended %v; %v", c.Meta.Params.Unwind,
		st.Samples, st.Lost, st.ProcsExited, st.UnwindCFI, st.UnwindFP, st.UnwindEnded, reasons, st.Counters.Sorted())
	if byReason != st.UnwindEnded {
		t.Errorf("%d user stacks ended early, but the reasons add up to %d: %v", st.UnwindEnded, byReason, reasons)
	}
}

// TestWholeHostStacks records the whole host in the default mode while
// issue 16's mix runs: a C program at -O2 without frame pointers with a
// 4 KiB frame (two threads), C++ without frame pointers, Go, stripped Go,
// Node.js with --perf-basic-prof and Python 3.12+ with -X perf. For each,
// at least 95% of its samples' user stacks reach the thread's entry, and
// of the samples in its leaf function 95% show its functions in order.
func TestWholeHostStacks(t *testing.T) {
	testutil.RequireRoot(t)
	secs := *stacksSecs
	type running struct {
		builtProg
		cmd *exec.Cmd
	}
	var runs []running
	for _, p := range buildStackProgs(t) {
		r := running{builtProg: p}
		if p.skip == "" {
			r.cmd = startProg(t, p.argv, secs+30)
		}
		runs = append(runs, r)
	}
	// Node and Python compile their code first; Go's runtime starts.
	time.Sleep(1500 * time.Millisecond)
	c := wholeHost(t, secs)
	logHealth(t, c)
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			if r.skip != "" {
				t.Skip(r.skip)
			}
			f := figures(c, map[uint32]bool{uint32(r.cmd.Process.Pid): true}, r.chain)
			t.Logf("%s: %s; e.g. %s", r.name, f, f.example)
			if f.bad != "" || f.badLeaf != "" {
				t.Logf("%s: incomplete, e.g. %s; with the leaf, incomplete or out of order, e.g. %s", r.name, f.bad, f.badLeaf)
			}
			if f.samples < 100 {
				t.Fatalf("only %d samples of %s in %d s at %d Hz: too few to judge (the machine is busy?)", f.samples, r.name, secs, *stacksHz)
			}
			if frac(f.complete, f.samples) < 0.95 {
				t.Errorf("only %d of %d user stacks (%.1f%%) reach the thread's entry; they end at %v; e.g. %s",
					f.complete, f.samples, 100*frac(f.complete, f.samples), first(f.ends, 6), f.bad)
			}
			if f.leaf < 50 || frac(f.ordered, f.leaf) < 0.95 {
				t.Errorf("%d of %d samples in %s show %s in order to the entry; e.g. %s", f.ordered, f.leaf,
					r.chain[len(r.chain)-1], strings.Join(r.chain, ";"), f.badLeaf)
			}
		})
	}
}

// TestWholeHostStacksEndCleanly records the whole host while three
// programs make unwinding hard: one spins on a stack of random words
// (rsp and rbp into it), one maps and unmaps a library all the time
// (dlopen, a call, dlclose), and short-lived processes exit before their
// tables can load. The capture ends, every user stack that did not reach
// its entry is counted with a reason, no stack is longer than the depth
// limit, and the programs' real frames are found where they can be.
func TestWholeHostStacksEndCleanly(t *testing.T) {
	testutil.RequireRoot(t)
	secs := *stacksSecs
	garbage := startProg(t, []string{buildProg(t, "gcc", "garbage.c", "garbage", "-O1", "-fno-omit-frame-pointer")}, secs+30)
	lib := buildProg(t, "gcc", "dllib.c", "libdlwork.so", "-O2", "-fomit-frame-pointer", "-fPIC", "-shared")
	dl := startProg(t, []string{buildProg(t, "gcc", "dlloop.c", "dlloop", "-O2", "-fomit-frame-pointer"), lib}, secs+30)
	blink := buildProg(t, "gcc", "blink.c", "blink", "-O2", "-fomit-frame-pointer")
	var mu sync.Mutex
	blinks := map[uint32]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cmd := exec.Command(blink, "15")
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			blinks[uint32(cmd.Process.Pid)] = true
			mu.Unlock()
			cmd.Wait()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	c := wholeHost(t, secs)
	close(stop)
	wg.Wait()
	logHealth(t, c)
	st := c.Meta.Stats
	incomplete := 0
	for _, w := range []struct {
		name  string
		pids  map[uint32]bool
		chain []string
		// minComplete is the share of stacks that must reach the entry.
		minComplete float64
		// namesLost: an incomplete stack whose outermost frame has no
		// name is the names' loss, not the unwinder's (below).
		namesLost bool
	}{
		{"garbage", map[uint32]bool{uint32(garbage.Process.Pid): true}, nil, 0, false},
		// Samples taken in a library mapped since its process's tables
		// were loaded wait for the next load (65-98% complete here, with
		// the machine's load): counted, not complete.
		{"dlloop", map[uint32]bool{uint32(dl.Process.Pid): true}, []string{"main", "lib_work", "lib_middle", "lib_inner"}, 0.5, false},
		// Short-lived processes: their samples may be lost to names, not to
		// unwinding, when the process is gone before its mappings are read
		// (the names issue); those named must be in order.
		// Of theirs, a stack ending in a frame without a name lost the
		// mapping that names it with the process, not its frames: the
		// unwinder does not count it as ended early, so the check below
		// leaves it out (it passed before only while the rest of the
		// host's ended stacks outnumbered these).
		{"blink", blinks, []string{"main", "burn", "spin"}, 0, true},
	} {
		f := figures(c, w.pids, w.chain)
		incomplete += f.samples - f.complete
		if w.namesLost {
			incomplete -= f.unnamed
			t.Logf("%s: %d incomplete stacks end in an unnamed frame", w.name, f.unnamed)
		}
		t.Logf("%s: %s; incomplete stacks end at %v; e.g. %s; with the leaf, incomplete or out of order, e.g. %s", w.name, f, first(f.ends, 6), f.example, f.badLeaf)
		if f.samples < 50 {
			t.Errorf("%s: only %d samples", w.name, f.samples)
			continue
		}
		if frac(f.complete, f.samples) < w.minComplete {
			t.Errorf("%s: only %.1f%% of stacks reach the entry (want %.0f%%); e.g. %s", w.name, 100*frac(f.complete, f.samples), 100*w.minComplete, f.bad)
		}
		// A stack that reaches the entry is right: no silently wrong ones
		// (those that do not are counted, below).
		if w.chain != nil && (f.leaf < 20 || frac(f.ordered, f.leafDone) < 0.95) {
			t.Errorf("%s: of %d samples in %s, %d reach the entry, %d of them with %s in order; e.g. %s", w.name, f.leaf,
				w.chain[len(w.chain)-1], f.leafDone, f.ordered, strings.Join(w.chain, ";"), f.badLeaf)
		}
	}
	// The capture's health says it, with the reasons.
	if st.UnwindEnded == 0 {
		t.Error("no user stack counted as ended early, with garbage stacks running")
	} else if want := fmt.Sprintf("%d ended early (", st.UnwindEnded); !slices.ContainsFunc(c.Meta.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
		t.Errorf("no warning of the capture says %q: %q", want, c.Meta.Warnings)
	}
	// The garbage stacks end within the depth limit.
	for i := range c.Events {
		e := &c.Events[i]
		if e.PID == uint32(garbage.Process.Pid) {
			if n := len(userFrames(c, e.Stack)); n > 128 {
				t.Errorf("a garbage stack of %d user frames: past the depth limit", n)
				break
			}
		}
	}
	// Every stack the test sees as incomplete was counted as such (the
	// counters cover the whole host, so they may count more).
	if uint64(incomplete) > st.UnwindEnded {
		t.Errorf("%d user stacks of these programs do not reach their entry, but only %d are counted as ended early", incomplete, st.UnwindEnded)
	}
}
