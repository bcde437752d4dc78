package symbolizer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"
)

// jitWriter builds jitdump files as a JIT writes them.
type jitWriter struct {
	o   binary.ByteOrder
	buf bytes.Buffer
}

func newJitWriter(o binary.ByteOrder) *jitWriter {
	w := &jitWriter{o: o}
	h := make([]byte, jitHeaderSize)
	o.PutUint32(h[0:], jitMagic)
	o.PutUint32(h[4:], 1)
	o.PutUint32(h[8:], jitHeaderSize)
	o.PutUint32(h[12:], 62) // EM_X86_64
	o.PutUint32(h[20:], 1234)
	w.buf.Write(h)
	return w
}

func (w *jitWriter) record(id uint32, body []byte) {
	h := make([]byte, jitRecordHeader)
	w.o.PutUint32(h[0:], id)
	w.o.PutUint32(h[4:], uint32(jitRecordHeader+len(body)))
	w.buf.Write(h)
	w.buf.Write(body)
}

func (w *jitWriter) load(addr, size uint64, name string) {
	b := make([]byte, 40)
	w.o.PutUint64(b[8:], addr)
	w.o.PutUint64(b[16:], addr)
	w.o.PutUint64(b[24:], size)
	b = append(append(b, name...), 0)
	b = append(b, make([]byte, size)...) // the code
	w.record(jitCodeLoad, b)
}

func (w *jitWriter) move(old, nu, size uint64) {
	b := make([]byte, 48)
	w.o.PutUint64(b[8:], nu)
	w.o.PutUint64(b[16:], old)
	w.o.PutUint64(b[24:], nu)
	w.o.PutUint64(b[32:], size)
	w.record(jitCodeMove, b)
}

type testLine struct {
	addr uint64
	line int
	file string
}

func (w *jitWriter) debug(addr uint64, lines ...testLine) {
	b := make([]byte, 16)
	w.o.PutUint64(b, addr)
	w.o.PutUint64(b[8:], uint64(len(lines)))
	for _, l := range lines {
		e := make([]byte, 16)
		w.o.PutUint64(e, l.addr)
		w.o.PutUint32(e[8:], uint32(l.line))
		b = append(append(append(b, e...), l.file...), 0)
	}
	w.record(jitDebugInfo, b)
}

func (w *jitWriter) unwinding(data []byte) {
	b := make([]byte, 24)
	w.o.PutUint64(b, uint64(len(data)))
	w.o.PutUint64(b[16:], uint64(len(data)))
	w.record(jitUnwindingInfo, append(b, data...))
}

func describe(d *jitDump, addr uint64) string {
	f, l := d.lookup(addr)
	switch {
	case f == nil:
		return ""
	case l == nil:
		return f.name
	}
	return fmt.Sprintf("%s %s:%d", f.name, l.file, l.line)
}

func TestParseJitdump(t *testing.T) {
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(fmt.Sprint(o), func(t *testing.T) {
			w := newJitWriter(o)
			w.debug(0x1000, testLine{0x1000, 10, "app.py"}, testLine{0x1010, 12, "\xff"}, testLine{0x1020, 20, "lib.py"})
			w.load(0x1000, 0x40, "py::fib:app.py")
			w.unwinding([]byte{1, 2, 3, 4, 5, 6, 7, 8})
			w.load(0x2000, 0x1c, "no_lines")
			w.load(0x2000, 0x10, "regenerated") // newest at an address wins
			w.move(0x1000, 0x3000, 0x40)
			w.record(jitCodeClose, nil)
			w.record(99, []byte("a record of an unknown kind"))
			d, err := parseJitdump(bytes.NewReader(w.buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				addr uint64
				want string
			}{
				{0x0fff, ""},
				{0x1000, "py::fib:app.py app.py:10"},
				{0x1014, "py::fib:app.py app.py:12"},
				{0x103f, "py::fib:app.py lib.py:20"},
				{0x1040, ""},
				{0x2008, "regenerated"},
				{0x2018, ""},
				{0x3015, "py::fib:app.py app.py:12"},
			} {
				if got := describe(d, c.addr); got != c.want {
					t.Errorf("%#x: %q, want %q", c.addr, got, c.want)
				}
			}
			if d.consumed != int64(w.buf.Len()) {
				t.Errorf("consumed %d of %d", d.consumed, w.buf.Len())
			}
			// The unwinding record is the next load's, laid out after its
			// code, 8-byte aligned.
			for _, f := range d.funcs {
				want := f.name == "no_lines"
				if got := f.ehFrame != nil; got != want || want && (f.ehAddr != 0x2020 || !bytes.Equal(f.ehFrame, []byte{1, 2, 3, 4, 5, 6, 7, 8})) {
					t.Errorf("%s at %#x: eh_frame %v at %#x", f.name, f.addr, f.ehFrame, f.ehAddr)
				}
			}
		})
	}
}

