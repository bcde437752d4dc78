package symbolizer

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heapAfter returns the live heap after a full collection.
func heapAfter() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// What the cache charges for a module is what it keeps on the heap plus
// the bytes of its mapped file its tables read: the cache's bound is a
// bound on memory only if the first agrees with the heap. A Go binary
// (this test) reads its pclntab and inline trees in place: they are
// charged as mapped bytes, and the heap keeps little. libc with its DWARF
// line tables and inlined calls when its debug file is installed.
func TestModuleBytesMatchHeap(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		dwarf      bool
	}{
		{"go binary", self, false},
		{"libc with DWARF", libcPath, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(tc.path)
			if err != nil {
				t.Skipf("%s: %v", tc.path, err)
			}
			defer f.Close()
			s := New(Options{Lines: true, DebuginfodURLs: []string{}, Logger: discardLogger()})
			before := heapAfter()
			m := s.loadModule(f, debugLocator{path: tc.path, label: tc.path})
			if tc.dwarf {
				if !s.ensureDWARF(m, f, debugLocator{path: tc.path, label: tc.path}) {
					t.Skipf("%s: no DWARF (install its debug package)", tc.path)
				}
				// Read every unit, as the eager reading did.
				m.dwarf.loadAll()
				var tables int64
				for _, u := range m.dwarf.units {
					if u.loaded != nil {
						tables += u.loaded.bytes()
					}
				}
				t.Logf("%d units, unit tables %.1f MiB", len(m.dwarf.units), float64(tables)/(1<<20))
			}
			held := int64(heapAfter() - before)
			charged, mappedBytes := m.heapBytes(), m.mappedBytes()
			runtime.KeepAlive(m)
			t.Logf("%s: heap %.1f MiB, charged %.1f MiB on the heap and %.1f MiB mapped", tc.path,
				float64(held)/(1<<20), float64(charged)/(1<<20), float64(mappedBytes)/(1<<20))
			if !tc.dwarf {
				if mappedBytes < 1<<20 || held > 2<<20 {
					t.Errorf("go binary: %d bytes mapped, %d on the heap: want its pclntab mapped, not copied", mappedBytes, held)
				}
				if m.bytes() < mappedBytes {
					t.Errorf("go binary: charged %d bytes, less than its %d mapped", m.bytes(), mappedBytes)
				}
				return
			}
			if held < 1<<20 {
				t.Skipf("%s: only %d bytes held: nothing to compare", tc.path, held)
			}
			if r := float64(charged) / float64(held); r < 0.85 || r > 1.5 {
				t.Errorf("%s: charged %d bytes for %d held on the heap (ratio %.2f, want 0.85..1.5)", tc.path, charged, held, r)
			}
		})
	}
}

// A module the cache evicted is freed even while a snapshot that used it
// stays open (a capture keeps its snapshots to its end): the snapshot's
// fast path to it must not keep it alive outside the cache's bound.
func TestEvictedModuleFreed(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Skipf("sleep: %v", err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	// One byte of cache: each module is kept alone, the next evicts it.
	s := New(Options{CacheBytes: 1, DebuginfodURLs: []string{}, Logger: discardLogger()})
	self, err := s.Snapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	base := heapAfter()
	if fr := s.User(self, funcPC(TestEvictedModuleFreed), false); fr[0].Name != "github.com/scorch-dev/scorch/symbolizer.TestEvictedModuleFreed" {
		t.Fatalf("own function named %q", fr[0].Name)
	}
	withGo := heapAfter()
	if withGo-base < 2<<20 {
		t.Skipf("this test binary's tables take only %d bytes", withGo-base)
	}
	var other *Process
	var libc uint64
	for time.Sleep(10 * time.Millisecond); libc == 0; time.Sleep(10 * time.Millisecond) {
		if other != nil {
			other.Close()
		}
		if other, err = s.Snapshot(sleep.Process.Pid); err != nil {
			t.Fatal(err)
		}
		for _, m := range other.mappings() {
			if strings.Contains(m.path, "libc.so") {
				libc = m.start
			}
		}
	}
	defer other.Close()
	s.User(other, libc+0x100, false)
	after := heapAfter()
	t.Logf("heap: %d before, +%d with this binary's tables, +%d once libc's evicted them", base, withGo-base, int64(after)-int64(base))
	if st := s.CacheStats(); st.Evictions == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
	if after > base+(withGo-base)/2 {
		t.Errorf("the evicted module is still on the heap: %d bytes above the start, %d with it", after-base, withGo-base)
	}
}

// DWARF line tables and inlined calls, read at a module's first
// symbolization after it entered the cache, are charged to the cache.
func TestDWARFCharged(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Skipf("sleep: %v", err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	time.Sleep(50 * time.Millisecond) // ld.so maps libc
	s := New(Options{Lines: true, DebuginfodURLs: []string{}, Logger: discardLogger()})
	p, err := s.Snapshot(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var libc *procMapping
	for i, m := range p.mappings() {
		if strings.Contains(m.path, "libc.so") {
			libc = &p.mappings()[i]
		}
	}
	if libc == nil {
		t.Skip("sleep maps no libc")
	}
	mod := p.module(libc)
	before := s.CacheStats().Cost
	s.User(p, libc.start+0x1000, false)
	dwarf := mod.dwarf.bytes() + mod.dwarf.mappedBytes()
	if dwarf == 0 {
		t.Skip("libc has no DWARF here (install libc6-dbg)")
	}
	after := s.CacheStats().Cost
	t.Logf("cache: %d bytes before the first symbolization, %d after; DWARF tables %d", before, after, dwarf)
	if after-before < dwarf {
		t.Errorf("the cache grew by %d bytes for %d bytes of DWARF tables", after-before, dwarf)
	}
}
