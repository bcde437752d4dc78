package unwind

import (
	"encoding/binary"
	"testing"
)

// jitEhFrame is the eh_frame a JIT gives for 14 bytes of frameless code at
// addr (sub $0x28,%rsp; loop; add $0x28,%rsp; ret), laid out at addr+16:
// a CIE (CFA rsp+8, return address at CFA-8) and an FDE (rsp+48 after 4
// bytes, rsp+8 after 9 more), pc_begin pc-relative.
func jitEhFrame(addr uint64) JITCode {
	eh := []byte{
		20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x1b,
		0x0c, 7, 8, 0x90, 1, 0, 0,
		20, 0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 0,
		0x44, 0x0e, 48, 0x49, 0x0e, 8, 0,
		0, 0, 0, 0,
	}
	ehAddr := addr + 16
	binary.LittleEndian.PutUint32(eh[32:], uint32(int32(int64(addr)-int64(ehAddr+32))))
	return JITCode{Addr: addr, Size: 14, EhFrame: eh, EhAddr: ehAddr}
}

func TestBuildCompactJIT(t *testing.T) {
	amd64, _ := ArchFor("amd64")
	a, b := uint64(0x7f12_3456_1000), uint64(0x7f12_3457_0000)
	outside := jitEhFrame(0x7f12_3458_0000)
	outside.Addr += 0x100 // the FDE is not in its code's range: left out
	tab, err := BuildCompactJIT(amd64, []JITCode{jitEhFrame(b), jitEhFrame(a), outside, {Addr: 1, Size: 1, EhFrame: []byte{1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Base != a {
		t.Errorf("base %#x, want %#x", tab.Base, a)
	}
	entry := Rule{CFA: CFASP, CFAOffset: 8, RA: RAAtCFA, RAOffset: -8}
	body := Rule{CFA: CFASP, CFAOffset: 48, RA: RAAtCFA, RAOffset: -8}
	for _, c := range []struct {
		pc   uint64
		want Rule
	}{
		{a - 1, Rule{}}, {a, entry}, {a + 3, entry}, {a + 4, body}, {a + 12, body}, {a + 13, entry},
		{a + 14, Rule{}}, {a + 0x100, Rule{}},
		{b, entry}, {b + 8, body}, {b + 13, entry}, {b + 14, Rule{}},
		{outside.Addr - 0x100 + 4, Rule{}},
	} {
		if got := tab.Lookup(c.pc); got != c.want {
			t.Errorf("rule at %#x: %v, want %v", c.pc, got, c.want)
		}
	}
	if tab.Unsupported != 0 {
		t.Errorf("%d unsupported entries", tab.Unsupported)
	}

	if _, err := BuildCompactJIT(amd64, []JITCode{{Addr: a, Size: 14, EhFrame: []byte{4, 0, 0, 0, 9, 9, 9}, EhAddr: a + 16}}); err == nil {
		t.Error("no error for code whose only eh_frame is garbage")
	}
	if _, err := BuildCompactJIT(amd64, nil); err == nil {
		t.Error("no error for no code")
	}
	// Code more than 4 GiB apart does not fit one table's offsets.
	if _, err := BuildCompactJIT(amd64, []JITCode{jitEhFrame(a), jitEhFrame(a + 5<<30)}); err == nil {
		t.Error("no error for code 5 GiB apart")
	}
}

func FuzzBuildCompactJIT(f *testing.F) {
	amd64, _ := ArchFor("amd64")
	f.Add(jitEhFrame(0x1000).EhFrame)
	f.Fuzz(func(t *testing.T, eh []byte) {
		tab, err := BuildCompactJIT(amd64, []JITCode{{Addr: 0x1000, Size: 64, EhFrame: eh, EhAddr: 0x1040}})
		if err == nil && (len(tab.Entries) == 0 || tab.Entries[len(tab.Entries)-1].Rule != 0) {
			t.Fatalf("table without its end entry: %+v", tab.Entries)
		}
	})
}
