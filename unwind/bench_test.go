package unwind

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// benchUnwind unwinds one recorded sample repeatedly with warm tables: the
// cost per stack the profiler pays once the files' CFI is parsed.
func benchUnwind(b *testing.B, name string, mode Mode) {
	f, r := loadFixture(b, name)
	if !libcResolves(r) {
		b.Fatal("the extract of the fixture's libc is missing from testdata/lib")
	}
	s := f.Sample
	u := New(Options{})
	want := len(u.Unwind(r, mode, s.Regs, s.Stack, s.FPChain).PCs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res := u.Unwind(r, mode, s.Regs, s.Stack, s.FPChain); len(res.PCs) != want {
			b.Fatalf("%d frames, then %d", want, len(res.PCs))
		}
	}
}

// BenchmarkUnwindFP is the baseline: frame pointers only, the chain as is.
func BenchmarkUnwindFP(b *testing.B) { benchUnwind(b, "leaf", ModeFP) }

// BenchmarkUnwindAutoLeaf completes main;alpha;beta;spin (one CFI frame).
func BenchmarkUnwindAutoLeaf(b *testing.B) { benchUnwind(b, "leaf", ModeAuto) }

// BenchmarkUnwindAutoMemset completes main;fill_buffer;memset in libc.
func BenchmarkUnwindAutoMemset(b *testing.B) { benchUnwind(b, "memset", ModeAuto) }

// BenchmarkUnwindDWARFNoFP unwinds a binary without frame pointers entirely
// with CFI (7 frames down to _start).
func BenchmarkUnwindDWARFNoFP(b *testing.B) { benchUnwind(b, "nofp", ModeDWARF) }

// BenchmarkUnwindDWARFQsort unwinds glibc's merge sort recursion with CFI.
func BenchmarkUnwindDWARFQsort(b *testing.B) { benchUnwind(b, "qsort", ModeDWARF) }

// BenchmarkLoadLibc is the cold cost of a file's CFI: parsing libc's
// .eh_frame, paid once per file while its table stays cached.
func BenchmarkLoadLibc(b *testing.B) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	data, err := os.ReadFile(libc)
	if err != nil {
		b.Skipf("no %s: %v", libc, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := loadTable(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBuildCompact builds the compact table of a file, reporting per MB of
// its section (.eh_frame, or a stripped Go binary's .gopclntab) the build
// time and the bytes allocated, and the table's entries and bytes.
func benchBuildCompact(b *testing.B, section string, paths ...string) {
	var data []byte
	var path string
	for _, p := range paths {
		if d, err := os.ReadFile(p); err == nil {
			data, path = d, p
			break
		}
	}
	if data == nil {
		b.Skipf("none of %v here", paths)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	eh := f.Section(section)
	if eh == nil {
		b.Fatalf("%s has no %s", path, section)
	}
	mb := float64(eh.Size) / (1 << 20)
	var ct *CompactTable
	var before, after runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		if ct, err = BuildCompact(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/mb/(1<<20), "allocMB/MB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6/mb, "ms/MB")
	b.ReportMetric(float64(len(ct.Entries)), "entries")
	b.ReportMetric(float64(ct.Bytes()), "table-bytes")
	b.ReportMetric(float64(eh.Size), strings.TrimPrefix(section, ".")+"-bytes")
}

// BenchmarkBuildCompactLibc is the cost of libc's compact table, paid once
// per file while the table is kept.
func BenchmarkBuildCompactLibc(b *testing.B) {
	benchBuildCompact(b, ".eh_frame", "/lib/x86_64-linux-gnu/libc.so.6")
}

// BenchmarkBuildCompactLLVM is a large C++ library's (package llvm).
func BenchmarkBuildCompactLLVM(b *testing.B) {
	paths, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/libLLVM-*.so*")
	more, _ := filepath.Glob("/usr/lib/llvm-*/lib/libLLVM*.so*")
	benchBuildCompact(b, ".eh_frame", append(paths, more...)...)
}

// BenchmarkBuildCompactGo is a stripped Go binary's, from its pclntab
// alone (goleaf built with -ldflags=-s -w).
func BenchmarkBuildCompactGo(b *testing.B) {
	benchBuildCompact(b, ".gopclntab", buildGoWith(b, filepath.Join("testdata", "goleaf.go"), nil, "-ldflags=-s -w"))
}
