package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/testutil"
)

// `record -- CMD` exits with CMD's status once the output is written
// (128+N for signal N), and 0 when the capture's duration ended it.
func TestRecordCommandExitStatus(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildScorch(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"exit 3", []string{"--", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"}, 3},
		{"exit 0", []string{"--", "sh", "-c", "exit 0"}, 0},
		{"SIGSEGV", []string{"--", "sh", "-c", "kill -SEGV $$"}, 128 + 11},
		{"duration over", []string{"--duration", "1s", "--", "sleep", "30"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.folded")
			cmd := exec.Command(bin, append([]string{"record", "--type", "cpu", "--hz", "999", "-o", out}, tt.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr.String())
			}
			if _, err := os.Stat(out); err != nil {
				t.Errorf("output not written: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "scorch: ") || !strings.Contains(last, " events in ") {
				t.Errorf("stderr does not end with the summary line: %q", last)
			}
		})
	}
}

// A --pid or --tid capture ends, with a notice, once every target exited.
func TestRecordEndsWhenTargetsExit(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildScorch(t)
	for _, flag := range []string{"--pid", "--tid"} {
		t.Run(flag, func(t *testing.T) {
			a := testutil.Start(t, "sleep", "1")
			b := testutil.Start(t, "sleep", "2")
			ids := []string{strconv.Itoa(a.Process.Pid), strconv.Itoa(b.Process.Pid)}
			go a.Wait() // reap, so that no zombie is left
			go b.Wait()
			start := time.Now()
			cmd := exec.Command(bin, "record", "--type", "cpu", "--duration", "60s", flag, strings.Join(ids, ","), "-o", filepath.Join(t.TempDir(), "out"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v; stderr:\n%s", err, stderr.String())
			}
			took := time.Since(start)
			if took < 1500*time.Millisecond || took > 15*time.Second {
				t.Errorf("the capture took %s: want it to end soon after the last target exited (2 s)", took)
			}
			if !strings.Contains(stderr.String(), "exited: the capture ended after") {
				t.Errorf("no notice that the targets exited:\n%s", stderr.String())
			}
		})
	}
}

// On a terminal, record shows a live progress line (elapsed of the
// duration, events, lost, how to stop); with stderr redirected, nothing but
// the usual lines.
func TestRecordProgressLine(t *testing.T) {
	testutil.RequireRoot(t)
	tmux := testutil.RequireTool(t, "tmux")
	bin := buildScorch(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	out := filepath.Join(dir, "out.folded")
	done := filepath.Join(dir, "done")
	sh := bin + " record --type cpu --duration 4s -o " + out + "; echo $? > " + done + "; sleep 120"
	if o, err := exec.Command(tmux, "-S", sock, "new-session", "-d", "-x", "200", "-y", "20", "sh", "-c", sh).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, o)
	}
	defer exec.Command(tmux, "-S", sock, "kill-server").Run()
	pane := func() string {
		o, _ := exec.Command(tmux, "-S", sock, "capture-pane", "-p").Output()
		return string(o)
	}
	// The line shows during the 4 s capture, however long the load before
	// it takes (seconds on a busy host): watch until the capture is done.
	var seen string
	finished := func() bool { _, err := os.Stat(done); return err == nil }
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && !finished(); time.Sleep(100 * time.Millisecond) {
		if p := pane(); strings.Contains(p, "recording cpu") {
			seen = p
			if strings.Contains(p, "events") && !strings.Contains(p, " 0.0s") {
				break
			}
		}
	}
	if seen == "" {
		t.Fatalf("no progress line on the terminal:\n%s", pane())
	}
	for _, want := range []string{"of 4s", "events", "lost", "Ctrl-C"} {
		if !strings.Contains(seen, want) {
			t.Errorf("progress line lacks %q:\n%s", want, seen)
		}
	}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
	}
	final := pane()
	if strings.Contains(final, "recording cpu") {
		t.Errorf("the progress line is left on the terminal after the capture:\n%s", final)
	}
	if !strings.Contains(final, " events in ") {
		t.Errorf("no summary line:\n%s", final)
	}

	// Not a terminal: no progress line, no carriage returns.
	cmd := exec.Command(bin, "record", "--type", "cpu", "--duration", "1s", "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if s := stderr.String(); strings.ContainsAny(s, "\r\x1b") || strings.Contains(s, "recording") {
		t.Errorf("stderr that is not a terminal got the progress line: %q", s)
	}
}
