package formats

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// mappedCapture is a capture of one process with its real mappings: the
// program at 0x555555555000 (file offset 0x1000, ELF address 0x1000) and
// libc at 0x7ffff7dab000 (offset 0x26000); a frame of each, and a frame of
// a process without mappings.
func mappedCapture() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: time.Second, Timestamps: true})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main", Module: "/usr/bin/app", BuildID: "aa11", Offset: 0x1234, File: "app.c", Line: 7})
	memset := b.Frame(capture.Frame{Name: "memset", Module: "/usr/lib/libc.so.6", BuildID: "bb22", Offset: 0x27010})
	st := b.Stack([]uint32{app, main, memset})
	b.Mapping(capture.Mapping{PID: 10, Start: 0x555555555000, Limit: 0x555555556000, Offset: 0x1000, VAddr: 0x1000, Module: "/usr/bin/app", BuildID: "aa11"})
	b.Mapping(capture.Mapping{PID: 10, Start: 0x7ffff7dab000, Limit: 0x7ffff7f01000, Offset: 0x26000, VAddr: 0x26000, Module: "/usr/lib/libc.so.6", BuildID: "bb22"})
	b.Mapping(capture.Mapping{PID: 10, Start: 0x7ffff7dab000, Limit: 0x7ffff7f01000, Offset: 0x26000, VAddr: 0x26000, Module: "/usr/lib/libc.so.6", BuildID: "bb22"})
	b.Add(capture.Event{Time: 1, Value: 3, Stack: st, PID: 10, TID: 10})
	b.Add(capture.Event{Time: 2, Value: 1, Stack: st, PID: 20, TID: 20})
	return b.Capture()
}

// The capture file keeps the mappings (testdata/v1-mappings.scorch was
// written by this version; SCORCH_UPDATE=1 rewrites it), a file written
// before them still reads, and pprof gives the process its own mappings
// with addresses where it ran, the other process the module-relative ones.
func TestCaptureFileMappings(t *testing.T) {
	const golden = "testdata/v1-mappings.scorch"
	if os.Getenv("SCORCH_UPDATE") != "" {
		var buf bytes.Buffer
		if err := capture.Write(&buf, mappedCapture()); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := capture.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mappings) != 2 || c.Mappings[1].Offset != 0x26000 || c.Mappings[0].PID != 10 {
		t.Fatalf("mappings read back: %+v", c.Mappings)
	}
	p := Profile(c, capture.Query{})
	want := map[uint32]map[string]uint64{
		10: {"main": 0x555555555234, "memset": 0x7ffff7dac010},
		20: {"main": 0x100000000 + 0x1234, "memset": 0x200000000 + 0x27010},
	}
	for _, s := range p.Sample {
		pid := uint32(s.NumLabel["pid"][0])
		for _, l := range s.Location {
			name := l.Line[0].Function.Name
			if l.Address != want[pid][name] {
				t.Errorf("pid %d: %s at %#x, want %#x (mapping %+v)", pid, name, l.Address, want[pid][name], l.Mapping)
			}
		}
	}
	for _, m := range p.Mapping {
		if m.File == "/usr/bin/app" && m.Start == 0x555555555000 && (m.Limit != 0x555555556000 || m.Offset != 0x1000 || m.BuildID != "aa11" || !m.HasLineNumbers) {
			t.Errorf("the program's mapping: %+v", m)
		}
		if m.File == "/usr/lib/libc.so.6" && (m.HasLineNumbers || m.HasFilenames || !m.HasFunctions) {
			t.Errorf("libc's mapping claims what its frames lack: %+v", m)
		}
	}
	if err := p.CheckValid(); err != nil {
		t.Error(err)
	}

	old, err := os.Open("../capture/testdata/v1-extra-stats.scorch")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oc, err := capture.Read(old)
	if err != nil {
		t.Fatalf("a capture file from before the mappings: %v", err)
	}
	if len(oc.Mappings) != 0 {
		t.Errorf("mappings from nowhere: %+v", oc.Mappings)
	}
	if err := Profile(oc, capture.Query{}).CheckValid(); err != nil {
		t.Error(err)
	}
}
