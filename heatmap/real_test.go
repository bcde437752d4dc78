package heatmap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/heatmap"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// phasesC spins in phase_a for one half of every wall-clock second and in
// phase_b for the other half (by CLOCK_MONOTONIC, so the phases keep their
// length whatever else runs on the machine). It raises its priority (the
// test runs as root) so that a busy machine does not starve it of samples.
const phasesC = `
#include <sys/resource.h>
#include <time.h>

volatile unsigned long sink;

static long now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((noinline)) void burn(void) {
	for (unsigned long i = 0; i < 20000; i++)
		sink += i * i;
}

__attribute__((noinline)) void phase_a(long until) { while (now_ms() < until) burn(); }
__attribute__((noinline)) void phase_b(long until) { while (now_ms() < until) burn(); }

int main(void) {
	setpriority(PRIO_PROCESS, 0, -10);
	for (;;) {
		long t = now_ms(), next = (t / 500 + 1) * 500;
		if ((t / 500) % 2 == 0)
			phase_a(next);
		else
			phase_b(next);
	}
}
`

// phaseShare counts a range's samples in phase_a and phase_b.
func phaseShare(c *capture.Capture, q capture.Query) (a, b, all int64) {
	for _, sv := range c.Aggregate(q) {
		s := strings.Join(c.FoldedStack(sv.Stack), ";")
		switch {
		case strings.Contains(s, ";phase_a"):
			a += sv.Value
		case strings.Contains(s, ";phase_b"):
			b += sv.Value
		}
		all += sv.Value
	}
	return a, b, all
}

// TestRealCaptureAlternation records the alternating workload and checks
// that the heatmap's cells, read as range flame graphs the way the UI does,
// alternate between phase_a and phase_b every half second, and that a
// phase_a half-second gives a flame graph dominated by phase_a.
func TestRealCaptureAlternation(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "clang", phasesC, "-O1", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
	cmd := testutil.Start(t, bin)
	time.Sleep(100 * time.Millisecond)
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 199,
		Duration: capture.Duration(4 * time.Second), Unwind: "fp",
	}, profiler.Options{})
	if errors.Is(err, profiler.ErrUnavailable) {
		t.Skipf("this host cannot record cpu captures: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	q := capture.Query{PIDs: []uint32{uint32(cmd.Process.Pid)}}
	h, err := heatmap.Compute(c, q, 10)
	if err != nil {
		t.Fatal(err)
	}
	a, b, all := phaseShare(c, q)
	t.Logf("%d samples: phase_a %d, phase_b %d; heatmap %d columns, max %d per 100 ms", all, a, b, h.Columns, h.Max)
	if all < 100 || a < all/4 || b < all/4 {
		var top []string
		for _, sv := range c.Aggregate(q) {
			if len(top) < 8 {
				top = append(top, strings.Join(c.FoldedStack(sv.Stack), ";"))
			}
		}
		t.Fatalf("want at least 100 samples split between phase_a and phase_b, got %d (a %d, b %d); stacks: %q", all, a, b, top)
	}

	// Label each 100 ms cell by the phase that dominates its range.
	var labels []byte
	var froms, tos []float64
	for col := 0; col < h.Columns; col++ {
		for row := 0; row < h.Rows; row++ {
			from, to := heatmap.CellRange(h, col, row)
			if to > c.Meta.Duration.Seconds() {
				continue
			}
			cq := q
			cq.From, cq.To = from, to
			ca, cb, n := phaseShare(c, cq)
			if n != h.Values[col][row] {
				t.Errorf("cell [%d][%d] holds %d samples, its range flame graph %d", col, row, h.Values[col][row], n)
			}
			l := byte('?')
			switch {
			case n >= 3 && float64(ca) >= 0.8*float64(n):
				l = 'a'
			case n >= 3 && float64(cb) >= 0.8*float64(n):
				l = 'b'
			}
			labels = append(labels, l)
			froms, tos = append(froms, from), append(tos, to)
		}
	}
	t.Logf("100 ms cells: %s", labels)
	// Runs of one label, bridging at most two unlabelled cells (the
	// workload may be starved of CPU for a moment on a busy machine).
	changes, run, longest, gap, labelled := 0, 0, 0, 0, 0
	var last byte
	for _, l := range labels {
		if l == '?' {
			if gap++; gap > 2 {
				last, run = 0, 0
			}
			continue
		}
		labelled++
		if l != last {
			if last != 0 {
				changes++
			}
			run = 0
		}
		run += 1 + min(gap, 2)
		gap = 0
		longest = max(longest, run)
		last = l
	}
	if labelled < 10 {
		t.Fatalf("only %d of %d cells of 100 ms have 3 samples or more (%s): the workload got too little CPU", labelled, len(labels), labels)
	}
	if changes < 3 || longest > 7 {
		t.Errorf("cells %s: %d phase changes and runs up to %d cells; want a change about every 5 cells of 100 ms", labels, changes, longest)
	}

	// A range over a phase_a half-second: the longest run of 'a' cells.
	bestStart, bestLen := -1, 0
	for i := 0; i < len(labels); {
		j := i
		for j < len(labels) && labels[j] == 'a' {
			j++
		}
		if j-i > bestLen {
			bestStart, bestLen = i, j-i
		}
		i = max(j, i+1)
	}
	if bestLen < 3 {
		t.Fatalf("no run of 3 phase_a cells in %s", labels)
	}
	rq := q
	rq.From, rq.To = froms[bestStart], tos[bestStart+bestLen-1]
	ra, rb, rn := phaseShare(c, rq)
	t.Logf("range %.2f-%.2f s: phase_a %d, phase_b %d of %d", rq.From, rq.To, ra, rb, rn)
	if rn == 0 || float64(ra) < 0.8*float64(rn) || float64(rb) > 0.15*float64(rn) {
		t.Errorf("range %.2f-%.2f s: phase_a %d, phase_b %d of %d samples; want phase_a to dominate", rq.From, rq.To, ra, rb, rn)
	}
}
