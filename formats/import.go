package formats

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/scorch-dev/scorch/capture"
)

// ImportOptions tunes Import.
type ImportOptions struct {
	// Event selects the perf script event to keep (for example "cycles");
	// by default the first event type in the file is kept, as
	// stackcollapse-perf.pl does.
	Event string
	// Type is the capture type of folded input, which does not say what it
	// measures; default cpu.
	Type capture.Type
	// MaxBytes limits the input read; 0 means 1 GiB.
	MaxBytes int64
}

// ImportReport says what Import read and what it could not parse.
type ImportReport struct {
	Format       string // "capture", "pprof", "perf-script" or "folded"
	Lines        int    // text formats: lines read (comments and blank lines not counted)
	BadLines     int    // lines that could not be parsed
	FirstBadLine int    // 1-based line number of the first bad line
	FirstBadText string // its text, cut to 200 bytes
	Skipped      int    // perf script: samples of other events than the one kept
}

func (r *ImportReport) bad(lineNo int, line []byte) {
	r.BadLines++
	if r.FirstBadLine == 0 {
		r.FirstBadLine = lineNo
		if len(line) > 200 {
			line = line[:200]
		}
		r.FirstBadText = string(bytes.ToValidUTF8(line, []byte("\uFFFD")))
	}
}

// nothing is the error of an input without a single parseable record.
func (r *ImportReport) nothing(format string) error {
	if r.BadLines == 0 {
		return fmt.Errorf("%s input has no samples", format)
	}
	return fmt.Errorf("%s input has no parseable lines: %d bad lines, the first is line %d: %q", format, r.BadLines, r.FirstBadLine, r.FirstBadText)
}

// ErrUnknownFormat is returned for input that is none of the importable formats.
var ErrUnknownFormat = errors.New("unknown input format: expected a scorch capture, a pprof profile, perf script output or folded stacks")

// Import detects the format of r (capture, pprof, perf script or folded)
// and reads it into a capture. Unparseable lines of text formats are counted
// in the report; an input with nothing parseable is an error.
func Import(r io.Reader, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = 1 << 30
	}
	// Size the buffer once when the reader knows its length.
	var buf bytes.Buffer
	switch v := r.(type) {
	case interface{ Len() int }:
		buf.Grow(min(v.Len(), int(limit)) + 1)
	case interface{ Stat() (os.FileInfo, error) }:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			buf.Grow(int(min(st.Size(), limit)) + 1)
		}
	}
	_, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	data := buf.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("read input: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("input is larger than the limit of %d bytes", limit)
	}
	return ImportBytes(data, opts)
}

// ImportBytes is Import for input already in memory.
func ImportBytes(data []byte, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	rep := &ImportReport{Format: Detect(data)}
	var c *capture.Capture
	var err error
	switch rep.Format {
	case "capture":
		c, err = capture.Read(bytes.NewReader(data))
		if err != nil {
			err = fmt.Errorf("read capture file: %w", err)
		}
	case "pprof":
		c, err = readPprof(data)
		if err == nil {
			c.Meta.Stats.Samples = valueSamples(c)
		}
		if err != nil && isGzip(data) {
			// A gzipped perf script or folded file (perf.txt.gz).
			if text, gzErr := gunzip(data, opts.MaxBytes); gzErr == nil && Detect(text) != "pprof" && Detect(text) != "" {
				return ImportBytes(text, opts)
			}
		}
	case "perf-script":
		c, err = readPerfScript(data, opts, rep)
	case "folded":
		c, err = readFolded(data, opts, rep)
		if err == nil {
			c.Meta.Stats.Samples = valueSamples(c)
		}
	default:
		return nil, rep, ErrUnknownFormat
	}
	if err != nil {
		return nil, rep, err
	}
	return c, rep, nil
}

// valueSamples is the sample count of a folded or pprof import, whose
// events are stacks with summed values: the sum of the values when they
// count samples or events, else the objects of an allocation profile
// (Value2), else the number of stacks (a time or byte total says nothing
// about how many samples made it).
func valueSamples(c *capture.Capture) uint64 {
	var v, v2 uint64
	for i := range c.Events {
		v += uint64(max(c.Events[i].Value, 0))
		v2 += uint64(max(c.Events[i].Value2, 0))
	}
	switch {
	case c.Meta.Unit == "samples" || c.Meta.Unit == "count":
		return v
	case c.Meta.Unit == "bytes" && v2 > 0:
		return v2
	}
	return uint64(len(c.Events))
}

