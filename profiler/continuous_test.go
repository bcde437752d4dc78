package profiler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// TestContinuousWindows cuts windows from one loaded collector while
// processes come and go: each window has its own events only (times inside
// it, windows back to back), a process started after the load is named,
// and one that exited is forgotten.
func TestContinuousWindows(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "clang", spinC, "-O1", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
	a := testutil.Start(t, bin)
	time.Sleep(200 * time.Millisecond)
	c, err := profiler.StartContinuous(context.Background(), capture.Params{Type: capture.CPU, Hz: 99, Unwind: "auto"}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var windows []*capture.Capture
	cut := func() *capture.Capture {
		t.Helper()
		time.Sleep(1500 * time.Millisecond)
		w, err := c.Cut()
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, w)
		return w
	}
	// pidShare is the samples of pid whose stack runs main;alpha;beta,
	// and all of pid's.
	pidShare := func(w *capture.Capture, pid int) (beta, all int64) {
		for _, e := range w.Events {
			if int(e.PID) != pid {
				continue
			}
			all++
			if share(map[string]int64{strings.Join(w.FoldedStack(e.Stack), ";"): 1}, "main;alpha;beta") > 0 {
				beta++
			}
		}
		return beta, all
	}
	w1 := cut()
	if beta, all := pidShare(w1, a.Process.Pid); beta == 0 {
		t.Fatalf("window 1: %d samples of the workload, none in main;alpha;beta: %v", all, top(folded(w1, capture.Query{}), 5))
	}
	b := testutil.Start(t, bin)
	w2 := cut()
	if beta, all := pidShare(w2, b.Process.Pid); beta == 0 {
		t.Fatalf("window 2: %d samples of the process started after the load, none named main;alpha;beta: %v", all, top(folded(w2, capture.Query{}), 5))
	}
	a.Process.Kill()
	a.Wait()
	cut()
	w4 := cut()
	if _, all := pidShare(w4, a.Process.Pid); all != 0 {
		t.Errorf("window 4: %d samples of a process killed before window 3", all)
	}
	if c.Known(a.Process.Pid) {
		t.Errorf("process %d exited two windows ago and is still held", a.Process.Pid)
	}
	if !c.Known(b.Process.Pid) {
		t.Errorf("running process %d was forgotten", b.Process.Pid)
	}
	for i, w := range windows {
		if w.Meta.Stats.Samples != uint64(len(w.Events)) || len(w.Events) == 0 {
			t.Errorf("window %d: %d samples counted, %d events", i+1, w.Meta.Stats.Samples, len(w.Events))
		}
		// A record is read by the cut after it was written: every event
		// is inside its window (a sample taken as the cut began is read
		// by the next, a few ms early).
		slack := int64(50 * time.Millisecond)
		for _, e := range w.Events {
			if e.Time < -slack || e.Time > int64(w.Meta.Duration)+slack {
				t.Fatalf("window %d (%s): an event at %s", i+1, w.Meta.Duration, time.Duration(e.Time))
			}
		}
		if i > 0 {
			prev := windows[i-1].Meta
			if end := prev.Start.Add(prev.Duration); !end.Equal(w.Meta.Start) {
				t.Errorf("window %d starts at %s, %s after window %d ended", i+1, w.Meta.Start, w.Meta.Start.Sub(end), i)
			}
		}
		if w.Meta.Stats.Lost != 0 {
			t.Logf("window %d: %d events lost", i+1, w.Meta.Stats.Lost)
		}
	}
	last, err := c.Close()
	if err != nil || last == nil {
		t.Fatalf("close: %v, last window %v", err, last)
	}
	if _, err := c.Cut(); err == nil {
		t.Error("a cut after close did not fail")
	}
}
