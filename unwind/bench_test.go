package unwind

import (
	"bytes"
	"os"
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
