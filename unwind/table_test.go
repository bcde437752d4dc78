package unwind

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// symbolAddr returns the address of a function symbol of an ELF file.
func symbolAddr(t *testing.T, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value
		}
	}
	t.Fatalf("%s has no function %s", path, name)
	return 0
}

func openTable(t *testing.T, path string) *table {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := loadTable(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("loading the CFI of %s: %v", path, err)
	}
	return tb
}

// TestTableRows checks rows against facts of the x86-64 ABI: at a
// function's first instruction the CFA is rsp+8 with the return address at
// CFA-8; a function with a frame pointer switches to rbp+16 with rbp saved
// at CFA-16 within its prologue; a leaf without one never does.
func TestTableRows(t *testing.T) {
	tests := []struct {
		bin, fn string
		framed  bool // sets up rbp
	}{
		{"leaf", "main", true},
		{"leaf", "alpha", true},
		{"leaf", "beta", true},
		{"leaf", "spin", false},
		{"nofp", "outer", false},
		{"nofp", "inner", false},
		{"qsort", "sort_records", true},
	}
	for _, tt := range tests {
		t.Run(tt.bin+"/"+tt.fn, func(t *testing.T) {
			path := filepath.Join("testdata", tt.bin+".bin")
			tb := openTable(t, path)
			entry := symbolAddr(t, path, tt.fn)
			rw, ok := tb.rowFor(entry)
			if !ok || rw.kind != rowCFASP || rw.cfaOff != 8 || rw.raOff != -8 || rw.raUndefined {
				t.Fatalf("row at the entry of %s = %+v, %v; want CFA rsp+8, return address at CFA-8", tt.fn, rw, ok)
			}
			framed := false
			for pc := entry; pc < entry+8; pc++ {
				rw, ok := tb.rowFor(pc)
				if ok && rw.kind == rowCFABP {
					framed = true
					if rw.cfaOff != 16 || !rw.bpSaved || rw.bpOff != -16 || rw.raOff != -8 {
						t.Errorf("framed row at %#x = %+v; want CFA rbp+16, rbp at CFA-16, return address at CFA-8", pc, rw)
					}
					break
				}
			}
			if framed != tt.framed {
				t.Errorf("%s sets up rbp in its prologue: %v, want %v", tt.fn, framed, tt.framed)
			}
		})
	}
}

// TestTableOutermost checks that _start ends the walk.
func TestTableOutermost(t *testing.T) {
	path := filepath.Join("testdata", "nofp.bin")
	tb := openTable(t, path)
	rw, ok := tb.rowFor(symbolAddr(t, path, "_start") + 4)
	if !ok || !rw.raUndefined {
		t.Errorf("row in _start = %+v, %v; want an undefined return address", rw, ok)
	}
}

// TestTablePLT checks the PLT's CFA expression is understood.
func TestTablePLT(t *testing.T) {
	path := filepath.Join("testdata", "leaf.bin")
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	plt := f.Section(".plt")
	f.Close()
	if plt == nil || plt.Size < 32 {
		t.Skip("leaf.bin has no lazy PLT entries")
	}
	tb := openTable(t, path)
	entry := plt.Addr + 16 // the first entry after PLT0
	rw, ok := tb.rowFor(entry)
	if !ok || rw.kind != rowPLT || rw.cfaOff != 11 {
		t.Errorf("row in the PLT = %+v, %v; want the PLT expression with threshold 11", rw, ok)
	}
	for _, tt := range []struct {
		pc   uint64
		want uint64
	}{{entry, 8}, {entry + 10, 8}, {entry + 11, 16}} {
		st := stackCopy{base: 0x1000, data: make([]byte, 64)}
		st.data[tt.want-8] = 0x42 // the return address sits just below the CFA
		u := New(Options{})
		r := fixedResolver{path: path}
		next, _, end, why := u.step(&walk{}, r, frame{pc: tt.pc, sp: 0x1000, exact: true}, st)
		if why != "" || end || next.sp != 0x1000+tt.want || next.pc != 0x42 {
			t.Errorf("at PLT offset %d: next %+v, end %v, %q; want CFA sp+%d", tt.pc-entry, next, end, why, tt.want)
		}
	}
}

// fixedResolver maps every address to one file, unbiased.
type fixedResolver struct{ path string }

func (r fixedResolver) ModuleFor(uint64) (string, uint64, func() (io.ReaderAt, io.Closer, error), bool) {
	info := loadELF(r.path)
	return info.key, 0, info.openFn, true
}

// TestDebugFrame unwinds a binary whose own functions are described only in
// .debug_frame.
func TestDebugFrame(t *testing.T) {
	gcc := requireGCC(t)
	bin := filepath.Join(t.TempDir(), "nofp-debug-frame")
	out, err := exec.Command(gcc, "-O2", "-g", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
		"-o", bin, filepath.Join("testdata", "nofp.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	hasDebugFrame := f.Section(".debug_frame") != nil
	f.Close()
	if !hasDebugFrame {
		t.Skip("gcc wrote no .debug_frame")
	}
	tb := openTable(t, bin)
	for _, fn := range []string{"inner", "middle", "outer", "main", "_start"} {
		if _, ok := tb.rowFor(symbolAddr(t, bin, fn)); !ok {
			t.Errorf("no CFI row for %s", fn)
		}
	}
}

func TestLoadTableErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not an elf", []byte("#!/bin/sh\necho hello\n")},
	} {
		if _, err := loadTable(bytes.NewReader(tt.data)); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestSPOffset(t *testing.T) {
	tests := []struct {
		name  string
		expr  []byte
		deref bool
		want  int32
		ok    bool
	}{
		{"rsp+160 deref (signal CFA)", []byte{0x77, 0xa0, 0x01, 0x06}, true, 160, true},
		{"rsp+168 (saved rip)", []byte{0x77, 0xa8, 0x01}, false, 168, true},
		{"rsp+40", []byte{0x77, 40}, false, 40, true},
		{"deref missing", []byte{0x77, 0xa0, 0x01}, true, 0, false},
		{"unexpected deref", []byte{0x77, 0xa0, 0x01, 0x06}, false, 0, false},
		{"other register", []byte{0x76, 8}, false, 0, false},
		{"negative offset", []byte{0x77, 0x78}, false, 0, false},
		{"trailing ops", []byte{0x77, 8, 0x23, 8}, false, 0, false},
		{"empty", nil, false, 0, false},
		{"unterminated", []byte{0x77, 0x80, 0x80}, false, 0, false},
		{"too long", []byte{0x77, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false, 0, false},
	}
	for _, tt := range tests {
		got, ok := spOffset(tt.expr, tt.deref)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("%s: spOffset(% x, %v) = %d, %v; want %d, %v", tt.name, tt.expr, tt.deref, got, ok, tt.want, tt.ok)
		}
	}
}
