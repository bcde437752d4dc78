package gopclntab

import (
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// ownTable reads the pclntab of the test binary itself.
func ownTable(t testing.TB) ([]byte, uint64) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer f.Close()
	sec, text := f.Section(".gopclntab"), f.Section(".text")
	if sec == nil || text == nil {
		t.Skip("test binary has no .gopclntab")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	return data, text.Addr
}

// ownTables parses the test binary's pclntab, and with debug/gosym.
func ownTables(t *testing.T) (*Table, *gosym.Table) {
	t.Helper()
	data, text := ownTable(t)
	tab, err := Parse(data, binary.LittleEndian, text)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		t.Fatal(err)
	}
	return tab, ref
}

// TestAgreesWithGosym reads every function of a real pclntab and checks
// names and bounds against the standard library's reader, and that frame
// sizes start at 0 at the entry.
func TestAgreesWithGosym(t *testing.T) {
	tab, ref := ownTables(t)
	if tab.NumFuncs() != len(ref.Funcs) {
		t.Fatalf("%d functions, gosym %d", tab.NumFuncs(), len(ref.Funcs))
	}
	framed, goexit := 0, false
	for i := range tab.NumFuncs() {
		fn, ok := tab.Func(i)
		if !ok {
			t.Fatalf("function %d unreadable", i)
		}
		r := ref.Funcs[i]
		if name := tab.Name(fn.NameOff); fn.Entry != r.Entry || fn.End != r.End || name != r.Name {
			t.Fatalf("function %d: %s [%#x, %#x), gosym %s [%#x, %#x)", i, name, fn.Entry, fn.End, r.Name, r.Entry, r.End)
		}
		if at, ok := tab.FuncAt(fn.Entry + (fn.End-fn.Entry)/2); !ok || at.Entry != fn.Entry {
			t.Fatalf("FuncAt inside %s found %#x", r.Name, at.Entry)
		}
		if v, ok := tab.Value(fn.PCSP, fn.Entry, fn.Entry); fn.PCSP != 0 && (!ok || v != 0) {
			t.Errorf("%s: frame size %d (%v) at its entry, want 0", r.Name, v, ok)
		}
		biggest := int64(0)
		tab.Values(fn.PCSP, fn.Entry, func(lo, hi uint64, v int64) bool {
			if lo < fn.Entry || hi > fn.End || hi <= lo {
				t.Errorf("%s: run [%#x, %#x) outside [%#x, %#x)", r.Name, lo, hi, fn.Entry, fn.End)
			}
			biggest = max(biggest, v)
			return true
		})
		if biggest > 0 {
			framed++
		}
		if strings.TrimSuffix(r.Name, ".abi0") == "runtime.goexit" {
			goexit = true
			if fn.Flag&FlagTopFrame == 0 {
				t.Errorf("%s is not marked TOPFRAME (flag %#x)", r.Name, fn.Flag)
			}
		}
	}
	if !goexit {
		t.Error("no runtime.goexit")
	}
	if framed < tab.NumFuncs()/2 {
		t.Errorf("only %d of %d functions have a frame", framed, tab.NumFuncs())
	}
	if _, ok := tab.FuncAt(tab.TextStart - 1); ok {
		t.Error("a pc below .text has a function")
	}
}

// TestParseErrors: input that is not a pclntab this package reads is an
// error naming the problem.
func TestParseErrors(t *testing.T) {
	data, text := ownTable(t)
	bad := func(edit func([]byte)) []byte {
		b := append([]byte(nil), data...)
		edit(b)
		return b
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", data[:20], "shorter than its header"},
		{"go1.16", bad(func(b []byte) { binary.LittleEndian.PutUint32(b, 0xfffffffa) }), "only Go 1.20+"},
		{"32-bit", bad(func(b []byte) { b[7] = 4 }), "only 64-bit"},
		{"offset", bad(func(b []byte) { binary.LittleEndian.PutUint64(b[8+8*7:], 1<<40) }), "past its end"},
		{"nfunc", bad(func(b []byte) { binary.LittleEndian.PutUint64(b[8:], 1<<40) }), "functions do not fit"},
	} {
		if _, err := Parse(tt.data, binary.LittleEndian, text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// FuzzTable patches a real pclntab: reading every function and its frame
// sizes must not panic, and runs stay in order.
func FuzzTable(f *testing.F) {
	data, text := ownTable(f)
	f.Add(uint32(0), []byte{})
	f.Add(uint32(8), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add(uint32(len(data)/2), []byte{0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1})
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		b := append([]byte(nil), data...)
		copy(b[int(at)%len(b):], patch)
		tab, err := Parse(b, binary.LittleEndian, text)
		if err != nil {
			return
		}
		for i := range min(tab.NumFuncs(), 5000) {
			fn, ok := tab.Func(i)
			if !ok {
				continue
			}
			_ = tab.Name(fn.NameOff)
			fn.PCData(2)
			fn.FuncData(3)
			last := fn.Entry
			tab.Values(fn.PCSP, fn.Entry, func(lo, hi uint64, v int64) bool {
				if lo != last || hi < lo {
					t.Fatalf("run [%#x, %#x) after %#x", lo, hi, last)
				}
				last = hi
				return true
			})
			tab.FuncAt(fn.Entry)
		}
	})
}

// TestLineAgreesWithGosym checks file:line of pcs across every function of
// a real pclntab (the entry, inside, the last byte) against gosym's
// PCToLine, which the symbolizer used before reading the table in place.
func TestLineAgreesWithGosym(t *testing.T) {
	tab, ref := ownTables(t)
	checked, withLine := 0, 0
	for i := range tab.NumFuncs() {
		fn, ok := tab.Func(i)
		// Markers without tables (go:textfipsstart): gosym decodes
		// whatever starts the pc-value data for them.
		if !ok || fn.End <= fn.Entry || fn.PCLine == 0 || fn.PCFile == 0 {
			continue
		}
		for _, pc := range []uint64{fn.Entry, fn.Entry + (fn.End-fn.Entry)/3, fn.Entry + (fn.End-fn.Entry)/2, fn.End - 1} {
			at, ok := tab.FuncAt(pc)
			if !ok || at.Entry != fn.Entry {
				t.Fatalf("pc %#x: function at %#x, want %#x", pc, at.Entry, fn.Entry)
			}
			file, line := tab.Line(at, pc)
			rfile, rline, _ := ref.PCToLine(pc)
			if file != rfile || line != rline {
				t.Fatalf("pc %#x in %s: %s:%d, gosym %s:%d", pc, tab.Name(fn.NameOff), file, line, rfile, rline)
			}
			checked++
			if line > 0 && file != "" {
				withLine++
			}
		}
	}
	if checked < 1000 || withLine < checked/2 {
		t.Fatalf("%d pcs checked, %d with a file and line: too few for a real table", checked, withLine)
	}
}
