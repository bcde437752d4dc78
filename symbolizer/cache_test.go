package symbolizer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func moduleOfSize(n int) *module {
	syms := make([]symbol, n)
	for i := range syms {
		syms[i] = symbol{addr: uint64(i+1) * 16, size: 16, name: []byte(fmt.Sprintf("f%d", i))}
	}
	return &module{table: newSymTable(syms, true)}
}

func TestLRU(t *testing.T) {
	one := moduleOfSize(1000).bytes()
	c := newLRU(3*one + one/2) // room for three
	var loads atomic.Int32
	get := func(key string) *module {
		return c.get(key, func() *module { loads.Add(1); return moduleOfSize(1000) })
	}
	for _, k := range []string{"a", "b", "c", "a", "d"} { // d evicts b, the least recent
		get(k)
	}
	if n := loads.Load(); n != 4 {
		t.Errorf("loads = %d, want 4 (a reused)", n)
	}
	entries, used := c.stats()
	if entries != 3 || used > c.limit {
		t.Errorf("entries %d used %d, want 3 within %d", entries, used, c.limit)
	}
	get("b")
	if n := loads.Load(); n != 5 {
		t.Errorf("evicted b not reloaded: loads = %d", n)
	}

	// Concurrent misses of one key load it once.
	loads.Store(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); get("z") }()
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("concurrent loads = %d, want 1", n)
	}
}

// A file without symbols is remembered: one parse, however often asked.
func TestNegativeCache(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not an elf file at all"), 0o644)
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	f, err := os.Open(junk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var loads int
	for range 3 {
		m := s.cache.get("junk", func() *module { loads++; return s.loadModule(f, debugLocator{}) })
		if m.err == nil {
			t.Fatal("no error for a non-ELF file")
		}
	}
	if loads != 1 {
		t.Errorf("loads = %d, want 1", loads)
	}
}

func TestTableBytesPerSymbol(t *testing.T) {
	m := moduleOfSize(10000)
	per := float64(m.table.bytes()) / 10000
	// 16 bytes of address, size and name offset plus the name itself.
	if per > 16+8 {
		t.Errorf("%.1f bytes per symbol", per)
	}
}

func FuzzELF(f *testing.F) {
	if img, err := readVDSO(); err == nil {
		f.Add(img)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "kallsyms")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\x7fELF\x02\x01\x01\x00"))
	if gcc, err := exec.LookPath("gcc"); err == nil {
		dir := f.TempDir()
		src := filepath.Join(dir, "seed.c")
		os.WriteFile(src, []byte(cFixture), 0o644)
		bin := filepath.Join(dir, "seed")
		if exec.Command(gcc, "-O1", "-g", "-o", bin, src).Run() == nil {
			if b, err := os.ReadFile(bin); err == nil {
				f.Add(b)
			}
		}
	}
	s := New(Options{Lines: true, DebugDirs: []string{}, DebuginfodURLs: []string{}})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := s.loadModule(bytes.NewReader(data), debugLocator{})
		s.ensureDWARF(m, bytes.NewReader(data), debugLocator{})
		for _, a := range []uint64{0, 0x1000, 0x401000, ^uint64(0)} {
			if m.gotab != nil && m.gotab.tab != nil {
				m.gotab.goFrames(Frame{}, m.elfAddr(a))
			}
			if i, ok := m.table.lookup(m.elfAddr(a)); ok {
				_ = m.table.name(i)
				m.nativeFrames(Frame{}, m.elfAddr(a))
				if m.gotab != nil {
					m.gotab.frames(Frame{}, m.elfAddr(a))
				}
			}
		}
	})
}
