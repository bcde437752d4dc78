package unwind

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"weak"
)

// cfiFiles are ELF files with CFI: the fixtures (x86-64 and arm64, C and
// Go's .debug_frame) and the libc and ld.so extracts.
func cfiFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"*.bin", filepath.Join("lib", "*.elf"), filepath.Join("arm64", "*.bin")} {
		m, _ := filepath.Glob(filepath.Join("testdata", g))
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("testdata has %d ELF files", len(files))
	}
	return files
}

// TestCFIIndexAgrees is the index's proof: for each section of each file
// it has every FDE delve's parser finds, in the same order (sorted, the
// same duplicates dropped), with the same range, instructions and CIE.
func TestCFIIndexAgrees(t *testing.T) {
	for _, path := range cfiFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			want, werr := readFDEs(f)
			got, gerr := readCFI(f, nil)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("delve: %v; index: %v", werr, gerr)
			}
			if len(got.fdes) != len(want) {
				t.Fatalf("%d FDEs, delve's parser %d", len(got.fdes), len(want))
			}
			for i, w := range want {
				g := &got.fdes[i]
				c := &got.cies[g.cie]
				wc := w.CIE
				switch {
				case g.begin != w.Begin() || g.end != w.End():
					t.Fatalf("FDE %d: [%#x, %#x), delve [%#x, %#x)", i, g.begin, g.end, w.Begin(), w.End())
				case !bytes.Equal(got.instructions(g), w.Instructions):
					t.Fatalf("FDE %d at %#x: instructions % x, delve % x", i, g.begin, got.instructions(g), w.Instructions)
				case c.codeAlign != wc.CodeAlignmentFactor || c.dataAlign != wc.DataAlignmentFactor || c.retReg != wc.ReturnAddressRegister:
					t.Fatalf("FDE %d: CIE %+v, delve %+v", i, c, wc)
				case !bytes.Equal(c.initial, wc.InitialInstructions):
					t.Fatalf("FDE %d: CIE instructions % x, delve % x", i, c.initial, wc.InitialInstructions)
				}
			}
			t.Logf("%d FDEs, %d CIEs", len(got.fdes), len(got.cies))
		})
	}
}

// TestCFIScanMalformed: sections cut short, pointing at CIEs that are not
// there or with encodings the index does not read are errors, and leave
// the index as it was.
func TestCFIScanMalformed(t *testing.T) {
	// A CIE (version 1, "zR", code 1, data -8, ra 16, pcrel|sdata4) and an
	// FDE of it for [0x1000, 0x1010) at eh_frame address 0x2000.
	cie := []byte{
		0x14, 0, 0, 0, // length 20
		0, 0, 0, 0, // CIE id
		1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x1b, // version, aug, code, data, ra, aug len, enc
		0x0c, 7, 8, 0x90, 1, 0, 0, // def_cfa rsp+8, offset r16 at cfa-8, nops
	}
	fde := func(cieBack uint32) []byte {
		b := []byte{0x12, 0, 0, 0} // length 18
		b = append(b, byte(cieBack), byte(cieBack>>8), byte(cieBack>>16), byte(cieBack>>24))
		// pc_begin: pcrel from its own address 0x2000+len(cie)+8.
		at := uint32(0x2000 + len(cie) + 8)
		rel := uint32(0x1000) - at
		b = append(b, byte(rel), byte(rel>>8), byte(rel>>16), byte(rel>>24))
		b = append(b, 0x10, 0, 0, 0, 0)     // size, aug length 0
		b = append(b, 0x41, 0x0e, 16, 0, 0) // advance 1, def_cfa_offset 16, nops
		return b
	}
	good := append(append(bytes.Clone(cie), fde(uint32(len(cie)+4))...), 0, 0, 0, 0)
	tests := []struct {
		name string
		sec  []byte
		want int // FDEs; -1: an error
	}{
		{"good", good, 1},
		{"terminator only", []byte{0, 0, 0, 0}, 0},
		{"cut in the length", good[:2], -1},
		{"cut in the FDE", good[:len(cie)+10], -1},
		{"unknown CIE", append(bytes.Clone(cie), fde(4)...), -1},
		{"textrel encoding", func() []byte { b := bytes.Clone(good); b[16] = 0x20 | 0x0b; return b }(), -1},
		{"augmentation not z", func() []byte { b := bytes.Clone(good); b[9] = 'y'; return b }(), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &cfiIndex{fdes: []fdeRec{{begin: 1, end: 2}}, cies: []cieRec{{}}}
			err := x.scan(tc.sec, true, 0x2000)
			if tc.want < 0 {
				if err == nil {
					t.Fatalf("no error; FDEs %+v", x.fdes)
				}
				if len(x.fdes) != 1 || len(x.cies) != 1 {
					t.Fatalf("after the error: %d FDEs, %d CIEs, want the 1 and 1 before", len(x.fdes), len(x.cies))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(x.fdes) - 1; got != tc.want {
				t.Fatalf("%d FDEs, want %d", got, tc.want)
			}
			if tc.want == 1 {
				f := x.fdes[1]
				c := x.cies[f.cie]
				if f.begin != 0x1000 || f.end != 0x1010 || c.codeAlign != 1 || c.dataAlign != -8 || c.retReg != 16 || !bytes.Equal(x.instructions(&f), []byte{0x41, 0x0e, 16, 0, 0}) {
					t.Fatalf("FDE %+v, CIE %+v", f, c)
				}
			}
		})
	}
}

// TestBuildCompactMapped: a table built from an *os.File (its sections
// read through a mapping, unmapped after) is the one built from its
// bytes, for C, Go (with and without symbols) and arm64 files.
func TestBuildCompactMapped(t *testing.T) {
	files := cfiFiles(t)
	files = append(files, buildGoWith(t, filepath.Join("testdata", "goleaf.go"), nil), buildGoWith(t, filepath.Join("testdata", "goleaf.go"), nil, "-ldflags=-s -w"))
	for _, path := range files {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			want := buildCompactFile(t, path)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := BuildCompact(f)
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC() // the mapping is gone: nothing of the table may point into it
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("mapped: %d entries, %d rules; read: %d entries, %d rules", len(got.Entries), len(got.Rules), len(want.Entries), len(want.Rules))
			}
		})
	}
}

