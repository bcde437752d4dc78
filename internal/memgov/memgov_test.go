package memgov

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	const mib = 1 << 20
	o := Options{Floor: 64 * mib, Headroom: 32 * mib}
	for _, tc := range []struct {
		name               string
		live, beside, want int64
		ceiling            int64
	}{
		{"small live heap: the floor", 10 * mib, 5 * mib, 64 * mib, 0},
		{"the least headroom", 30 * mib, 8 * mib, 70 * mib, 0},
		{"half over a large heap", 400 * mib, 8 * mib, 608 * mib, 0},
		{"the ceiling holds", 400 * mib, 8 * mib, 256 * mib, 256 * mib},
		{"the ceiling under the live heap holds too", 400 * mib, 8 * mib, 96 * mib, 96 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.Ceiling = tc.ceiling
			if got := limitFor(tc.live, tc.beside, o); got != tc.want {
				t.Errorf("limitFor(%d MiB live, %d MiB beside) = %d MiB, want %d MiB", tc.live/mib, tc.beside/mib, got/mib, tc.want/mib)
			}
		})
	}
}

// waitLimit collects until the governor's limit satisfies ok, the way a
// busy process would collect on its own.
func waitLimit(t *testing.T, g *Governor, what string, ok func(int64) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs
		if l := g.Limit(); ok(l) && debug.SetMemoryLimit(-1) == l {
			return
		}
	}
	t.Fatalf("the limit never became %s: it is %d MiB (runtime's %d MiB)", what, g.Limit()>>20, debug.SetMemoryLimit(-1)>>20)
}

var keep [][]byte

func grow(mib int) {
	for range mib {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		keep = append(keep, b)
	}
}

func TestGovernorFollowsLiveHeapWhileHeld(t *testing.T) {
	const mib = 1 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	g := Start(Options{Ceiling: 1 << 40, Floor: 16 * mib, Headroom: 8 * mib})
	defer g.Stop()
	grow(100)
	// Not held: the ceiling, whatever the heap.
	waitLimit(t, g, "the ceiling with no hold", func(l int64) bool { return l == 1<<40 })
	release := g.Hold()
	// 100 MiB live: half over that (and what the runtime holds beside
	// the heap), not the ceiling.
	waitLimit(t, g, "half over 100 MiB live", func(l int64) bool { return l >= 150*mib && l < 185*mib })
	keep = nil
	waitLimit(t, g, "down near the floor once the heap is freed", func(l int64) bool { return l < 64*mib })
	second := g.Hold()
	release()
	release() // a second call is no second release
	waitLimit(t, g, "still following with one hold left", func(l int64) bool { return l < 64*mib })
	second()
	waitLimit(t, g, "the ceiling once released", func(l int64) bool { return l == 1<<40 })
}

func TestGovernorStop(t *testing.T) {
	const mib = 1 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	g := Start(Options{Floor: 16 * mib, Headroom: 8 * mib})
	g.Hold()
	waitLimit(t, g, "following the heap", func(l int64) bool { return l < 1<<40 })
	g.Stop()
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("after Stop the runtime's limit is %d MiB, want none (no ceiling was given)", l>>20)
	}
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("a collection after Stop set the limit to %d MiB", l>>20)
	}
}

func TestGovernorCeiling(t *testing.T) {
	const mib = 1 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	g := Start(Options{Ceiling: 80 * mib, Floor: 16 * mib, Headroom: 8 * mib})
	defer g.Stop()
	defer g.Hold()()
	grow(100)
	defer func() { keep = nil }()
	waitLimit(t, g, "the 80 MiB ceiling", func(l int64) bool { return l == 80*mib })
}