func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// gunzip decompresses data up to the import limit.
func gunzip(data []byte, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompressed input is larger than the limit of %d bytes", limit)
	}
	return out, nil
}

// Detect names the format of data: "capture", "pprof", "perf-script",
// "folded", or "" when it is none of them.
func Detect(data []byte) string {
	switch {
	case capture.IsCaptureFile(data):
		return "capture"
	case isGzip(data):
		return "pprof" // gzip: scorch captures are recognised above
	}
	// Text formats: perf script has indented stack lines or event lines with
	// a "TIME: " field; folded lines end in a number.
	sample := data
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
	}
	if !utf8.Valid(sample[:max(0, len(sample)-4)]) && bytes.IndexByte(sample, 0) >= 0 {
		return "pprof" // uncompressed protobuf
	}
	lines := 0
	folded := 0
	for len(sample) > 0 && lines < 200 {
		var line []byte
		if i := bytes.IndexByte(sample, '\n'); i >= 0 {
			line, sample = sample[:i], sample[i+1:]
		} else {
			line, sample = sample, nil
		}
		t := bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(t)) == 0 || t[0] == '#' {
			continue
		}
		lines++
		if t[0] == ' ' || t[0] == '\t' {
			return "perf-script"
		}
		if _, ok, _ := parsePerfHeader(string(t)); ok && perfTimeRe.Match(t) {
			return "perf-script"
		}
		if _, _, ok := splitFolded(t); ok {
			folded++
		}
	}
	if folded > 0 {
		return "folded"
	}
	return ""
}

// Merge combines captures into one (the inputs of `scorch render`). Frames
// and stacks are re-interned; events keep their times only when every input
// has timestamps.
func Merge(cs ...*capture.Capture) *capture.Capture {
	if len(cs) == 1 {
		return cs[0]
	}
	meta := cs[0].Meta
	meta.ID = ""
	b := capture.NewBuilder(meta)
	stamps := true
	start := meta.Start
	for _, c := range cs {
		stamps = stamps && c.Meta.Timestamps
		if c.Meta.Start.Before(start) {
			start = c.Meta.Start
		}
	}
	// Inputs whose clocks cannot be related (perf's monotonic clock next to
	// a wall clock, or files from different days) are overlaid from their
	// starts instead of placed on one time line.
	align := true
	for _, c := range cs {
		if c.Meta.Start.Sub(start) > 24*time.Hour {
			align = false
		}
	}
	if !align {
		start = meta.Start
		b.Meta().Warnings = append(b.Meta().Warnings, "the inputs' clocks are more than a day apart: their timelines are overlaid from each start")
	}
	b.Meta().Start = start
	var dur time.Duration
	var stats capture.Stats
	var ids []uint32
	for _, c := range cs {
		// Times are relative to each input's start: move them onto the
		// earliest one.
		shift := int64(0)
		if align {
			shift = int64(c.Meta.Start.Sub(start))
		}
		dur = max(dur, time.Duration(shift)+c.Meta.Duration)
		frames := make([]uint32, len(c.Frames))
		for i, f := range c.Frames {
			frames[i] = b.Frame(f)
		}
		stacks := make([]uint32, len(c.Stacks))
		for i, st := range c.Stacks {
			ids = ids[:0]
			for _, f := range st {
				ids = append(ids, frames[f])
			}
			stacks[i] = b.Stack(ids)
		}
		for _, e := range c.Events {
			if int(e.Stack) >= len(stacks) {
				continue
			}
			e.Stack = stacks[e.Stack]
			if stamps {
				e.Time += shift
			} else {
				e.Time = 0
			}
			b.Add(e)
		}
		stats.Samples += c.Meta.Stats.Samples
		stats.Lost += c.Meta.Stats.Lost
		stats.BadInputLines += c.Meta.Stats.BadInputLines
		b.Meta().Warnings = append(b.Meta().Warnings, c.Meta.Warnings...)
	}
	m := b.Meta()
	m.Stats = stats
	m.Timestamps = stamps
	m.Duration = dur
	if !stamps {
		m.Duration = 0
	}
	out := b.Capture()
	if stamps {
		out.SortEvents()
	}
	return out
}
