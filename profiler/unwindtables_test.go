package profiler

import (
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// The allocator hands out disjoint ranges, reuses freed ones and merges
// them back into one.
func TestRangeAlloc(t *testing.T) {
	var a rangeAlloc
	a.init(100)
	r := rand.New(rand.NewSource(1))
	used := map[uint32]uint32{} // start -> n
	owner := make([]int, 100)
	for i := 0; i < 2000; i++ {
		if len(used) > 0 && r.Intn(2) == 0 {
			for s, n := range used {
				a.free(s, n)
				for j := s; j < s+n; j++ {
					owner[j] = 0
				}
				delete(used, s)
				break
			}
			continue
		}
		n := uint32(1 + r.Intn(20))
		s, ok := a.alloc(n)
		if !ok {
			if a.fits(n) {
				t.Fatalf("alloc(%d) failed but fits says it would", n)
			}
			continue
		}
		for j := s; j < s+n; j++ {
			if j >= 100 || owner[j] != 0 {
				t.Fatalf("alloc(%d) = %d overlaps a used range or the end", n, s)
			}
			owner[j] = 1
		}
		used[s] = n
	}
	for s, n := range used {
		a.free(s, n)
	}
	if len(a.free_) != 1 || a.free_[0] != (span{0, 100}) {
		t.Fatalf("after freeing everything: %v, want one range [0, 100)", a.free_)
	}
}

// Each page slot's sub-range holds the entry a search at any pc of the
// page must find.
func TestBuildPages(t *testing.T) {
	sparse := []unwind.Entry{
		{PC: 0x100, Rule: 1}, {PC: 0x8000, Rule: 2}, {PC: 0x12345, Rule: 1}, {PC: 0x12400, Rule: 3}, {PC: 0x40000, Rule: 0},
	}
	var dense []unwind.Entry // 2000 entries 3 to 40 bytes apart
	for pc, i := uint32(0x40), 0; i < 2000; i++ {
		dense = append(dense, unwind.Entry{PC: pc, Rule: uint32(i % 7)})
		pc += 3 + uint32(i*13%38)
	}
	mixed := append([]unwind.Entry(nil), dense...) // then a few long functions
	for pc := uint32(0x10000); pc < 0x30000; pc += 0x4000 {
		mixed = append(mixed, unwind.Entry{PC: pc, Rule: 5})
	}
	for _, tc := range []struct {
		name    string
		entries []unwind.Entry
	}{{"sparse", sparse}, {"dense", dense}, {"mixed", mixed}} {
		t.Run(tc.name, func(t *testing.T) {
			tab := &unwind.CompactTable{Entries: tc.entries}
			pages, shift := buildPages(tab)
			last := tc.entries[len(tc.entries)-1].PC
			if len(pages) != int(last>>shift)+1 || len(pages) > max(1, len(tc.entries)/pageEntries) {
				t.Fatalf("%d pages of %d bytes for %d entries up to %#x", len(pages), 1<<shift, len(tc.entries), last)
			}
			direct, total := 0, 0
			for pc := uint32(0); pc < last; pc++ {
				want := -1
				for i, e := range tc.entries {
					if e.PC <= pc {
						want = i
					}
				}
				p := pages[pc>>shift]
				total++
				if p.N == 0 {
					direct++
					if want < 0 || tc.entries[want].Rule != p.First {
						t.Fatalf("pc %#x: page %d gives rule %d, entry %d has %v", pc, pc>>shift, p.First, want, tc.entries[max(want, 0)])
					}
					continue
				}
				if want >= 0 && (want < int(p.First) || want >= int(p.First+p.N)) {
					t.Fatalf("pc %#x: entry %d is outside page %d's range %d+%d", pc, want, pc>>shift, p.First, p.N)
				}
			}
			t.Logf("%d pages of %d bytes, %d of %d pcs with the rule in their page", len(pages), 1<<shift, direct, total)
			if tc.name == "mixed" && direct == 0 {
				t.Error("no page of the long functions gives its rule")
			}
		})
	}
}

// The trampoline table gives CFA = sp+16 at the return address of every
// copy (3.12's packed copies and 3.13's 16-byte aligned ones), and sp+8
// at each copy's entry.
func TestTrampolineTable(t *testing.T) {
	for _, stride := range []int{11, 16} {
		tab := buildTrampolineTable(2*pyArena, 0, stride)
		for _, arena := range []uint64{0, pyArena} {
			for c := uint64(0); c+11 <= pyArena; c += uint64(stride) {
				if r := tab.Lookup(arena + c + 5); r.CFA != unwind.CFASP || r.CFAOffset != 16 {
					t.Fatalf("stride %d: copy at %#x: rule at the call's return %v", stride, arena+c, r)
				}
				if r := tab.Lookup(arena + c); r.CFAOffset != 8 {
					t.Fatalf("stride %d: copy at %#x: entry rule %v", stride, arena+c, r)
				}
			}
		}
	}
}

// With SampledOnly (the agent), a process seen but not sampled queues no
// load; its first sample waiting for tables does, and a loaded process's
// new mappings still reload it.
func TestUnwindTablesSampledOnly(t *testing.T) {
	snap := selfSnapshot(t)
	for _, sampledOnly := range []bool{false, true} {
		tb := &UnwindTables{sampledOnly: sampledOnly, hot: make(chan *loadReq, 4), cold: make(chan *loadReq, 4),
			pending: make(map[uint32]*loadReq), procs: make(map[uint32]*tableProc)}
		tb.want(1, snap)
		if got, want := len(tb.cold), map[bool]int{false: 1, true: 0}[sampledOnly]; got != want {
			t.Errorf("sampledOnly=%v: a process seen queued %d cold loads, want %d", sampledOnly, got, want)
		}
		tb.waiting(2, snap)
		if len(tb.hot) != 1 || tb.pending[2] == nil {
			t.Errorf("sampledOnly=%v: a sample waiting queued %d hot loads, want 1", sampledOnly, len(tb.hot))
		}
		tb.procs[3] = &tableProc{}
		tb.want(3, snap)
		if tb.pending[3] == nil {
			t.Errorf("sampledOnly=%v: a loaded process's new mapping queued no reload", sampledOnly)
		}
	}
}

// Once a capture's own tables stop loading (its window ended), nothing is
// queued nor counted as refused, and the workers end without Close.
func TestUnwindTablesStopLoading(t *testing.T) {
	snap := selfSnapshot(t)
	tb := &UnwindTables{hot: make(chan *loadReq, 1), cold: make(chan *loadReq, 1), quit: make(chan struct{}),
		pending: make(map[uint32]*loadReq), procs: make(map[uint32]*tableProc)}
	tb.wg.Add(3)
	go tb.worker(false)
	go tb.worker(false)
	go tb.worker(true)
	tb.stopLoading()
	tb.stopLoading() // twice is fine
	ended := make(chan struct{})
	go func() { tb.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("workers still running after stopLoading")
	}
	for pid := uint32(1); pid < 10; pid++ {
		tb.want(pid, snap)
		tb.waiting(pid, snap)
	}
	if len(tb.hot)+len(tb.cold) != 0 || len(tb.pending) != 0 {
		t.Errorf("after stopLoading: %d hot, %d cold, %d pending loads, want none", len(tb.hot), len(tb.cold), len(tb.pending))
	}
	if n := tb.counters[capture.CounterKey{Counter: capture.UnwindTableRefusals, Reason: refuseQueueFull}]; n != 0 {
		t.Errorf("after stopLoading: %d loads refused as %q, want none counted", n, refuseQueueFull)
	}
}

// Every process entry the tables write has a gen of its own, never 0 (the
// BPF walker's frame cache keeps a frame's results by it: a reload's
// mappings must not meet an earlier entry's), and an object's frame cache
// is sized to the possible CPUs.
func TestUnwindTablesGen(t *testing.T) {
	testutil.RequireRoot(t)
	tb, err := NewUnwindTables(UnwindTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap := selfSnapshot(t)
	pid := uint32(os.Getpid())
	seen := map[uint32]bool{}
	for i := range 3 {
		if err := tb.load(pid, snap); err != nil {
			t.Fatal(err)
		}
		var v bpf.SamplerUnwindProc
		if err := tb.procMap.Lookup(pid, &v); err != nil {
			t.Fatal(err)
		}
		if v.Gen == 0 || seen[v.Gen] {
			t.Fatalf("load %d: gen %d, earlier ones %v", i, v.Gen, seen)
		}
		seen[v.Gen] = true
	}
	spec, err := bpf.LoadSampler()
	if err != nil {
		t.Fatal(err)
	}
	tb.replace(spec)
	n, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spec.Maps["unwind_fcache"].MaxEntries, uint32(n)*uint32(bpf.SamplerLimitLIMIT_FC_SLOTS); got != want {
		t.Errorf("frame cache of %d slots, want %d (%d CPUs)", got, want, n)
	}
}

// selfSnapshot is a snapshot of the test's own process, closed at its end.
func selfSnapshot(t *testing.T) *symbolizer.Process {
	t.Helper()
	sym := symbolizer.New(symbolizer.Options{})
	t.Cleanup(func() { sym.Close() })
	snap, err := sym.Snapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snap.Close() })
	return snap
}
