// Package elfnote reads the GNU build ID of an ELF file: the identity by
// which the symbolizer, the unwind tables and their caches name a file.
// One parser, because three copies disagreed on byte order and on what a
// corrupt note does.
package elfnote

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
)

// maxNoteBytes bounds what one note section may make us read: build-id
// notes are a few dozen bytes, a hostile file may claim gigabytes.
const maxNoteBytes = 1 << 20

// ntGNUBuildID is NT_GNU_BUILD_ID.
const ntGNUBuildID = 3

// BuildID returns the hex GNU build ID of f, or "" when it has none or its
// notes are corrupt.
func BuildID(f *elf.File) string {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > maxNoteBytes {
			continue
		}
		data, ok := sectionData(s)
		if !ok {
			continue
		}
		if id := BuildIDNote(data, f.ByteOrder); id != "" {
			return id
		}
	}
	return ""
}

// sectionData reads s, turning the panic a corrupt compressed section can
// raise inside debug/elf into a miss.
func sectionData(s *elf.Section) (data []byte, ok bool) {
	defer func() {
		if recover() != nil {
			data, ok = nil, false
		}
	}()
	d, err := s.Data()
	return d, err == nil
}

// BuildIDNote walks the notes in data, in byte order bo, for
// NT_GNU_BUILD_ID and returns its descriptor in hex, or "".
func BuildIDNote(data []byte, bo binary.ByteOrder) string {
	for len(data) >= 12 {
		namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
		data = data[12:]
		nameEnd := align4(uint64(namesz))
		descEnd := nameEnd + align4(uint64(descsz))
		if descEnd > uint64(len(data)) {
			return ""
		}
		if typ == ntGNUBuildID && namesz == 4 && string(data[:4]) == "GNU\x00" && descsz > 0 {
			return hex.EncodeToString(data[nameEnd : nameEnd+uint64(descsz)])
		}
		data = data[descEnd:]
	}
	return ""
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }
