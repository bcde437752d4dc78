package symbolizer

import (
	"debug/elf"
	"os"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/mapped"
)

func TestZZDwarfPieces(t *testing.T) {
	p := "/usr/lib/debug/.build-id/93/ac61ec5a8eb1396f9fbd350e3169a558528a40.debug"
	osf, _ := os.Open(p)
	f, _ := elf.NewFile(osf)
	mf, _ := mapped.Map(osf)
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_COMPRESSED != 0 {
			t0 := time.Now()
			b, _ := sectionData(s)
			t.Logf("%s %d -> %d in %v", s.Name, s.FileSize, len(b), time.Since(t0))
		}
	}
	t0 := time.Now()
	ds, full, heap, mn, err := openDWARFIn(f, mf)
	t.Logf("open %v %v", time.Since(t0), err)
	t0 = time.Now()
	md, err := newModuleDWARF(ds, full, mf, heap, mn)
	t.Logf("index %v %v units=%d ranges=%d", time.Since(t0), err, len(md.units), len(md.ranges))
	t0 = time.Now()
	md.loadAll()
	t.Logf("loadAll %v", time.Since(t0))
}