// TestEntryList: entries pushed, replaced and popped across chunk
// boundaries come out as a plain slice would have them.
func TestEntryList(t *testing.T) {
	for _, n := range []int{0, 1, firstEntryChunk - 1, firstEntryChunk, firstEntryChunk + 1, 3*firstEntryChunk + 7, maxEntryChunk + 2*firstEntryChunk} {
		var l entryList
		var want []Entry
		for i := range n {
			e := Entry{PC: uint32(i), Rule: uint32(i % 7)}
			l.push(e)
			want = append(want, e)
			if i%5 == 4 { // pop one, the chunk's first at times
				l.pop()
				want = want[:len(want)-1]
			}
			if len(want) > 1 {
				l.last(2).Rule = 99
				want[len(want)-2].Rule = 99
			}
		}
		if l.len() != len(want) {
			t.Fatalf("n=%d: len %d, want %d", n, l.len(), len(want))
		}
		got := l.slice()
		if len(got) != len(want) || cap(got) != len(got) && len(want) > firstEntryChunk {
			t.Fatalf("n=%d: %d entries (cap %d), want %d", n, len(got), cap(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("n=%d: entry %d %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
}

// TestUnwinderKeepsOnlyTheStore: the unwinder's tables are the store's,
// so a table the store let go for one the BPF unwinder's loader built is
// not held beside it (the unwinder's own cache of tables held up to the
// store's bound again).
func TestUnwinderKeepsOnlyTheStore(t *testing.T) {
	files := cfiFiles(t)[:2]
	opener := func(p string) func() (io.ReaderAt, io.Closer, error) {
		return func() (io.ReaderAt, io.Closer, error) {
			f, err := os.Open(p)
			return f, f, err
		}
	}
	u := New(Options{CacheBytes: 1}) // one table at a time
	first := u.tables.get("a", opener(files[0]))
	if first == nil || first.ct == nil {
		t.Fatalf("no table of %s", files[0])
	}
	if again := u.tables.get("a", nil); again != first {
		t.Fatal("a table in the store is not found without an opener")
	}
	gone := weak.Make(first.ct)
	first = nil
	// The BPF unwinder's loader builds through the store.
	if _, err := u.Store().Get("b", opener(files[1])); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if gone.Value() != nil {
		t.Fatal("the table the store evicted is still reachable")
	}
	if u.tables.get("a", nil) != nil {
		t.Fatal("an evicted table is returned without an opener")
	}
	if st := u.Store().Stats(); st.Entries != 1 || st.Evictions != 1 {
		t.Fatalf("store %+v, want 1 entry and 1 eviction", st)
	}
}
