// Package bounded reads untrusted input within limits: one reader for every
// decompression and every size or count a file claims, so that a small
// hostile file cannot make scorch allocate or work without bound.
package bounded

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is what every limit error matches with errors.Is.
var ErrTooLarge = errors.New("input over a limit")

// LimitError says which limit was crossed.
type LimitError struct {
	What  string // "input", "decompressed input", "capture file header", ...
	Limit int64
	Unit  string // "bytes" (default) or the counted thing, e.g. "events"
}

func (e *LimitError) Error() string {
	unit := e.Unit
	if unit == "" {
		return fmt.Sprintf("%s is larger than the limit of %s", e.What, Human(e.Limit))
	}
	return fmt.Sprintf("%s: more than the limit of %d %s", e.What, e.Limit, unit)
}

// Is makes errors.Is(err, ErrTooLarge) true for every LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// Human writes a byte count the way the flags take it (256MiB).
func Human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Reader returns at most limit bytes of r, then a *LimitError (not io.EOF:
// input cut at the limit must not pass for complete input).
type Reader struct {
	r     io.Reader
	left  int64
	limit int64
	what  string
}

// NewReader bounds r to limit bytes; what names the input in the error.
func NewReader(r io.Reader, limit int64, what string) *Reader {
	return &Reader{r: r, left: limit, limit: limit, what: what}
}

func (b *Reader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a file of exactly limit bytes from a larger one.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, &LimitError{What: b.what, Limit: b.limit}
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// Read returns how many bytes were read so far.
func (b *Reader) Consumed() int64 { return b.limit - b.left }

// Left returns how many more bytes may be read.
func (b *Reader) Left() int64 { return b.left }

// ReadAll reads r whole within limit. sizeHint (0 when unknown) sizes the
// buffer once.
func ReadAll(r io.Reader, limit int64, what string, sizeHint int64) ([]byte, error) {
	var buf bytes.Buffer
	if sizeHint > 0 {
		buf.Grow(int(min(sizeHint, limit)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(NewReader(r, limit, what))
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// IsGzip reports whether data starts with the gzip magic.
func IsGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// Gunzip returns a reader of the decompressed r that fails with a
// *LimitError after limit bytes: the bound is on what comes out, which is
// what a decompression bomb inflates.
func Gunzip(r io.Reader, limit int64, what string) (io.Reader, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return NewReader(zr, limit, "decompressed "+what), nil
}

// Count checks a count a file claims (events, records, frames) against max
// before anything is allocated for it.
func Count(n, max uint64, what, unit string) error {
	if n > max {
		return &LimitError{What: fmt.Sprintf("%s claims %d %s", what, n, unit), Limit: int64(max), Unit: unit}
	}
	return nil
}
