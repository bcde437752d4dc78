package profiler_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// threadNices are the nice values of the process's threads, from their
// stat files (the 19th field; the command name before it may hold spaces).
func threadNices(t *testing.T, dir string) map[int]int {
	t.Helper()
	stats, err := filepath.Glob(filepath.Join(dir, "task", "*", "stat"))
	if err != nil || len(stats) == 0 {
		t.Fatalf("no threads under %s: %v", dir, err)
	}
	out := map[int]int{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		n, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s: nice %q: %v", p, f[16], err)
		}
		out[n]++
	}
	return out
}

// With BoostNice, scorch's threads run boosted outside the window only:
// at the window's start every thread and the command started for it are
// at the starting nice value, and after Record every thread is boosted
// (for the caller's output).
func TestBoostNiceOutsideWindow(t *testing.T) {
	testutil.RequireRoot(t)
	base := threadNices(t, "/proc/self")
	if len(base) != 1 {
		t.Fatalf("threads at several nice values before the test: %v", base)
	}
	var start int
	for n := range base {
		start = n
	}
	const boosted = -7
	if start <= boosted {
		t.Skipf("the test runs at nice %d, not above %d", start, boosted)
	}
	t.Cleanup(func() {
		if err := profiler.SetThreadsNice(start); err != nil {
			t.Errorf("restoring nice %d: %v", start, err)
		}
	})
	var atWindow map[int]int
	var out bytes.Buffer
	// The command prints its own nice value once the window runs.
	p := capture.Params{Type: capture.CPU, Hz: 99, Unwind: "fp", Duration: capture.Duration(10 * time.Second),
		Command: []string{"/bin/sh", "-c", "read -r l < /proc/self/stat; set -- ${l##*) }; echo nice=${17}"}}
	_, err := profiler.Record(context.Background(), p, profiler.Options{
		BoostNice:     boosted,
		CommandStdout: &out,
		Ready:         func() { atWindow = threadNices(t, "/proc/self") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(atWindow) != 1 || atWindow[start] == 0 {
		t.Errorf("threads' nice values at the window's start %v, want all %d", atWindow, start)
	}
	if got, want := strings.TrimSpace(out.String()), "nice="+strconv.Itoa(start); got != want {
		t.Errorf("the command printed %q, want %q", got, want)
	}
	if after := threadNices(t, "/proc/self"); len(after) != 1 || after[boosted] == 0 {
		t.Errorf("threads' nice values after Record %v, want all %d", after, boosted)
	}
}

// Without BoostNice nothing changes.
func TestNoBoostNice(t *testing.T) {
	testutil.RequireRoot(t)
	before := threadNices(t, "/proc/self")
	if _, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 99, Unwind: "fp", Duration: capture.Duration(200 * time.Millisecond)}, profiler.Options{}); err != nil {
		t.Fatal(err)
	}
	after := threadNices(t, "/proc/self")
	for n := range after {
		if before[n] == 0 {
			t.Errorf("nice values %v after Record, %v before", after, before)
		}
	}
}
