package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/scorch-dev/scorch/internal/bounded"
)

// Magic starts every capture file.
const Magic = "SCORCHCP"

const eventSize = 48

// maxHeader bounds the JSON part of a capture file (meta, frames, stacks), so
// that a hostile file cannot make the reader allocate without limit.
const maxHeader = 1 << 30

// DefaultReadLimit bounds what Read decompresses: scorch's own stored
// captures, which may be long. Imports pass their own, smaller limit to
// ReadLimit.
const DefaultReadLimit = 16 << 30

type fileHeader struct {
	Meta   Meta       `json:"meta"`
	Frames []Frame    `json:"frames"`
	Stacks [][]uint32 `json:"stacks"`
	// Mappings came after version 1's first files, which lack them: an
	// optional field keeps one version (older readers ignore it).
	Mappings []Mapping `json:"mappings,omitempty"`
}

// IsCaptureFile reports whether data starts like a capture file.
func IsCaptureFile(data []byte) bool {
	return bytes.HasPrefix(data, []byte(Magic))
}

// Write encodes the capture in scorch's versioned file format: the magic, a
// version byte, then gzip of a length-prefixed JSON header (meta, frames,
// stacks) and the events as 48-byte little-endian records.
func Write(w io.Writer, c *Capture) error {
	if _, err := io.WriteString(w, Magic); err != nil {
		return err
	}
	if _, err := w.Write([]byte{FormatVersion}); err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	meta := c.Meta
	meta.Version = FormatVersion
	hdr, err := json.Marshal(fileHeader{Meta: meta, Frames: c.Frames, Stacks: c.Stacks, Mappings: c.Mappings})
	if err != nil {
		return fmt.Errorf("encoding capture header: %w", err)
	}
	bw := bufio.NewWriterSize(zw, 64<<10)
	var buf [eventSize]byte
	binary.LittleEndian.PutUint64(buf[:8], uint64(len(hdr)))
	bw.Write(buf[:8])
	bw.Write(hdr)
	binary.LittleEndian.PutUint64(buf[:8], uint64(len(c.Events)))
	bw.Write(buf[:8])
	for i := range c.Events {
		putEvent(buf[:], &c.Events[i])
		if _, err := bw.Write(buf[:]); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

func putEvent(b []byte, e *Event) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(e.Time))
	le.PutUint64(b[8:], uint64(e.Value))
	le.PutUint64(b[16:], uint64(e.Value2))
	le.PutUint32(b[24:], e.Stack)
	le.PutUint32(b[28:], e.PID)
	le.PutUint32(b[32:], e.TID)
	le.PutUint32(b[36:], e.WakerPID)
	le.PutUint32(b[40:], e.WakerTID)
	le.PutUint16(b[44:], e.CPU)
	le.PutUint16(b[46:], e.Flags)
}

func getEvent(b []byte) Event {
	le := binary.LittleEndian
	return Event{
		Time:     int64(le.Uint64(b[0:])),
		Value:    int64(le.Uint64(b[8:])),
		Value2:   int64(le.Uint64(b[16:])),
		Stack:    le.Uint32(b[24:]),
		PID:      le.Uint32(b[28:]),
		TID:      le.Uint32(b[32:]),
		WakerPID: le.Uint32(b[36:]),
		WakerTID: le.Uint32(b[40:]),
		CPU:      le.Uint16(b[44:]),
		Flags:    le.Uint16(b[46:]),
	}
}

// ErrNotCapture is returned by Read for data that is not a capture file.
var ErrNotCapture = errors.New("not a scorch capture file")

// Read decodes a capture file and checks that every index in it is in range.
func Read(r io.Reader) (*Capture, error) { return ReadLimit(r, DefaultReadLimit) }

// ReadLimit is Read of at most limit decompressed bytes: the header's
// claimed length and event count are checked against what is left of the
// limit before anything is allocated for them.
func ReadLimit(r io.Reader, limit int64) (*Capture, error) {
	var head [len(Magic) + 1]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, ErrNotCapture
	}
	if string(head[:len(Magic)]) != Magic {
		return nil, ErrNotCapture
	}
	if v := head[len(Magic)]; v != FormatVersion {
		return nil, fmt.Errorf("capture file version %d is not supported: this scorch reads version %d", v, FormatVersion)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading capture file: %w", err)
	}
	defer zr.Close()
	lr := bounded.NewReader(zr, limit, "decompressed capture file")
	br := bufio.NewReaderSize(lr, 64<<10)
	var buf [eventSize]byte
	if _, err := io.ReadFull(br, buf[:8]); err != nil {
		return nil, fmt.Errorf("capture file truncated: %w", err)
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if err := bounded.Count(n, uint64(min(maxHeader, limit)), "capture file header", "bytes"); err != nil {
		return nil, err
	}
	// ReadAll grows with what arrives, not with what the header claims.
	raw, err := io.ReadAll(io.LimitReader(br, int64(n)))
	if err != nil {
		return nil, fmt.Errorf("capture file header: %w", err)
	}
	if uint64(len(raw)) != n {
		return nil, fmt.Errorf("capture file truncated in its header")
	}
	var hdr fileHeader
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return nil, fmt.Errorf("capture file header: %w", err)
	}
	raw = nil
	c := &Capture{Meta: hdr.Meta, Frames: hdr.Frames, Stacks: hdr.Stacks, Mappings: hdr.Mappings}
	if _, err := io.ReadFull(br, buf[:8]); err != nil {
		return nil, fmt.Errorf("capture file truncated before events: %w", err)
	}
	count := binary.LittleEndian.Uint64(buf[:8])
	left := lr.Left() + int64(br.Buffered())
	if err := bounded.Count(count, uint64(left/eventSize), "capture file", "events"); err != nil {
		return nil, err
	}
	const prealloc = 1 << 16
	c.Events = make([]Event, 0, min(count, prealloc))
	for i := uint64(0); i < count; i++ {
		if _, err := io.ReadFull(br, buf[:]); err != nil {
			return nil, fmt.Errorf("capture file truncated after %d of %d events: %w", i, count, err)
		}
		c.Events = append(c.Events, getEvent(buf[:]))
	}
	// Reading to the end checks the gzip checksum, so a file cut short in
	// its trailer is not taken as complete.
	if extra, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("capture file damaged: %w", err)
	} else if extra > 0 {
		return nil, fmt.Errorf("capture file damaged: %d bytes after the last event", extra)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks that frame and stack indexes are in range.
func (c *Capture) Validate() error {
	for i, s := range c.Stacks {
		for _, f := range s {
			if int(f) >= len(c.Frames) {
				return fmt.Errorf("capture damaged: stack %d names frame %d of %d", i, f, len(c.Frames))
			}
		}
	}
	for i := range c.Events {
		if int(c.Events[i].Stack) >= len(c.Stacks) {
			return fmt.Errorf("capture damaged: event %d names stack %d of %d", i, c.Events[i].Stack, len(c.Stacks))
		}
	}
	if _, err := ParseType(string(c.Meta.Type)); err != nil {
		return fmt.Errorf("capture damaged: %w", err)
	}
	for i, m := range c.Mappings {
		if m.Limit <= m.Start {
			return fmt.Errorf("capture damaged: mapping %d of %s is empty [%#x, %#x)", i, m.Module, m.Start, m.Limit)
		}
	}
	return nil
}
