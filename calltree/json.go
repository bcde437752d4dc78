package calltree

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// WriteTree writes a tree as JSON: {"name", "value", "self", "children"},
// with "file" and "line" where known, "pruned" (frames held) on pruned nodes and, when diff, "total" (the
// compare side's value again), "base_total" and "base_self". Names are
// escaped by encoding/json, which also escapes <, > and & for HTML.
func WriteTree(w io.Writer, n *Node, diff bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	tw := &treeWriter{w: bw, diff: diff, names: make(map[string][]byte)}
	tw.node(n)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write tree: %w", err)
	}
	return nil
}

type treeWriter struct {
	w     *bufio.Writer
	diff  bool
	names map[string][]byte
	buf   []byte
}

func (t *treeWriter) node(n *Node) {
	b := t.buf[:0]
	b = append(b, `{"name":`...)
	q, ok := t.names[n.Name]
	if !ok {
		q, _ = json.Marshal(n.Name)
		t.names[n.Name] = q
	}
	b = append(b, q...)
	b = append(b, `,"value":`...)
	b = strconv.AppendInt(b, n.Value, 10)
	b = append(b, `,"self":`...)
	b = strconv.AppendInt(b, n.Self, 10)
	if t.diff {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, n.Value, 10)
		b = append(b, `,"base_total":`...)
		b = strconv.AppendInt(b, n.Base, 10)
		b = append(b, `,"base_self":`...)
		b = strconv.AppendInt(b, n.BaseSelf, 10)
	}
	if n.Pruned > 0 {
		b = append(b, `,"pruned":`...)
		b = strconv.AppendInt(b, n.Pruned, 10)
	}
	if n.File != "" {
		q, ok := t.names[n.File]
		if !ok {
			q, _ = json.Marshal(n.File)
			t.names[n.File] = q
		}
		b = append(b, `,"file":`...)
		b = append(b, q...)
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(n.Line), 10)
	}
	if len(n.Children) > 0 {
		b = append(b, `,"children":[`...)
		t.w.Write(b)
		for i, c := range n.Children {
			if i > 0 {
				t.w.WriteByte(',')
			}
			t.node(c)
		}
		t.w.WriteString("]}")
	} else {
		b = append(b, '}')
		t.w.Write(b)
	}
	t.buf = b
}
