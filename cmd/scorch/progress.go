package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/profiler"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal: the live progress line is
// drawn only there, so that redirected stderr gets no carriage returns.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressLine redraws one status line of a running capture in place:
// elapsed of planned time, events, lost, and how to stop early.
type progressLine struct {
	mu      sync.Mutex
	w       io.Writer
	typ     capture.Type
	planned time.Duration // 0: until the command exits
	drawn   bool
}

func (l *progressLine) show(pr profiler.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	elapsed := pr.Elapsed.Truncate(100 * time.Millisecond).Seconds()
	of := ""
	if l.planned > 0 {
		of = fmt.Sprintf(" of %gs", l.planned.Seconds())
	}
	// \r and erase-line: the line is redrawn where it is.
	fmt.Fprintf(l.w, "\r\x1b[Kscorch: recording %s %.1fs%s, %d events, %d lost (Ctrl-C stops and writes what was collected)",
		l.typ, elapsed, of, pr.Events, pr.Lost)
	l.drawn = true
}

// clear erases the line before the final messages.
func (l *progressLine) clear() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.drawn = false
	}
}
