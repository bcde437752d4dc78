package profiler

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"runtime"

	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// jitTable is the compact table of the JIT code in one anonymous mapping
// whose jitdump gave unwinding records, for the BPF walker: a mapping of
// [start, end), the range that code covers, with the table's Base as
// absolute address.
type jitTable struct {
	tab        *unwind.CompactTable
	key        string // per process and content: new code makes a new table
	start, end uint64
}

// buildJITTable builds the table of the JIT code of pid's anonymous
// mapping m, or nil when its jitdump gives that code no CFI. Code loaded
// later outside [start, end) is an unmapped pc for the walker, which makes
// the process's tables reload (rate limited) and this table be rebuilt.
func buildJITTable(pid uint32, snap *symbolizer.Process, m symbolizer.ExecMapping) *jitTable {
	code := snap.JITCode(m.Start, m.End)
	if len(code) == 0 {
		return nil
	}
	arch, ok := unwind.ArchFor(runtime.GOARCH)
	if !ok {
		return nil
	}
	in := make([]unwind.JITCode, len(code))
	h := fnv.New64a()
	end := uint64(0)
	for i, c := range code {
		in[i] = unwind.JITCode{Addr: c.Addr, Size: c.Size, EhFrame: c.EhFrame, EhAddr: c.EhAddr}
		h.Write(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, c.Addr), c.Size))
		h.Write(c.EhFrame)
		end = max(end, c.Addr+c.Size)
	}
	tab, err := unwind.BuildCompactJIT(arch, in)
	if err != nil || len(tab.Entries) < 2 {
		return nil
	}
	return &jitTable{tab: tab, key: fmt.Sprintf("jit:%d:%x-%x:%x", pid, tab.Base, end, h.Sum64()), start: tab.Base, end: end}
}
