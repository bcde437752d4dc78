package profiler

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// CPython's -X perf trampolines (3.12 and later, x86-64) are copies of one
// function in anonymous memory, written before the memory is made
// executable: `sub $8,%rsp; call *%rcx; add $8,%rsp; ret`, with no frame
// record and no CFI, so neither frame pointers nor any file's table get
// past them, and every Python stack would end at its first trampoline.
// Their code is fixed, so their rules are too: the return address is at
// sp+8 while the call runs. (arm64's trampoline saves a frame record
// {x29, x30} first: frame pointers walk through it.)
var pyTrampoline = []byte{0x48, 0x83, 0xec, 0x08, 0xff, 0xd1, 0x48, 0x83, 0xc4, 0x08, 0xc3}

// endbr64 starts it in builds with CET branch protection.
var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

// pyArena is the size of CPython's trampoline arenas: the copies start
// again at each (adjacent arenas may be one mapping).
const pyArena = 16 * 4096

// trampolineTable returns the table of an anonymous executable mapping of
// process pid that holds CPython's trampolines, or nil. Offsets are from
// the mapping's start.
func trampolineTable(pid uint32, m symbolizer.ExecMapping) *unwind.CompactTable {
	if m.Path != "" || m.End <= m.Start || m.End-m.Start > 1<<30 {
		return nil
	}
	head := make([]byte, 64)
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil
	}
	n, _ := f.ReadAt(head, int64(m.Start))
	f.Close()
	head = head[:n]
	code := pyTrampoline
	if bytes.HasPrefix(head, endbr64) {
		code = append(append([]byte(nil), endbr64...), pyTrampoline...)
	}
	if !bytes.HasPrefix(head, code) {
		return nil
	}
	// The stride: where the second copy starts (3.12 packs them, 3.13
	// aligns them to 16 bytes).
	stride := 0
	for s := len(code); s+len(code) <= len(head); s++ {
		if bytes.Equal(head[s:s+len(code)], code) {
			stride = s
			break
		}
	}
	if stride == 0 {
		return nil
	}
	return buildTrampolineTable(m.End-m.Start, len(code)-len(pyTrampoline), stride)
}

// buildTrampolineTable lays out the rules of copies of the trampoline every
// stride bytes from the start of each arena of a mapping of size bytes; pre
// is the length of the endbr64 before the code.
func buildTrampolineTable(size uint64, pre, stride int) *unwind.CompactTable {
	entry := unwind.Rule{CFA: unwind.CFASP, CFAOffset: 8, RA: unwind.RAAtCFA, RAOffset: -8}
	inCall := unwind.Rule{CFA: unwind.CFASP, CFAOffset: 16, RA: unwind.RAAtCFA, RAOffset: -8}
	x86, _ := unwind.ArchFor("amd64") // the trampoline is x86-64 code
	t := &unwind.CompactTable{Arch: x86, Rules: []unwind.Rule{{}, entry, inCall}}
	arena := uint64(pyArena)
	if size%arena != 0 {
		arena = size
	}
	codeLen := uint64(pre + len(pyTrampoline))
	for a := uint64(0); a < size; a += arena {
		for c := a; c+codeLen <= a+arena; c += uint64(stride) {
			t.Entries = append(t.Entries,
				unwind.Entry{PC: uint32(c), Rule: 1},
				unwind.Entry{PC: uint32(c) + uint32(pre) + 4, Rule: 2},  // after sub $8,%rsp
				unwind.Entry{PC: uint32(c) + uint32(pre) + 10, Rule: 1}, // after add $8,%rsp
				unwind.Entry{PC: uint32(c + codeLen), Rule: 0})
		}
	}
	// Drop the rule-0 entries that the next copy's start overrides.
	out := t.Entries[:0]
	for i, e := range t.Entries {
		if e.Rule == 0 && i+1 < len(t.Entries) && t.Entries[i+1].PC == e.PC {
			continue
		}
		out = append(out, e)
	}
	t.Entries = out
	return t
}

// trampolineResolver adds CPython's perf trampolines (anonymous code whose
// rules scorch knows) to a snapshot's modules for the user-space unwinder:
// a sample taken while its process's tables were loading, which carries a
// stack copy, is unwound through them as the BPF walker does once the
// tables are in (frame pointers cannot: the trampoline keeps none).
type trampolineResolver struct {
	*symbolizer.Process
	tr *procTrampolines
}

// procTrampolines are a snapshot's anonymous executable mappings and the
// trampoline tables of those that hold trampolines (nil: not one).
type procTrampolines struct {
	pid  uint32
	maps []symbolizer.ExecMapping
	tabs map[uint64]*unwind.CompactTable // by mapping start
	read time.Time
}

// trampolineReread bounds how often a snapshot's mappings are listed again
// for a pc in none of them (CPython maps trampolines as functions are
// first called).
const trampolineReread = time.Second

func (r trampolineResolver) CompactFor(pc uint64) (*unwind.CompactTable, uint64, bool) {
	tr := r.tr
	find := func() int {
		for i, m := range tr.maps {
			if pc >= m.Start && pc < m.End {
				return i
			}
		}
		return -1
	}
	i := find()
	if i < 0 && time.Since(tr.read) >= trampolineReread {
		tr.read, tr.maps = time.Now(), tr.maps[:0]
		for _, m := range r.ExecMappings() {
			if m.Key == "" && m.Path == "" {
				tr.maps = append(tr.maps, m)
			}
		}
		i = find()
	}
	if i < 0 {
		return nil, 0, false
	}
	m := tr.maps[i]
	tab, ok := tr.tabs[m.Start]
	if !ok {
		tab = trampolineTable(tr.pid, m)
		tr.tabs[m.Start] = tab
	}
	return tab, m.Start, tab != nil
}

// resolver is what the user-space unwinder resolves pcs of snap with.
func (t *stacks) resolver(snap *symbolizer.Process, pid uint32) unwind.Resolver {
	if t.tramps == nil {
		t.tramps = make(map[*symbolizer.Process]*procTrampolines)
	}
	tr := t.tramps[snap]
	if tr == nil {
		tr = &procTrampolines{pid: pid, tabs: make(map[uint64]*unwind.CompactTable)}
		t.tramps[snap] = tr
	}
	return trampolineResolver{Process: snap, tr: tr}
}
