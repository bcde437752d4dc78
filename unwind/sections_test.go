package unwind

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// The fixtures' samples go through libc, whose CFI and names are not this
// repository's: testdata/lib/<build id>.elf holds what of each library the
// fixtures need, so that they unwind the same on any host. Each is a small
// ELF file with the library's PT_LOAD headers (to map file offsets to
// addresses), its build-ID note, the .eh_frame entries covering every
// address a sample holds that falls in the library (its registers, its
// frame-pointer chain and every 8 bytes of its stack copy), and the function
// symbols naming them (libc6-dbg's included).

// libFile is where the sections of a library are committed.
func libFile(buildID string) string {
	if buildID == "" {
		buildID = "none"
	}
	return filepath.Join("testdata", "lib", buildID+".elf")
}

// TestRecordLibs rewrites testdata/lib from this host's libraries for the
// recorded fixtures, with -record (after TestLiveWorkloads, which sorts
// first). It checks that the extract gives the same CFI rows and names as
// the library at every address kept.
func TestRecordLibs(t *testing.T) {
	if !*record {
		t.Skip("rewrites testdata/lib with -record")
	}
	type lib struct {
		path string
		vas  map[uint64]bool
	}
	libs := map[string]*lib{} // by build ID
	for _, w := range workloads {
		if w.golang {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", w.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var f fixture
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		r := &mapsResolver{maps: f.Maps}
		s := f.Sample
		addrs := append([]uint64{s.Regs.IP}, s.FPChain...)
		for i := 0; i+8 <= len(s.Stack); i++ {
			addrs = append(addrs, binary.LittleEndian.Uint64(s.Stack[i:]))
		}
		for _, a := range addrs {
			m, info := r.find(a)
			if m == nil || m.Path == f.Binary {
				continue
			}
			va, ok := info.vaddr(a - m.Start + m.Offset)
			if !ok {
				continue
			}
			l := libs[m.BuildID]
			if l == nil {
				l = &lib{path: m.Path, vas: map[uint64]bool{}}
				libs[m.BuildID] = l
			}
			l.vas[va], l.vas[va-1] = true, true // return addresses are looked up at pc-1
		}
		for _, m := range f.Maps {
			if m.Path != f.Binary && libs[m.BuildID] == nil {
				t.Logf("%s: no address of the sample in %s", w.name, m.Path)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join("testdata", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	for id, l := range libs {
		vas := make([]uint64, 0, len(l.vas))
		for va := range l.vas {
			vas = append(vas, va)
		}
		slices.Sort(vas)
		img, err := extractSections(l.path, vas)
		if err != nil {
			t.Fatalf("%s: %v", l.path, err)
		}
		out := libFile(id)
		if err := os.WriteFile(out, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes for %d addresses of %s", out, len(img), len(vas), l.path)
		checkExtract(t, l.path, out, vas)
	}
}

// checkExtract compares the extract with the library at the addresses kept.
func checkExtract(t *testing.T, lib, extract string, vas []uint64) {
	t.Helper()
	full, part := readELF(lib), readELF(extract)
	if part == nil || part.buildID != full.buildID {
		t.Fatalf("%s does not read back with build ID %s", extract, full.buildID)
	}
	tables := make([]*table, 2)
	for i, path := range []string{lib, extract} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tables[i], err = loadTable(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	rows := 0
	for _, va := range vas {
		want, wok := tables[0].rowFor(va)
		got, gok := tables[1].rowFor(va)
		if got != want || gok != wok {
			t.Errorf("%s at %#x: row %+v %v, the library's %+v %v", extract, va, got, gok, want, wok)
		}
		if wok {
			rows++
		}
		if g, w := part.name(va), full.name(va); g != w {
			t.Errorf("%s names %#x %s, the library %s", extract, va, g, w)
		}
	}
	if rows == 0 {
		t.Errorf("%s: no CFI row at any address kept", extract)
	}
}

// extractSections builds the ELF image of the parts of the library at path
// that the virtual addresses vas (sorted) need.
func extractSections(path string, vas []uint64) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_X86_64 {
		return nil, errors.New("not a little-endian x86-64 ELF file")
	}
	eh := f.Section(".eh_frame")
	note := f.Section(".note.gnu.build-id")
	if eh == nil || note == nil {
		return nil, errors.New("no .eh_frame or build ID")
	}
	ehData, err := eh.Data()
	if err != nil {
		return nil, err
	}
	ehKept, err := filterEHFrame(ehData, eh.Addr, func(lo, hi uint64) bool {
		i := sort.Search(len(vas), func(i int) bool { return vas[i] >= lo })
		return i < len(vas) && vas[i] < hi
	})
	if err != nil {
		return nil, fmt.Errorf(".eh_frame: %w", err)
	}
	noteData, err := note.Data()
	if err != nil {
		return nil, err
	}

	// The symbols the library's names come from, libc6-dbg's included.
	info := readELF(path)
	var syms []elf.Symbol
	seen := map[string]bool{}
	for _, va := range vas {
		if s, ok := info.symbolAt(va); ok && !seen[s.Name+"@"+fmt.Sprint(s.Value)] {
			seen[s.Name+"@"+fmt.Sprint(s.Value)] = true
			syms = append(syms, s)
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	strtab := []byte{0}
	var symtab bytes.Buffer
	binary.Write(&symtab, binary.LittleEndian, elf.Sym64{})
	for _, s := range syms {
		binary.Write(&symtab, binary.LittleEndian, elf.Sym64{
			Name: uint32(len(strtab)), Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_FUNC),
			Shndx: uint16(elf.SHN_ABS), Value: s.Value, Size: s.Size,
		})
		strtab = append(append(strtab, s.Name...), 0)
	}

	var progs []elf.Prog64
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			progs = append(progs, elf.Prog64{Type: uint32(p.Type), Flags: uint32(p.Flags), Off: p.Off, Vaddr: p.Vaddr,
				Paddr: p.Paddr, Filesz: p.Filesz, Memsz: p.Memsz, Align: p.Align})
		}
	}

	type section struct {
		name    string
		hdr     elf.Section64
		data    []byte
		nameOff uint32
	}
	secs := []*section{
		{name: ""},
		{name: ".note.gnu.build-id", data: noteData, hdr: elf.Section64{Type: uint32(elf.SHT_NOTE), Flags: uint64(elf.SHF_ALLOC), Addr: note.Addr, Addralign: 4}},
		{name: ".eh_frame", data: ehKept, hdr: elf.Section64{Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Addr: eh.Addr, Addralign: 8}},
		{name: ".symtab", data: symtab.Bytes(), hdr: elf.Section64{Type: uint32(elf.SHT_SYMTAB), Link: 4, Info: 1, Addralign: 8, Entsize: 24}},
		{name: ".strtab", data: strtab, hdr: elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1}},
		{name: ".shstrtab", hdr: elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1}},
	}
	shstrtab := []byte{0}
	for _, s := range secs[1:] {
		s.nameOff = uint32(len(shstrtab))
		shstrtab = append(append(shstrtab, s.name...), 0)
	}
	secs[len(secs)-1].data = shstrtab

	const ehdrSize, phdrSize, shdrSize = 64, 56, 64
	off := uint64(ehdrSize + phdrSize*len(progs))
	for _, s := range secs[1:] {
		off = (off + 7) &^ 7
		s.hdr.Name, s.hdr.Off, s.hdr.Size = s.nameOff, off, uint64(len(s.data))
		off += uint64(len(s.data))
	}
	shoff := (off + 7) &^ 7

	var out bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: ehdrSize, Shoff: shoff, Ehsize: ehdrSize, Phentsize: phdrSize, Phnum: uint16(len(progs)),
		Shentsize: shdrSize, Shnum: uint16(len(secs)), Shstrndx: uint16(len(secs) - 1),
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&out, binary.LittleEndian, hdr)
	for _, p := range progs {
		binary.Write(&out, binary.LittleEndian, p)
	}
	for _, s := range secs[1:] {
		out.Write(make([]byte, int(s.hdr.Off)-out.Len()))
		out.Write(s.data)
	}
	out.Write(make([]byte, int(shoff)-out.Len()))
	for _, s := range secs {
		binary.Write(&out, binary.LittleEndian, s.hdr)
	}
	return out.Bytes(), nil
}

// DWARF pointer encodings (DW_EH_PE_*) that .eh_frame uses on x86-64.
const (
	peAbsptr = 0x00
	peUdata4 = 0x03
	peUdata8 = 0x04
	peSdata4 = 0x0b
	peSdata8 = 0x0c
	pePcrel  = 0x10
	peOmit   = 0xff
)

// pointerSize is the size of an encoded pointer.
func pointerSize(enc byte) (int, error) {
	switch enc & 0x0f {
	case peAbsptr, peUdata8, peSdata8:
		return 8, nil
	case peUdata4, peSdata4:
		return 4, nil
	}
	return 0, fmt.Errorf("pointer encoding %#x", enc)
}

// ehPointer is an encoded pointer inside an entry: where (from the entry's
// start) and how.
type ehPointer struct {
	pos int
	enc byte
}

// ehEntry is one CIE or FDE of an .eh_frame section.
type ehEntry struct {
	off, size int
	cie       bool
	cieOff    int         // FDE: its CIE
	ptrs      []ehPointer // the pc-relative pointers to move with the entry
	lo, hi    uint64      // FDE: the addresses it covers
}

// ehCIE is what reading the FDEs of a CIE takes.
type ehCIE struct {
	z               bool
	fdeEnc, lsdaEnc byte
	personality     ehPointer // pos 0: none
}

// filterEHFrame returns an .eh_frame at the same address keeping the FDEs
// for which keep is true of the range they cover, and their CIEs. The
// entries move, so their pc-relative pointers are rewritten.
func filterEHFrame(data []byte, addr uint64, keep func(lo, hi uint64) bool) ([]byte, error) {
	var entries []*ehEntry
	cies := map[int]*ehCIE{}
	for off := 0; off+4 <= len(data); {
		length := binary.LittleEndian.Uint32(data[off:])
		if length == 0 {
			break
		}
		if length == 0xffffffff || off+4+int(length) > len(data) || length < 4 {
			return nil, fmt.Errorf("entry at %#x: length %#x", off, length)
		}
		e := &ehEntry{off: off, size: 4 + int(length)}
		body := data[off : off+e.size]
		id := binary.LittleEndian.Uint32(body[4:])
		if id == 0 {
			e.cie = true
			c, err := readCIE(body)
			if err != nil {
				return nil, fmt.Errorf("CIE at %#x: %w", off, err)
			}
			if c.personality.pos != 0 {
				e.ptrs = append(e.ptrs, c.personality)
			}
			cies[off] = c
		} else {
			e.cieOff = off + 4 - int(id)
			c, ok := cies[e.cieOff]
			if !ok {
				return nil, fmt.Errorf("FDE at %#x: no CIE at %#x", off, e.cieOff)
			}
			if err := readFDE(body, e, c, addr+uint64(off)); err != nil {
				return nil, fmt.Errorf("FDE at %#x: %w", off, err)
			}
		}
		entries = append(entries, e)
		off += e.size
	}
	needed := map[int]bool{}
	for _, e := range entries {
		if !e.cie && keep(e.lo, e.hi) {
			needed[e.off], needed[e.cieOff] = true, true
		}
	}
	var out []byte
	moved := map[int]int{}
	for _, e := range entries {
		if !needed[e.off] {
			continue
		}
		n := len(out)
		moved[e.off] = n
		out = append(out, data[e.off:e.off+e.size]...)
		body := out[n:]
		if !e.cie {
			binary.LittleEndian.PutUint32(body[4:], uint32(n+4-moved[e.cieOff]))
		}
		for _, p := range e.ptrs {
			if err := movePointer(body[p.pos:], p.enc, int64(e.off-n)); err != nil {
				return nil, fmt.Errorf("entry at %#x: %w", e.off, err)
			}
		}
	}
	return append(out, 0, 0, 0, 0), nil
}

// movePointer rewrites a pc-relative pointer whose field moved back by delta
// bytes; other pointers stay.
func movePointer(b []byte, enc byte, delta int64) error {
	if enc == peOmit || enc&0x70 == 0 {
		return nil
	}
	if enc&0x70 != pePcrel {
		return fmt.Errorf("pointer encoding %#x", enc)
	}
	size, err := pointerSize(enc)
	if err != nil {
		return err
	}
	if size == 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)+uint64(delta))
		return nil
	}
	v := int64(int32(binary.LittleEndian.Uint32(b))) + delta
	if v != int64(int32(v)) {
		return errors.New("a moved pointer does not fit 32 bits")
	}
	binary.LittleEndian.PutUint32(b, uint32(int32(v)))
	return nil
}

