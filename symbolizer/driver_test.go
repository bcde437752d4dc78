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
// SCORCH_SYMBOLIZE_ELF names the file.
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
	s := New(Options{})
	m := s.loadModule(f, debugLocator{path: path, open: func(p string) (*os.File, error) { return os.Open(p) }})
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
		if i, ok := m.table.lookup(a); ok {
			var fr Frame
			fr.setName(m.table.name(i))
			name = fr.Name
		}
		out.WriteString(name)
		out.WriteByte('\n')
	}
}