// The JIT is still writing the last record: what is complete is read, the
// rest once it is there.
func TestJitdumpTruncated(t *testing.T) {
	w := newJitWriter(binary.LittleEndian)
	w.load(0x1000, 0x40, "first")
	done := w.buf.Len()
	w.debug(0x2000, testLine{0x2000, 7, "second.js"})
	w.load(0x2000, 0x40, "second")
	full := w.buf.Bytes()
	for cut := done; cut < len(full); cut++ {
		d, err := parseJitdump(bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if describe(d, 0x1000) != "first" || describe(d, 0x2000) != "" {
			t.Fatalf("cut at %d: %q %q", cut, describe(d, 0x1000), describe(d, 0x2000))
		}
		d.more(bytes.NewReader(full[d.consumed:]))
		if got := describe(d, 0x2004); got != "second second.js:7" {
			t.Fatalf("cut at %d, then read on: %q", cut, got)
		}
	}
	for _, bad := range [][]byte{nil, full[:20], []byte("this is not a jitdump at all, really!!!!!!")} {
		if _, err := parseJitdump(bytes.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Sizes that claim more than is there, or less than a record header, stop
// the reading without reading beyond.
func TestJitdumpBadSizes(t *testing.T) {
	w := newJitWriter(binary.LittleEndian)
	w.load(0x1000, 0x40, "ok")
	h := make([]byte, jitRecordHeader)
	binary.LittleEndian.PutUint32(h[4:], 3) // smaller than its own header
	w.buf.Write(h)
	w.load(0x2000, 0x40, "after_garbage")
	d, err := parseJitdump(bytes.NewReader(w.buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if describe(d, 0x1000) != "ok" || describe(d, 0x2000) != "" || d.consumed != -1 {
		t.Errorf("%q %q consumed %d", describe(d, 0x1000), describe(d, 0x2000), d.consumed)
	}

	// A debug record claiming 2^60 entries and a load whose name runs off its end.
	w = newJitWriter(binary.LittleEndian)
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, 0x1000)
	binary.LittleEndian.PutUint64(b[8:], 1<<60)
	w.record(jitDebugInfo, b)
	w.record(jitCodeLoad, append(make([]byte, 40), "unterminated"...))
	w.load(0x1000, 0x10, "fine")
	d, err = parseJitdump(bytes.NewReader(w.buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(d, 0x1000); got != "fine" {
		t.Errorf("got %q", got)
	}
}

// A process's jitdump names its JIT code, ahead of its perf map, and is read
// again when an address is not covered.
func TestJitdumpProcess(t *testing.T) {
	old := perfMapRecheck
	perfMapRecheck = 0
	t.Cleanup(func() { perfMapRecheck = old })

	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	dump := fmt.Sprintf("/tmp/jit-%d.dump", pid)
	pmap := fmt.Sprintf("/tmp/perf-%d.map", pid)
	t.Cleanup(func() { os.Remove(dump); os.Remove(pmap) })
	writeFile(t, pmap, "7ff0aa000000 40 from_perf_map\n7ff0aa001000 40 only_in_perf_map\n")
	w := newJitWriter(binary.LittleEndian)
	w.debug(0x7ff0aa000000, testLine{0x7ff0aa000000, 3, "/app/fib.js"})
	w.load(0x7ff0aa000000, 0x40, "_ZN6shapes5scaleIiEET_S1_")
	writeFile(t, dump, w.buf.String())

	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fr := s.User(p, 0x7ff0aa000010, true)[0]
	if fr.Name != "shapes::scale<int>" || !fr.JIT || fr.Module != dump || fr.File != "/app/fib.js" || fr.Line != 3 {
		t.Errorf("JIT frame %+v", fr)
	}
	if fr := s.User(p, 0x7ff0aa001004, false)[0]; fr.Name != "only_in_perf_map" {
		t.Errorf("perf map not used where the jitdump has nothing: %+v", fr)
	}

	// Appended code is found, and a half-written record is read once complete.
	before := w.buf.Len()
	w.load(0x7ff0aa002000, 0x20, "later")
	w.load(0x7ff0aa003000, 0x20, "written_in_two_steps")
	f, err := os.OpenFile(dump, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all := w.buf.Bytes()
	half := before + (len(all)-before)*3/4
	if _, err := f.Write(all[before:half]); err != nil {
		t.Fatal(err)
	}
	if fr := s.User(p, 0x7ff0aa002004, false)[0]; fr.Name != "later" || fr.File != "" {
		t.Errorf("appended code: %+v", fr)
	}
	if fr := s.User(p, 0x7ff0aa003004, false)[0]; fr.JIT {
		t.Errorf("half-written record used: %+v", fr)
	}
	if _, err := f.Write(all[half:]); err != nil {
		t.Fatal(err)
	}
	if fr := s.User(p, 0x7ff0aa003004, false)[0]; fr.Name != "written_in_two_steps" {
		t.Errorf("completed record: %+v", fr)
	}
}

// A jitdump owned by another user is not trusted.
func TestJitdumpOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	old := perfMapRecheck
	perfMapRecheck = 0
	t.Cleanup(func() { perfMapRecheck = old })
	cmd := startSleeper(t)
	dump := fmt.Sprintf("/tmp/jit-%d.dump", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(dump) })
	w := newJitWriter(binary.LittleEndian)
	w.load(0x7ff0aa000000, 0x40, "planted")
	writeFile(t, dump, w.buf.String())
	if err := os.Chown(dump, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if fr := s.User(p, 0x7ff0aa000004, false)[0]; fr.JIT {
		t.Errorf("another user's jitdump used: %+v", fr)
	}
}

func FuzzJitdump(f *testing.F) {
	w := newJitWriter(binary.LittleEndian)
	w.debug(0x1000, testLine{0x1000, 10, "a.py"}, testLine{0x1008, 11, "\xff"})
	w.load(0x1000, 0x20, "f")
	w.move(0x1000, 0x2000, 0x20)
	w.unwinding([]byte{1, 2})
	f.Add(w.buf.Bytes())
	b := newJitWriter(binary.BigEndian)
	b.load(0x1000, 0x20, "g")
	f.Add(b.buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseJitdump(bytes.NewReader(data))
		if err != nil {
			return
		}
		if d.consumed > int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", d.consumed, len(data))
		}
		for _, fn := range d.funcs {
			d.lookup(fn.addr)
			d.lookup(fn.addr + fn.size - 1)
		}
		if d.consumed >= 0 {
			d.more(bytes.NewReader(data[d.consumed:]))
		}
	})
}

// JITCode hands the BPF walker's table builder the code of a range that
// has CFI, with its eh_frame where the JIT laid it out; code loaded later
// is listed once the dump is read again.
func TestJitdumpCode(t *testing.T) {
	old := perfMapRecheck
	perfMapRecheck = 0
	t.Cleanup(func() { perfMapRecheck = old })
	cmd := startSleeper(t)
	dump := fmt.Sprintf("/tmp/jit-%d.dump", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(dump) })
	w := newJitWriter(binary.LittleEndian)
	w.unwinding([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	w.load(0x7ff0aa000000, 0x3c, "with_cfi")
	w.load(0x7ff0aa000100, 0x20, "without_cfi")
	w.unwinding([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	w.load(0x7ff0ab000000, 0x20, "elsewhere")
	writeFile(t, dump, w.buf.String())

	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := p.JITCode(0x7ff0aa000000, 0x7ff0aa001000)
	if len(got) != 1 || got[0].Addr != 0x7ff0aa000000 || got[0].Size != 0x3c ||
		got[0].EhAddr != 0x7ff0aa000040 || !bytes.Equal(got[0].EhFrame, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("JIT code in the first range: %+v", got)
	}
	w.unwinding([]byte{7, 7, 7, 7, 7, 7, 7, 7})
	w.load(0x7ff0aa000200, 0x20, "later")
	writeFile(t, dump, w.buf.String())
	got = p.JITCode(0x7ff0aa000000, 0x7ff0aa001000)
	if len(got) != 2 || got[1].Addr != 0x7ff0aa000200 || got[1].EhAddr != 0x7ff0aa000220 {
		t.Errorf("JIT code after more was written: %+v", got)
	}
	if got := p.JITCode(0x7ff0aa000000, 0x7ff0aa000020); len(got) != 0 {
		t.Errorf("code not wholly in the range listed: %+v", got)
	}
}

// Code compiled after the last look at the jitdump is found at the
// jitdump's own pace (jitDumpRecheck), not the perf map's second: the
// samples of a JIT that starts after the capture went unnamed until then.
func TestJitdumpRecheckPace(t *testing.T) {
	oldPM, oldJD := perfMapRecheck, jitDumpRecheck
	perfMapRecheck, jitDumpRecheck = time.Hour, time.Hour
	t.Cleanup(func() { perfMapRecheck, jitDumpRecheck = oldPM, oldJD })

	cmd := startSleeper(t)
	dump := fmt.Sprintf("/tmp/jit-%d.dump", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(dump) })
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.JIT {
		t.Fatalf("no jitdump yet: %+v", fr)
	}
	w := newJitWriter(binary.LittleEndian)
	w.load(0x7ff0aa000000, 0x40, "compiled_late")
	writeFile(t, dump, w.buf.String())
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.JIT {
		t.Errorf("jitdump looked at again before its recheck: %+v", fr)
	}
	jitDumpRecheck = 0 // the perf map's pace stays an hour
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "compiled_late" || !fr.JIT {
		t.Errorf("jitdump not read again at its own pace: %+v", fr)
	}
}
