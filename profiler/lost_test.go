package profiler_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// Events the BPF side drops are counted per CPU: a ring buffer of one page
// cannot hold a 999 Hz all-CPU sampler's dwarf stack copies, and the
// capture's lost_on_cpu counts (one per CPU, zero included) add up to what
// the programs dropped, as the health summary shows them.
func TestLostPerCPU(t *testing.T) {
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
	perCPU := c.Meta.Stats.Counters.Reasons(capture.LostOnCPU)
	var sum uint64
	for cpu, n := range perCPU {
		if _, err := strconv.Atoi(cpu); err != nil {
			t.Errorf("lost_on_cpu reason %q is not a CPU number", cpu)
		}
		sum += n
	}
	t.Logf("%d events, %d lost, per CPU %v", len(c.Events), c.Meta.Stats.Lost, perCPU)
	if len(perCPU) < runtime.NumCPU() {
		t.Errorf("lost counted for %d CPUs, want every one of the %d: %v", len(perCPU), runtime.NumCPU(), perCPU)
	}
	if c.Meta.Stats.Lost == 0 {
		t.Fatalf("nothing was lost with a one-page ring buffer at 999 Hz on every CPU (%d events)", len(c.Events))
	}
	// Lost also counts records that reached user space but could not be
	// decoded, which have no CPU: none in a healthy capture.
	if sum == 0 || sum > c.Meta.Stats.Lost || sum < c.Meta.Stats.Lost*9/10 {
		t.Errorf("per CPU the lost events add up to %d, the capture lost %d", sum, c.Meta.Stats.Lost)
	}
	sum2 := uint64(0)
	sm := c.Summarize(capture.Query{}, nil)
	for _, n := range sm.LostPerCPU {
		sum2 += n
	}
	if sum2 != sum {
		t.Errorf("the summary's lost_per_cpu adds up to %d, the counters to %d", sum2, sum)
	}
	found := false
	for _, f := range sm.Findings {
		found = found || strings.Contains(f.Message, "events were lost") && strings.Contains(f.Message, "most on cpu ")
	}
	if !found {
		t.Errorf("no finding names the CPUs that lost events: %+v", sm.Findings)
	}
	// And why: the one-page ring was full.
	if n := sm.LostBy[capture.LostRingFull]; n == 0 || n > c.Meta.Stats.Lost {
		t.Errorf("lost_by %v, want the %d lost events put down to a full ring", sm.LostBy, c.Meta.Stats.Lost)
	}
	why := false
	for _, w := range c.Meta.Warnings {
		why = why || strings.Contains(w, "because the ring buffer was full")
	}
	if !why {
		t.Errorf("no warning says the ring buffer was full: %q", c.Meta.Warnings)
	}
}
