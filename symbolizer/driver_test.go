package symbolizer

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSymbolizeDriver is the scorch side of scripts/bench-symbolizer.sh:
// like `addr2line -f -e FILE`, it reads ELF addresses (hex) from stdin and
// prints one function name per line ("??" when unknown). It runs only when
// SCORCH_SYMBOLIZE_ELF names the file. With SCORCH_SYMBOLIZE_LINES=1 it
// reads line tables and inlined calls too and prints, like addr2line -a -f
// -i, the address then each frame innermost first as "name", "file:line".
func TestSymbolizeDriver(t *testing.T) {
	path := os.Getenv("SCORCH_SYMBOLIZE_ELF")
	if path == "" {
		t.Skip("driver for scripts/bench-symbolizer.sh; set SCORCH_SYMBOLIZE_ELF")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := os.Getenv("SCORCH_SYMBOLIZE_LINES") == "1"
	s := New(Options{Lines: lines})
	loc := debugLocator{path: path, open: func(p string) (*os.File, error) { return os.Open(p) }}
	m := s.loadModule(f, loc)
	s.ensureDWARF(m, f, loc)
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	defer out.Flush()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		a, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "0x"), 16, 64)
		if err != nil {
			fmt.Fprintln(out, "??")
			continue
		}
		name := "??"
		if lines {
			fmt.Fprintf(out, "0x%016x\n", a)
			i, ok := m.table.lookup(a)
			if !ok {
				out.WriteString("??\n??:0\n")
				continue
			}
			fr := Frame{Offset: a}
			fr.setName(m.table.name(i))
			for _, f := range m.nativeFrames(fr, a) {
				out.WriteString(f.Name)
				out.WriteByte('\n')
				if f.File == "" {
					out.WriteString("??:0\n")
					continue
				}
				out.WriteString(f.File)
				out.WriteByte(':')
				out.WriteString(strconv.Itoa(f.Line))
				out.WriteByte('\n')
			}
			continue
		}
		if i, ok := m.table.lookup(a); ok {
			var fr Frame
			fr.setName(m.table.name(i))
			name = fr.Name
		}
		out.WriteString(name)
		out.WriteByte('\n')
	}
}
