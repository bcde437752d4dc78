package profiler_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/timeline"
)

// A capture that loses events says when: a one-page ring buffer cannot
// hold a 999 Hz all-CPU sampler's dwarf stack copies all along, and the
// spans of Stats.LostAt (one per look at the counters and CPU) add up to
// the events lost, inside the capture, so threads.json marks them on the
// tracks where they happened.
func TestLostTimes(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "clang", spinC, "-O1", "-fno-omit-frame-pointer")
	for i := 0; i < runtime.NumCPU(); i++ {
		testutil.Start(t, bin)
	}
	c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 999, Duration: capture.Duration(2 * time.Second), Unwind: "dwarf"},
		profiler.Options{RingBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Stats.Lost == 0 {
		t.Fatalf("nothing was lost with a one-page ring buffer at 999 Hz on every CPU (%d events)", len(c.Events))
	}
	var sum uint64
	looks := map[int64]bool{}
	end := int64(c.Meta.Duration + time.Second)
	for _, sp := range c.Meta.Stats.LostAt {
		if sp.From < 0 || sp.To <= sp.From || sp.To > end || sp.CPU < -1 || sp.CPU >= runtime.NumCPU() || sp.Count == 0 {
			t.Errorf("span %+v: want 0 <= from < to <= %d, a CPU, a count", sp, end)
		}
		sum += sp.Count
		looks[sp.From] = true
	}
	t.Logf("%d events, %d lost in %d spans over %d looks", len(c.Events), c.Meta.Stats.Lost, len(c.Meta.Stats.LostAt), len(looks))
	if sum != c.Meta.Stats.Lost {
		t.Errorf("the spans add up to %d lost events, the capture lost %d", sum, c.Meta.Stats.Lost)
	}
	if len(looks) < 2 {
		t.Errorf("losses all along 2 s are marked at %d looks, want several (a look every 250 ms)", len(looks))
	}
	th, err := timeline.ComputeThreads(c, c, capture.Query{}, timeline.ThreadsOptions{Bucket: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	var marked uint64
	nonzero := 0
	for _, n := range th.Lost.Series {
		marked += n
		if n > 0 {
			nonzero++
		}
	}
	if marked != c.Meta.Stats.Lost || nonzero < 2 {
		t.Errorf("threads.json marks %d lost events in %d buckets of %d, want all %d in several", marked, nonzero, len(th.Lost.Series), c.Meta.Stats.Lost)
	}
}
