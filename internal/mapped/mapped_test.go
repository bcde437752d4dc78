package mapped

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"testing"
	"unsafe"
)

// Every section read in place is the section debug/elf reads, and the
// mapping outlives the file's close.
func TestSectionsMatchELF(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Map(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer ef.Close()
	inPlace := 0
	for _, s := range ef.Sections {
		b, err := m.Section(s)
		if err != nil {
			if s.Type != elf.SHT_NOBITS && s.Type != elf.SHT_NULL && s.Flags&elf.SHF_COMPRESSED == 0 {
				t.Errorf("%s: %v", s.Name, err)
			}
			continue
		}
		want, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes in place differ from debug/elf's %d", s.Name, len(b), len(want))
		}
		inPlace++
	}
	if ef.Section(".gopclntab") == nil || inPlace < 10 {
		t.Fatalf("%d sections read in place", inPlace)
	}
}

func TestMapRefusesNonRegular(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if _, err := Map(f); err == nil {
		t.Error("mapped /dev/null")
	}
}

// Unmap leaves the resident set at once: the mapping is gone from the
// process's maps, its sections are not readable in place any more, and a
// second Unmap does nothing.
func TestUnmap(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Map(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	m.ReadAhead()
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(unsafe.SliceData(m.Bytes()))))
	mapsHas := func() bool {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skip(err)
		}
		return bytes.Contains(b, []byte("\n"+start)) || bytes.HasPrefix(b, []byte(start))
	}
	if !mapsHas() {
		t.Fatalf("no mapping at %s in /proc/self/maps", start)
	}
	m.Unmap()
	if mapsHas() {
		t.Fatalf("the mapping at %s is still there after Unmap", start)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer ef.Close()
	if b, err := m.Section(ef.Section(".text")); err == nil || m.Bytes() != nil {
		t.Fatalf("after Unmap: %d bytes of .text, %d mapped", len(b), len(m.Bytes()))
	}
	m.Unmap()
}
