package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/unwind"
)

// buildScorch builds the command once per test binary.
func buildScorch(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scorch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestRecordBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--hz", "0"}, "1..10000"},
		{[]string{"--hz", "20000"}, "1..10000"},
		{[]string{"--duration", "-1s"}, "duration"},
		{[]string{"--pid", "999999999"}, "no such process"},
		{[]string{"--pid", "abc"}, "pid"},
		{[]string{"--type", "gpu"}, "allowed values"},
		{[]string{"--unwind", "lbr"}, "fp, auto, dwarf"},
		{[]string{"--format", "png"}, "allowed values"},
		{[]string{"--idle", "sometimes"}, "include, exclude"},
		{[]string{"stray"}, "after --"},
		{[]string{"--ring-size", "1K"}, "allowed 64KiB..1GiB"},
		{[]string{"--ring-size", "lots"}, "not a size"},
		{[]string{"--symbol-cache", "100K"}, "at least 1MiB"},
		{[]string{"--memory-limit", "-5"}, "not a size"},
		{[]string{"--boost-nice", "-21"}, "allowed -20..19, or 0 for no boost"},
		{[]string{"--boost-nice", "20"}, "allowed -20..19"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"record"}, tt.args...), &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not name the problem (%q)", stderr.String(), tt.want)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
}

func TestRecordNotRoot(t *testing.T) {
	testutil.RequireRoot(t) // to switch to another user
	setpriv := testutil.RequireTool(t, "setpriv")
	bin := buildScorch(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "record", "--type", "cpu", "--duration", "1s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("got %v, want exit %d; stderr: %s", err, exitFailure, stderr.String())
	}
	if !strings.Contains(stderr.String(), "root") {
		t.Errorf("stderr %q does not say root is needed", stderr.String())
	}
}

// Ctrl-C ends a capture early: what was collected is written and the exit
// code is 0.
func TestRecordInterrupt(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildScorch(t)
	out := filepath.Join(t.TempDir(), "out.folded")
	cmd := exec.Command(bin, "record", "--type", "cpu", "--hz", "499", "--duration", "60s", "--idle", "include", "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("scorch did not stop after SIGINT")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("nothing written; stderr: %s", stderr.String())
	}
	for _, l := range lines {
		i := strings.LastIndexByte(l, ' ')
		if i <= 0 || strings.Contains(l[:i], "\n") {
			t.Fatalf("bad folded line %q", l)
		}
	}
}

func TestDoctor(t *testing.T) {
	testutil.RequireRoot(t)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"kernel", "BTF", "cpu ", "kernel.kptr_restrict", "kernel.perf_event_paranoid", "kernel.perf_event_max_stack", "PMU"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "cpu      yes") {
		t.Errorf("the cpu collector is not available here:\n%s", out)
	}
	// The architecture, named as users know it, with its registers.
	arch, _ := unwind.ArchFor(runtime.GOARCH)
	if !strings.Contains(out, "arch        "+arch.Name+" (registers "+arch.Regs[0]) {
		t.Errorf("doctor does not name the architecture %s:\n%s", arch.Name, out)
	}
}

// -v says where the time went, phase by phase, and the peak memory; the
// window is the duration asked for, and the output is written.
func TestRecordVerbosePhases(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildScorch(t)
	out := filepath.Join(t.TempDir(), "out.svg")
	cmd := exec.Command(bin, "record", "--type", "cpu", "--hz", "99", "--duration", "1s", "--format", "svg", "-v", "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("record: %v; stderr: %s", err, stderr.String())
	}
	wall := float64(time.Since(began).Milliseconds())
	var phases, rss string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "scorch: phases ") {
			phases = l
		}
		if strings.HasPrefix(l, "scorch: peak RSS ") {
			rss = l
		}
	}
	if phases == "" || rss == "" {
		t.Fatalf("no phases or peak RSS line in stderr:\n%s", stderr.String())
	}
	ms := map[string]float64{}
	for _, f := range strings.Fields(strings.TrimPrefix(phases, "scorch: phases ")) {
		k, v, _ := strings.Cut(f, "=")
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("phase %q: %v (line %q)", f, err, phases)
		}
		ms[k] = float64(d.Milliseconds())
	}
	for _, k := range []string{"start", "load", "attach", "window", "drain", "symbolize", "aggregate", "close", "render", "write", "before_window", "after_window", "beyond_window"} {
		if _, ok := ms[k]; !ok {
			t.Errorf("phase %s missing: %q", k, phases)
		}
	}
	if w := ms["window"]; w < 950 || w > 5000 {
		t.Errorf("window %v ms for --duration 1s", w)
	}
	if sum := ms["drain"] + ms["symbolize"] + ms["aggregate"] + ms["render"] + ms["write"]; sum > ms["after_window"]+1 {
		t.Errorf("phases after the window add up to %v ms, more than after_window %v", sum, ms["after_window"])
	}
	// Milliseconds are truncated: each sum may be a few short.
	if sum := ms["start"] + ms["load"] + ms["attach"]; sum > ms["before_window"]+1 || sum < ms["before_window"]-3 {
		t.Errorf("phases before the window add up to %v ms, before_window is %v", sum, ms["before_window"])
	}
	// beyond_window is all of the process's time but the window, as a
	// user timing the command sees it.
	if b := ms["before_window"] + ms["after_window"]; b > ms["beyond_window"]+2 {
		t.Errorf("before_window + after_window = %v ms, more than beyond_window %v", b, ms["beyond_window"])
	}
	if b := ms["beyond_window"]; b > wall-ms["window"]+1 || b < 0 {
		t.Errorf("beyond_window %v ms, but the command took %v ms with a window of %v", b, wall, ms["window"])
	}
	var mib float64
	if _, err := fmt.Sscanf(strings.TrimPrefix(rss, "scorch: peak RSS "), "%f MiB", &mib); err != nil || mib < 5 || mib > 4096 {
		t.Errorf("peak RSS line %q: %v MiB, %v", rss, mib, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Errorf("no output written: %v", err)
	}
}
