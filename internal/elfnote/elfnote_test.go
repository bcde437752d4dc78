package elfnote

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"testing"
)

// note builds one ELF note in byte order bo.
func note(bo binary.ByteOrder, name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	w := func(v uint32) { _ = binary.Write(&b, bo, v) }
	w(uint32(len(name)))
	w(uint32(len(desc)))
	w(typ)
	b.WriteString(name)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(desc)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

func TestBuildIDNote(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 0x01}
	for _, tc := range []struct {
		name string
		data []byte
		bo   binary.ByteOrder
		want string
	}{
		{"little endian", note(binary.LittleEndian, "GNU\x00", 3, id), binary.LittleEndian, "deadbeef01"},
		{"big endian", note(binary.BigEndian, "GNU\x00", 3, id), binary.BigEndian, "deadbeef01"},
		{"after another note", append(note(binary.LittleEndian, "Go\x00\x00", 4, []byte("abcd")), note(binary.LittleEndian, "GNU\x00", 3, id)...), binary.LittleEndian, "deadbeef01"},
		{"wrong type", note(binary.LittleEndian, "GNU\x00", 1, id), binary.LittleEndian, ""},
		{"wrong owner", note(binary.LittleEndian, "GNX\x00", 3, id), binary.LittleEndian, ""},
		{"empty descriptor", note(binary.LittleEndian, "GNU\x00", 3, nil), binary.LittleEndian, ""},
		{"truncated", note(binary.LittleEndian, "GNU\x00", 3, id)[:18], binary.LittleEndian, ""},
		{"huge sizes", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0}, binary.LittleEndian, ""},
		{"empty", nil, binary.LittleEndian, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BuildIDNote(tc.data, tc.bo); got != tc.want {
				t.Errorf("BuildIDNote = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBuildIDOfTestBinary reads the build ID the Go linker wrote into the
// test binary itself and checks it against the raw section.
func TestBuildIDOfTestBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Skip("the test binary has no .note.gnu.build-id (linked without -B)")
	}
	d, err := s.Data()
	if err != nil || len(d) < 16 {
		t.Fatalf("build-id section: %v (%d bytes)", err, len(d))
	}
	if got, want := BuildID(f), BuildIDNote(d, f.ByteOrder); got == "" || got != want {
		t.Errorf("BuildID = %q, want %q", got, want)
	}
}

func FuzzBuildIDNote(f *testing.F) {
	f.Add(note(binary.LittleEndian, "GNU\x00", 3, []byte{1, 2, 3}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = BuildIDNote(data, binary.LittleEndian)
		_ = BuildIDNote(data, binary.BigEndian)
	})
}