// readCIE reads the augmentation of a CIE (its whole entry in body).
func readCIE(body []byte) (*ehCIE, error) {
	c := &ehCIE{fdeEnc: peAbsptr, lsdaEnc: peOmit}
	p := 8
	if p >= len(body) {
		return nil, errors.New("short")
	}
	version := body[p]
	p++
	end := bytes.IndexByte(body[p:], 0)
	if end < 0 {
		return nil, errors.New("unterminated augmentation")
	}
	aug := string(body[p : p+end])
	p += end + 1
	var err error
	if p, err = skipLEB(body, p); err != nil { // code alignment
		return nil, err
	}
	if p, err = skipLEB(body, p); err != nil { // data alignment
		return nil, err
	}
	if version == 1 {
		p++
	} else if p, err = skipLEB(body, p); err != nil {
		return nil, err
	}
	if aug == "" {
		return c, nil
	}
	if aug[0] != 'z' {
		return nil, fmt.Errorf("augmentation %q", aug)
	}
	c.z = true
	if p, err = skipLEB(body, p); err != nil {
		return nil, err
	}
	for _, ch := range aug[1:] {
		if p >= len(body) {
			return nil, errors.New("short augmentation data")
		}
		switch ch {
		case 'R':
			c.fdeEnc = body[p]
			p++
		case 'L':
			c.lsdaEnc = body[p]
			p++
		case 'P':
			enc := body[p]
			size, err := pointerSize(enc)
			if err != nil {
				return nil, err
			}
			c.personality = ehPointer{p + 1, enc}
			p += 1 + size
		case 'S', 'B':
		default:
			return nil, fmt.Errorf("augmentation %q", aug)
		}
	}
	return c, nil
}

