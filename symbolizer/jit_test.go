package symbolizer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startSleeper runs a process with no JIT of its own whose perf map the
// test writes by hand.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(needTool(t, "sleep"), "600")
	cmd.Stdin = strings.NewReader("")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestPerfMap(t *testing.T) {
	old := perfMapRecheck
	perfMapRecheck = 0
	t.Cleanup(func() { perfMapRecheck = old })

	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	path := fmt.Sprintf("/tmp/perf-%d.map", pid)
	t.Cleanup(func() { os.Remove(path) })
	// Far above any mapping of sleep, so no file mapping claims them.
	writeFile(t, path, "7ff0aa000000 40 LazyCompile:*fib /app/fib.js:3\n0x7ff0aa000100 0x80 _ZN6shapes5scaleIiEET_S1_\n")

	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fr := s.User(p, 0x7ff0aa000010, true)[0]
	if fr.Name != "LazyCompile:*fib /app/fib.js:3" || !fr.JIT || fr.Module != path {
		t.Errorf("JIT frame %+v", fr)
	}
	if fr := s.User(p, 0x7ff0aa000120, false)[0]; fr.Name != "shapes::scale<int>" || !fr.JIT {
		t.Errorf("demangled JIT frame %+v", fr)
	}
	if fr := s.User(p, 0x7ff0aa000300, false)[0]; fr.Name != "" || fr.JIT {
		t.Errorf("address outside the perf map: %+v", fr)
	}

	// Re-read when it changes.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "7ff0aa000300 20 Function:~later /app/later.js:9\n")
	f.Close()
	if fr := s.User(p, 0x7ff0aa000304, false)[0]; fr.Name != "Function:~later /app/later.js:9" {
		t.Errorf("appended entry not seen: %+v", fr)
	}

	appendMap := func(text string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	// A line caught half-written is read again once complete.
	appendMap("7ff0aa000400 20 partial_na")
	s.User(p, 0x7ff0aa000404, false)
	appendMap("me\n")
	if fr := s.User(p, 0x7ff0aa000404, false)[0]; fr.Name != "partial_name" {
		t.Errorf("completed line: %+v", fr)
	}
	// Many appends (more layers than kept) and code regenerated at an
	// address that already had a name: the newest entry wins.
	for i := range 12 {
		appendMap(fmt.Sprintf("7ff0aa0010%02x 4 gen%d\n", 4*i, i))
		if fr := s.User(p, 0x7ff0aa001000+uint64(4*i), false)[0]; fr.Name != fmt.Sprintf("gen%d", i) {
			t.Errorf("append %d: %+v", i, fr)
		}
	}
	appendMap("7ff0aa000000 40 LazyCompile:*fib regenerated\n")
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "LazyCompile:*fib regenerated" {
		t.Errorf("regenerated code: %+v", fr)
	}
	if fr := s.User(p, 0x7ff0aa000304, false)[0]; fr.Name != "Function:~later /app/later.js:9" {
		t.Errorf("older entry lost: %+v", fr)
	}
}

// A process without a perf map is not looked at again on every JIT frame,
// only once perfMapRecheck has passed.
func TestPerfMapMissing(t *testing.T) {
	old := perfMapRecheck
	perfMapRecheck = time.Hour
	t.Cleanup(func() { perfMapRecheck = old })

	cmd := startSleeper(t)
	path := fmt.Sprintf("/tmp/perf-%d.map", cmd.Process.Pid)
	t.Cleanup(func() { os.Remove(path) })
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "" || fr.JIT {
		t.Fatalf("no perf map yet: %+v", fr)
	}
	writeFile(t, path, "7ff0aa000000 40 LazyCompile:*fib /app/fib.js:3\n")
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "" || fr.JIT {
		t.Errorf("perf map looked for again before perfMapRecheck: %+v", fr)
	}
	perfMapRecheck = 0
	if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "LazyCompile:*fib /app/fib.js:3" || !fr.JIT {
		t.Errorf("perf map not found once perfMapRecheck passed: %+v", fr)
	}
}

func TestPerfMapUntrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by another user")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"other owner", func(t *testing.T, path string) {
			writeFile(t, path, "7ff0aa000000 40 evil\n")
			if err := os.Chown(path, 54321, 54321); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink", func(t *testing.T, path string) {
			target := writeFile(t, filepath.Join(t.TempDir(), "target.map"), "7ff0aa000000 40 evil\n")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := startSleeper(t)
			path := fmt.Sprintf("/tmp/perf-%d.map", cmd.Process.Pid)
			t.Cleanup(func() { os.Remove(path) })
			tt.setup(t, path)
			s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
			defer s.Close()
			p, err := s.Snapshot(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if fr := s.User(p, 0x7ff0aa000010, false)[0]; fr.Name != "" || fr.JIT {
				t.Errorf("untrusted perf map used: %+v", fr)
			}
		})
	}
}

// A real JIT: node --perf-basic-prof writes /tmp/perf-PID.map; its hot JS
// function is named from the snapshot.
func TestNodePerfMap(t *testing.T) {
	node := needTool(t, "node")
	dir := t.TempDir()
	script := writeFile(t, filepath.Join(dir, "hot.js"), `
function scorchHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
let total = 0;
for (let i = 0; i < 2000; i++) total += scorchHotLoop(10000);
console.log("ready " + total);
setInterval(() => {}, 1000);
`)
	cmd := exec.Command(node, "--perf-basic-prof", script)
	cmd.Stdin = strings.NewReader("")
	cmd.Dir = dir // node may write a v8 log into its working directory
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	path := fmt.Sprintf("/tmp/perf-%d.map", pid)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.Remove(path) })
	ready := make(chan struct{})
	go func() {
		b := make([]byte, 64)
		out.Read(b)
		close(ready)
	}()
	select {
	case <-ready:
	case <-time.After(120 * time.Second):
		t.Fatal("node did not finish its warm-up")
	}
	// Find the function in the map independently of the parser.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("node wrote no perf map: %v", err)
	}
	var start uint64
	var want string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 && strings.Contains(f[2], "scorchHotLoop") {
			v, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 64)
			if err != nil {
				t.Fatalf("bad line %q", line)
			}
			start, want = v, f[2]
		}
	}
	if start == 0 {
		t.Fatalf("scorchHotLoop not in %s", path)
	}
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fr := s.User(p, start+1, false)[0]
	if fr.Name != want || !fr.JIT || fr.Module != path {
		t.Errorf("got %+v, want JIT frame %q", fr, want)
	}
}
