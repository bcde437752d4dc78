package calltree

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// A name's file:line is the line holding most of its value: main calls
// work from line 10 (70 samples) and other from line 12 (30); frames
// without lines carry none.
func TestTreeLines(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main10 := b.Frame(capture.Frame{Name: "main", Module: "/bin/app", Offset: 0x10, File: "app.c", Line: 10})
	main12 := b.Frame(capture.Frame{Name: "main", Module: "/bin/app", Offset: 0x20, File: "app.c", Line: 12})
	work := b.Frame(capture.Frame{Name: "work", Module: "/bin/app", Offset: 0x30, File: "work.c", Line: 5})
	other := b.Frame(capture.Frame{Name: "other", Module: "/lib/libx.so", Offset: 0x40})
	b.Add(capture.Event{Value: 70, Stack: b.Stack([]uint32{app, main10, work})})
	b.Add(capture.Event{Value: 30, Stack: b.Stack([]uint32{app, main12, other})})
	c := b.Capture()

	s := NewSet()
	s.Add(c, capture.Query{}, false, false)
	root := s.Tree("all", 100)
	var buf bytes.Buffer
	if err := WriteTree(&buf, root, false); err != nil {
		t.Fatal(err)
	}
	type node struct {
		Name     string
		File     *string
		Line     int
		Children []node
	}
	var doc node
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	got := map[string]string{}
	var walk func(n node)
	walk = func(n node) {
		if n.File != nil {
			got[n.Name] = *n.File + ":" + strconv.Itoa(n.Line)
		} else {
			got[n.Name] = ""
		}
		for _, k := range n.Children {
			walk(k)
		}
	}
	walk(doc)
	want := map[string]string{"all": "", "app": "", "main": "app.c:10", "work": "work.c:5", "other": ""}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q (tree %s)", name, got[name], w, buf.Bytes())
		}
	}
	for _, f := range s.Functions() {
		loc := ""
		if f.File != "" {
			loc = f.File + ":" + strconv.Itoa(f.Line)
		}
		if loc != want[f.Name] {
			t.Errorf("function %s: %q, want %q", f.Name, loc, want[f.Name])
		}
	}
}
