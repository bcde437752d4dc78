package symbolizer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test when f does not return in time (the FIFO opens
// this guards against block forever).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v: an open blocked", what, d)
	}
}

// A FIFO at /tmp/perf-PID.map, made by the process's owner, used to hang
// every symbolization of the process (and so its captures, /stop included).
func TestPerfMapFIFO(t *testing.T) {
	old := perfMapRecheck
	perfMapRecheck = 0
	t.Cleanup(func() { perfMapRecheck = old })
	cmd := startSleeper(t)
	path := fmt.Sprintf("/tmp/perf-%d.map", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(path) })
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	within(t, 5*time.Second, "symbolizing with a FIFO perf map", func() {
		for range 3 {
			if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.JIT {
				t.Errorf("frame from a FIFO: %+v", fr)
			}
		}
	})
	// Once a regular map replaces the FIFO it is read.
	os.Remove(path)
	writeFile(t, path, "7ff0aa000000 40 now_real\n")
	within(t, 5*time.Second, "symbolizing", func() {
		if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "now_real" {
			t.Errorf("after the FIFO was replaced: %+v, want now_real", fr)
		}
	})
}

// The opener's own rules: regular files only, at most the size cap.
func TestOpenForeign(t *testing.T) {
	root := t.TempDir()
	rf, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	writeFile(t, filepath.Join(root, "small"), "0123456789")
	syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	tests := []struct {
		name string
		max  int64
		ok   bool
	}{
		{"small", 10, true},
		{"small", 9, false},
		{"fifo", 1 << 20, false},
		{"dir", 1 << 20, false},
		{"missing", 1 << 20, false},
	}
	for _, tt := range tests {
		within(t, 5*time.Second, "open "+tt.name, func() {
			f, err := openForeign(rf, "", "/"+tt.name, true, tt.max)
			if (err == nil) != tt.ok {
				t.Errorf("%s (cap %d): err %v, want ok=%v", tt.name, tt.max, err, tt.ok)
			}
			if f != nil {
				f.Close()
			}
		})
	}
	// Mapped files and debug files of a process are opened the same way: a
	// FIFO at a mapped path (put there after the snapshot read the maps)
	// neither blocks nor is read.
	within(t, 5*time.Second, "openInRoot of a FIFO", func() {
		if f, err := openInRoot(rf, "", "/fifo"); err == nil {
			f.Close()
			t.Error("openInRoot returned a FIFO")
		}
	})
}

// A frame named from a large perf map must not keep the map alive: names
// were strings into the symbol blob, so each kept capture pinned the whole
// map (486 MiB of heap per capture of a 485 MiB map).
func TestPerfMapNamesDoNotPinTheMap(t *testing.T) {
	cmd := startSleeper(t)
	path := fmt.Sprintf("/tmp/perf-%d.map", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(path) })
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 900)
	const entries = 40000 // 36 MB of names
	w := bufio.NewWriter(f)
	for i := range entries {
		fmt.Fprintf(w, "%x 10 jit_%d_%s\n", 0x7ff0aa000000+uint64(i)*0x10, i, long)
	}
	w.Flush()
	f.Close()

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var kept []Frame
	func() {
		s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
		defer s.Close()
		p, err := s.Snapshot(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := 0; i < entries; i += entries / 8 {
			kept = append(kept, s.User(p, 0x7ff0aa000000+uint64(i)*0x10+1, false)[0])
		}
	}()
	for i, fr := range kept {
		if !strings.HasPrefix(fr.Name, fmt.Sprintf("jit_%d_", i*(entries/8))) {
			t.Fatalf("frame %d: %.40q", i, fr.Name)
		}
	}
	after := heap()
	if grown := int64(after) - int64(before); grown > 4<<20 {
		t.Errorf("holding %d frames keeps %d MiB of heap alive, want well under the map's 36 MB", len(kept), grown>>20)
	}
	runtime.KeepAlive(kept)
}
