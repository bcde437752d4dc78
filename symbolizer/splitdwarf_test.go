package symbolizer

import (
	"encoding/binary"
	"testing"
)

// cuIndex builds a DWARF 5 .debug_cu_index of one unit with the columns
// info and abbrev.
func cuIndex(id uint64) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, 5)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 2) // columns
	b = le.AppendUint32(b, 1) // units
	b = le.AppendUint32(b, 2) // slots
	b = le.AppendUint64(b, id)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, 1) // row 1
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, dwSectInfo)
	b = le.AppendUint32(b, dwSectAbbrev)
	b = le.AppendUint32(b, 0x10) // offsets
	b = le.AppendUint32(b, 0x20)
	b = le.AppendUint32(b, 0x30) // sizes
	return le.AppendUint32(b, 0x40)
}

func TestParseCUIndex(t *testing.T) {
	rows, err := parseCUIndex(cuIndex(0xfeed))
	if err != nil {
		t.Fatal(err)
	}
	want := []dwpPart{{dwSectInfo, 0x10, 0x30}, {dwSectAbbrev, 0x20, 0x40}}
	if got := rows[0xfeed]; len(rows) != 1 || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("rows %+v, want %+v for 0xfeed", rows, want)
	}
	if _, err := parseCUIndex(cuIndex(1)[:40]); err == nil {
		t.Error("a truncated index was accepted")
	}
}

func FuzzParseCUIndex(f *testing.F) {
	f.Add(cuIndex(0xfeed))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := parseCUIndex(b)
		if err == nil && len(rows) > len(b) {
			t.Errorf("%d rows from %d bytes", len(rows), len(b))
		}
		p := &dwpFile{rows: rows, all: dwoSections{info: b, abbrev: b}}
		for id := range rows {
			p.unit(id)
		}
	})
}
