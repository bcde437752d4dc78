// Package formats writes captures as folded stacks, pprof and speedscope
// files, and imports capture, pprof, perf script and folded files into
// captures.
package formats

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unsafe"

	"github.com/scorch-dev/scorch/capture"
)

// WriteFolded writes the selected events as folded stacks: one line per
// stack, frames root first separated by ';', a space and the value. This is
// what flamegraph.pl reads.
func WriteFolded(w io.Writer, c *capture.Capture, q capture.Query) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	names := make([]string, len(c.Frames))
	for i := range c.Frames {
		names[i] = c.Frames[i].FoldedName()
	}
	var line []byte
	for _, sv := range c.Aggregate(q) {
		if sv.Value <= 0 {
			continue
		}
		line = line[:0]
		for i, f := range c.Stacks[sv.Stack] {
			if i > 0 {
				line = append(line, ';')
			}
			if int(f) < len(names) {
				line = append(line, names[f]...)
			}
		}
		if len(line) == 0 {
			continue
		}
		line = append(line, ' ')
		line = strconv.AppendInt(line, sv.Value, 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("write folded: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write folded: %w", err)
	}
	return nil
}

// parseFoldedFrame turns a folded frame name back into a frame: the kind
// from its suffix, brackets and "--" as synthetic frames.
func parseFoldedFrame(name string, first, chainEnd bool) capture.Frame {
	f := capture.Frame{Name: name, Kind: capture.KindUser}
	if strings.HasSuffix(f.Name, "_[w]") {
		f.Name, f.Waker = strings.TrimSuffix(f.Name, "_[w]"), true
	}
	switch {
	case strings.HasSuffix(f.Name, "_[k]"):
		f.Name, f.Kind = strings.TrimSuffix(f.Name, "_[k]"), capture.KindKernel
	case strings.HasSuffix(f.Name, "_[j]"):
		f.Name, f.Kind = strings.TrimSuffix(f.Name, "_[j]"), capture.KindJIT
	case strings.HasSuffix(f.Name, "_[i]"):
		f.Name, f.Kind = strings.TrimSuffix(f.Name, "_[i]"), capture.KindInlined
	case first:
		f.Kind = capture.KindProcess
	case f.Name == capture.FrameSeparator || (strings.HasPrefix(f.Name, "[") && strings.HasSuffix(f.Name, "]") &&
		!strings.Contains(f.Name, ".")):
		// [unknown], [blocked], ...; "[libc.so.6]" (a module without
		// symbols, stackcollapse-perf's spelling) stays a user frame.
		f.Kind = capture.KindSynthetic
	case chainEnd:
		// The last frame of an off-wake chain is the waker's process name.
		f.Kind = capture.KindProcess
	}
	if f.Kind == capture.KindSynthetic {
		f.Waker = false
	}
	return f
}

// readFolded imports folded stacks. Values may be fractional (rounded);
// identical stacks may repeat and are summed.
func readFolded(src *lines, opts ImportOptions, rep *ImportReport) (*capture.Capture, error) {
	typ := opts.Type
	if typ == "" {
		typ = capture.CPU
	}
	b := capture.NewBuilder(capture.Meta{Type: typ, Source: "folded"})
	var ids []uint32
	// Frames by their text and place: a line's names are views of the
	// line, copied only when a frame is first seen.
	type foldedKey struct {
		name        string
		first, last bool
	}
	cache := make(map[foldedKey]uint32)
	sums := make(map[uint32]int64)
	var order []uint32
	lineNo := 0
	for {
		line, ok := next(src)
		if !ok {
			break
		}
		lineNo++
		line = bytes.TrimRight(line, "\r \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		rep.Lines++
		stack, v, ok := splitFolded(line)
		if !ok {
			rep.bad(lineNo, line)
			continue
		}
		ids = ids[:0]
		chain := false
		for i := 0; stack != ""; i++ {
			name, rest, more := strings.Cut(stack, ";")
			stack = rest
			if name == "" {
				name = capture.FrameUnknown
			}
			if name == capture.FrameSeparator {
				chain = true
			}
			k := foldedKey{name, i == 0, chain && !more}
			id, ok := cache[k]
			if !ok {
				k.name = strings.Clone(name)
				id = b.Frame(parseFoldedFrame(k.name, k.first, k.last))
				cache[k] = id
			}
			ids = append(ids, id)
			if !more {
				break
			}
		}
		st := b.Stack(ids)
		if _, seen := sums[st]; !seen {
			order = append(order, st)
		}
		sums[st] += v
	}
	if err := src.failed(); err != nil {
		return nil, fmt.Errorf("read folded input: %w", err)
	}
	if rep.Lines == rep.BadLines {
		return nil, rep.nothing("folded")
	}
	b.GrowEvents(len(order))
	for _, st := range order {
		b.Add(capture.Event{Stack: st, Value: sums[st], Value2: 1})
	}
	c := b.Capture()
	c.Meta.Stats.BadInputLines = uint64(rep.BadLines)
	return c, nil
}

// splitFolded splits "a;b;c 123" into the stack and its value.
func splitFolded(line []byte) (string, int64, bool) {
	sp := bytes.LastIndexAny(line, " \t")
	if sp <= 0 {
		return "", 0, false
	}
	// Views of the line, which the caller copies from what it keeps.
	num := unsafeString(line[sp+1:])
	stack := unsafeString(bytes.TrimRight(line[:sp], " \t"))
	if stack == "" {
		return "", 0, false
	}
	if v, err := strconv.ParseInt(num, 10, 64); err == nil && v >= 0 {
		return stack, v, true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f > 1<<62 || strings.ContainsAny(num, "eExXpPnN+-") {
		return "", 0, false
	}
	return stack, int64(f + 0.5), true
}

// unsafeString is b as a string without a copy: valid only while b is not
// written, so nothing keeps it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
