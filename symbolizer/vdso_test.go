package symbolizer

import (
	"bytes"
	"debug/elf"
	"os"
	"strings"
	"testing"
)

func TestVDSO(t *testing.T) {
	img, err := readVDSO()
	if err != nil {
		t.Skipf("no vdso: %v", err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var target elf.Symbol
	for _, s := range syms {
		if strings.HasSuffix(s.Name, "clock_gettime") && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 2 {
			target = s
			break
		}
	}
	if target.Name == "" {
		t.Skip("vdso without clock_gettime")
	}
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	p, err := s.Snapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var base uint64
	for _, m := range p.mappings() {
		if m.path == "[vdso]" {
			base = m.start
		}
	}
	if base == 0 {
		t.Fatal("no [vdso] mapping in the snapshot")
	}
	// The vDSO image is linked at 0 (its first PT_LOAD maps offset 0).
	fr := s.User(p, base+target.Value+1, false)[0]
	if fr.Module != "[vdso]" || !strings.HasSuffix(fr.Name, "clock_gettime") {
		t.Errorf("got %+v, want %s in [vdso]", fr, target.Name)
	}
	key, bias, open, ok := p.ModuleFor(base + target.Value)
	if !ok || !strings.HasPrefix(key, "vdso:") || base+target.Value-bias != target.Value {
		t.Fatalf("ModuleFor: %q bias %#x ok %v", key, bias, ok)
	}
	r, c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := elf.NewFile(r); err != nil {
		t.Errorf("vdso image: %v", err)
	}
}
