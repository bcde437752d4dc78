package symbolizer

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const libcPath = "/usr/lib/x86_64-linux-gnu/libc.so.6"

func openLibc(b *testing.B) *os.File {
	b.Helper()
	f, err := os.Open(libcPath)
	if err != nil {
		b.Skipf("no %s: %v", libcPath, err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkColdLoadLibc parses libc's symbols from scratch: .dynsym alone,
// and with libc6-dbg's separate debuginfo when installed.
func BenchmarkColdLoadLibc(b *testing.B) {
	f := openLibc(b)
	for _, tc := range []struct {
		name  string
		dirs  []string
		lines bool
	}{
		{"dynsym", []string{}, false},
		{"debuginfo", []string{"/usr/lib/debug"}, false},
		{"debuginfo+lines", []string{"/usr/lib/debug"}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Options{DebugDirs: tc.dirs, DebuginfodURLs: []string{}, Lines: tc.lines})
			var m *module
			for b.Loop() {
				m = s.loadModule(f, debugLocator{path: libcPath})
				s.ensureDWARF(m, f, debugLocator{path: libcPath})
			}
			if m.table.len() == 0 {
				b.Fatal("no symbols")
			}
			b.ReportMetric(float64(m.table.len()), "symbols")
			b.ReportMetric(float64(m.table.bytes())/float64(m.table.len()), "bytes/symbol")
			if m.dwarf != nil {
				b.ReportMetric(float64(len(m.dwarf.units)), "dwarf-units")
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/load")
		})
	}
}

// BenchmarkWarmLookup measures lookups in an already loaded libc table at
// random text addresses.
func BenchmarkWarmLookup(b *testing.B) {
	f := openLibc(b)
	s := New(Options{DebugDirs: []string{"/usr/lib/debug"}, DebuginfodURLs: []string{}})
	m := s.loadModule(f, debugLocator{path: libcPath})
	n := m.table.len()
	if n == 0 {
		b.Skip("no symbols")
	}
	lo, hi := m.table.addrs[0], m.table.addrs[n-1]
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := make([]uint64, 1<<16)
	for i := range addrs {
		addrs[i] = lo + rng.Uint64N(hi-lo)
	}
	named := 0
	i := 0
	start := time.Now()
	for b.Loop() {
		if j, ok := m.table.lookup(addrs[i&(len(addrs)-1)]); ok && len(m.table.name(j)) > 0 {
			named++
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "lookups/s")
	if named == 0 {
		b.Fatal("nothing named")
	}
}

// BenchmarkUser is the whole path for a process: mapping, cache, table.
func BenchmarkUser(b *testing.B) {
	dir := b.TempDir()
	bin := buildC(b, dir, "fixture", cFixture)
	fx := start(b, bin)
	s := New(Options{DebugDirs: []string{"/usr/lib/debug"}, DebuginfodURLs: []string{}})
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var addrs []uint64
	for _, m := range p.mappings() {
		if filepath.Base(m.path) == "libc.so.6" {
			for a := m.start; a < m.end; a += 97 {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		b.Skip("fixture maps no libc.so.6")
	}
	i := 0
	start := time.Now()
	for b.Loop() {
		s.User(p, addrs[i%len(addrs)], true)
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "lookups/s")
}

// BenchmarkModuleFor is the unwinder's per-frame question.
func BenchmarkModuleFor(b *testing.B) {
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	p, err := s.Snapshot(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	pc := funcPC(BenchmarkModuleFor)
	for b.Loop() {
		if _, _, _, ok := p.ModuleFor(pc); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkParseKallsyms parses the host's /proc/kallsyms, read once into
// memory: the parse alone, without the kernel's formatting of the file.
func BenchmarkParseKallsyms(b *testing.B) {
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil || len(data) == 0 {
		b.Skipf("cannot read /proc/kallsyms: %v", err)
	}
	var kt *kernelTable
	for b.Loop() {
		if kt, err = parseKallsyms(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(kt.syms.len()), "symbols")
}
