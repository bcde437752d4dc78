package profiler

import (
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
)

// The stacks of processes that may still map libraries wait a second to be
// named; the others are named as they come, so that the end of a capture
// has little left to name.
func TestNamerNamesOldProcessesAtOnce(t *testing.T) {
	sym := symbolizer.New(symbolizer.Options{})
	defer sym.Close()
	n := newNamer(capture.Meta{Type: capture.CPU}, sym)
	began := time.Now()
	n.add(rawStack{main: segment{comm: "young", young: true}})
	n.add(rawStack{main: segment{comm: "old"}})
	for n.named.Load() == 0 && time.Since(began) < nameAfter {
		time.Sleep(time.Millisecond)
	}
	named := n.named.Load()
	if time.Since(began) >= nameAfter/2 {
		t.Skipf("the namer took %v to run: too slow a machine to tell the stacks apart", time.Since(began))
	}
	if named != 1 {
		t.Fatalf("%d stacks named %v after they came, want only the old process's", named, time.Since(began))
	}
	b, ids := n.wait()
	if len(ids) != 2 {
		t.Fatalf("%d stacks named at the end, want 2", len(ids))
	}
	c := b.Capture()
	for i, want := range []string{"young", "old"} {
		if got := c.Frames[c.Stacks[ids[i]][0]].Name; got != want {
			t.Errorf("stack %d is %q's, want %q's", i, got, want)
		}
	}
}

// With the kernel's mapping records, a young process's stack waits
// nameAfterTracked, not nameAfter.
func TestNamerTrackedWaitsLess(t *testing.T) {
	sym := symbolizer.New(symbolizer.Options{})
	defer sym.Close()
	n := newNamer(capture.Meta{Type: capture.CPU}, sym)
	n.tracked()
	began := time.Now()
	n.add(rawStack{main: segment{comm: "young", young: true}})
	for n.named.Load() == 0 && time.Since(began) < 2*nameAfter {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(began)
	if n.named.Load() == 0 {
		t.Skipf("not named within %v: too slow a machine to tell", took)
	}
	if took < nameAfterTracked {
		t.Errorf("named after %v, before the %v a young process's stack waits", took, nameAfterTracked)
	}
	if took >= nameAfter {
		t.Logf("named after %v: as late as without the mapping records (a loaded machine?)", took)
	}
	n.wait()
}
