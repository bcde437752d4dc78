package symbolizer

import (
	"bufio"
	"bytes"
	"cmp"
	"io"
	"slices"
	"strconv"
)

// Limits that keep a hostile perf map from using unbounded memory.
const (
	perfMapMaxName    = 1024
	perfMapMaxEntries = 4 << 20
	perfMapMaxBytes   = 512 << 20
)

// perfMap is a parsed /tmp/perf-PID.map.
type perfMap struct {
	syms *symTable
	// consumed counts the bytes of complete (newline-terminated) lines, where
	// reading more of a growing file resumes.
	consumed int64
}

// parsePerfMap reads "START SIZE NAME" lines (hex, "0x" optional). Later
// lines win over earlier ones at the same address (code regenerated in
// place). Lines that do not parse, or names with control bytes, are skipped;
// over-long names are cut.
func parsePerfMap(r io.Reader) *perfMap {
	type entry struct {
		symbol
		seq int
	}
	var entries []entry
	var consumed int64
	br := bufio.NewReaderSize(io.LimitReader(r, perfMapMaxBytes), 64<<10)
	for len(entries) < perfMapMaxEntries {
		line, raw, terminated, err := readLine(br, perfMapMaxName+64)
		if terminated {
			consumed += int64(raw)
		}
		if len(line) > 0 {
			if s, ok := parsePerfMapLine(line); ok {
				entries = append(entries, entry{s, len(entries)})
			}
		}
		if err != nil {
			break
		}
	}
	// Newest first among equal addresses, so newSymTable keeps it.
	slices.SortStableFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	syms := make([]symbol, 0, len(entries))
	for i := range entries {
		if i > 0 && entries[i].addr == entries[i-1].addr {
			continue
		}
		syms = append(syms, entries[i].symbol)
	}
	return &perfMap{syms: newSymTable(syms, false), consumed: consumed}
}

// readLine returns the next line without its newline, cut at max bytes (the
// rest of a long line is discarded), the bytes it took from br, and whether
// it ended with a newline.
func readLine(br *bufio.Reader, max int) (line []byte, raw int, terminated bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		raw += len(chunk)
		if len(line) < max {
			room := min(max-len(line), len(chunk))
			line = append(line, chunk[:room]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		terminated = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		return bytes.TrimRight(line, "\r\n"), raw, terminated, err
	}
}

func parsePerfMapLine(line []byte) (symbol, bool) {
	f1 := bytes.IndexByte(line, ' ')
	if f1 <= 0 {
		return symbol{}, false
	}
	rest := line[f1+1:]
	f2 := bytes.IndexByte(rest, ' ')
	if f2 <= 0 {
		return symbol{}, false
	}
	start, ok1 := parseHex(line[:f1])
	size, ok2 := parseHex(rest[:f2])
	name := bytes.TrimSpace(rest[f2+1:])
	if !ok1 || !ok2 || size == 0 || len(name) == 0 || start+size < start {
		return symbol{}, false
	}
	if len(name) > perfMapMaxName {
		name = name[:perfMapMaxName]
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return symbol{}, false
		}
	}
	return symbol{addr: start, size: size, name: append([]byte(nil), name...)}, true
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
	}
	v, err := strconv.ParseUint(string(b), 16, 64)
	return v, err == nil
}
