// Package formats writes captures as folded stacks, pprof and speedscope
// files and imports perf script, folded, pprof and capture files.
package formats

import (
	"errors"
	"io"

	"github.com/scorch-dev/scorch/capture"
)

var errNotImplemented = errors.New("not implemented")

// WriteFolded writes one line per stack: frames root first, a space, the value.
func WriteFolded(w io.Writer, c *capture.Capture, q capture.Query) error {
	return errNotImplemented
}

// WritePprof writes a gzipped pprof protobuf.
func WritePprof(w io.Writer, c *capture.Capture, q capture.Query) error {
	return errNotImplemented
}

// WriteSpeedscope writes speedscope's file format.
func WriteSpeedscope(w io.Writer, c *capture.Capture, q capture.Query) error {
	return errNotImplemented
}

// ImportOptions tunes Import.
type ImportOptions struct {
	Event string // perf script: the event to keep; default the first one seen
}

// ImportReport says what Import read.
type ImportReport struct {
	Format       string // "capture", "pprof", "perf-script", "folded"
	Lines        int
	BadLines     int
	FirstBadLine int
	FirstBadText string
}

// Import detects the format of r and reads it into a capture.
func Import(r io.Reader, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	return nil, nil, errNotImplemented
}