// readFDE reads the range an FDE covers and where its pc-relative pointers
// are; entryAddr is the address of the entry.
func readFDE(body []byte, e *ehEntry, c *ehCIE, entryAddr uint64) error {
	size, err := pointerSize(c.fdeEnc)
	if err != nil {
		return err
	}
	if 8+2*size > len(body) {
		return errors.New("short")
	}
	begin, rng := readPointer(body[8:], size), readPointer(body[8+size:], size)
	switch c.fdeEnc & 0x70 {
	case pePcrel:
		begin += entryAddr + 8
	case 0:
	default:
		return fmt.Errorf("pointer encoding %#x", c.fdeEnc)
	}
	e.lo, e.hi = begin, begin+rng
	e.ptrs = append(e.ptrs, ehPointer{8, c.fdeEnc})
	if c.z && c.lsdaEnc != peOmit {
		// The augmentation data, when not empty, is the LSDA pointer.
		p := 8 + 2*size
		n, q, err := readULEB(body, p)
		if err != nil {
			return err
		}
		if n > 0 {
			e.ptrs = append(e.ptrs, ehPointer{q, c.lsdaEnc})
		}
	}
	return nil
}

// readPointer reads a 4- or 8-byte pointer, sign-extending 4 bytes (a
// pc-relative offset may be negative; ranges are far below 2 GiB).
func readPointer(b []byte, size int) uint64 {
	if size == 8 {
		return binary.LittleEndian.Uint64(b)
	}
	return uint64(int64(int32(binary.LittleEndian.Uint32(b))))
}

func readULEB(b []byte, p int) (v uint64, next int, err error) {
	for shift := uint(0); p < len(b) && shift < 64; p, shift = p+1, shift+7 {
		v |= uint64(b[p]&0x7f) << shift
		if b[p]&0x80 == 0 {
			return v, p + 1, nil
		}
	}
	return 0, 0, errors.New("bad LEB128")
}

func skipLEB(b []byte, p int) (int, error) {
	for ; p < len(b); p++ {
		if b[p]&0x80 == 0 {
			return p + 1, nil
		}
	}
	return 0, errors.New("unterminated LEB128")
}
