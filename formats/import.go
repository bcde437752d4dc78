package formats

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/bounded"
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
	// MaxBytes limits the input read and, separately, what gzipped input
	// decompresses to; 0 means DefaultMaxBytes. It also bounds the counts
	// a file claims (see maxRecords).
	MaxBytes int64
}

// DefaultMaxBytes is the import limit of the command line (scorch render,
// scorch diff); the server passes its --max-upload.
const DefaultMaxBytes = 1 << 30

func (o ImportOptions) limit() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
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
// in the report; an input with nothing parseable is an error. Input over the
// limits is an error matching bounded.ErrTooLarge.
func Import(r io.Reader, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	limit := opts.limit()
	// Size the buffer once when the reader knows its length.
	var hint int64
	switch v := r.(type) {
	case interface{ Len() int }:
		hint = int64(v.Len())
	case interface{ Stat() (os.FileInfo, error) }:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			hint = st.Size()
		}
	}
	br := bufio.NewReaderSize(bounded.NewReader(r, limit, "input"), detectBytes)
	head, _ := br.Peek(len(capture.Magic))
	switch {
	case capture.IsCaptureFile(head):
		// Streamed: the file's own claims are checked as it is read.
		c, err := capture.ReadLimit(br, limit)
		if err != nil {
			return nil, &ImportReport{Format: "capture"}, fmt.Errorf("read capture file: %w", err)
		}
		return c, &ImportReport{Format: "capture"}, nil
	case bounded.IsGzip(head):
		return importGzip(br, opts)
	}
	return importStream(br, opts, false, hint)
}

// importGzip decompresses within the limit. The first 64 KiB decide the
// format, so a bomb of zeros or of anything unparseable is refused before it
// is inflated.
func importGzip(r io.Reader, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	zr, err := bounded.Gunzip(r, opts.limit(), "input")
	if err != nil {
		return nil, &ImportReport{Format: "pprof"}, fmt.Errorf("read input: %w", err)
	}
	return importStream(bufio.NewReaderSize(zr, detectBytes), opts, true, 0)
}

// importStream imports what br yields: text formats are parsed as they are
// read, one line in memory at a time (a 900 MB gzipped folded file no
// longer sits in memory whole); binary ones are read whole within the limit.
func importStream(br *bufio.Reader, opts ImportOptions, gzipped bool, hint int64) (*capture.Capture, *ImportReport, error) {
	what := "input"
	if gzipped {
		what = "gzipped input"
	}
	prefix, err := br.Peek(detectBytes)
	if err != nil && err != io.EOF {
		return nil, &ImportReport{}, fmt.Errorf("read %s: %w", what, err)
	}
	if gzipped && isGzip(prefix) {
		return nil, &ImportReport{}, fmt.Errorf("gzip inside gzip is not accepted: decompress the input once")
	}
	cut := len(prefix) == detectBytes
	format := detect(prefix, cut)
	switch {
	case format == "folded" || format == "perf-script":
		rep := &ImportReport{Format: format}
		c, err := parseText(format, &lines{br: br}, opts, rep)
		return c, rep, err
	case format == "" && (!cut || hasBinary(prefix)):
		// Binary that is no profile is refused before it is read further.
		return nil, &ImportReport{}, ErrUnknownFormat
	}
	// A profile, or text whose first line is longer than the prefix, which
	// is read whole to be judged.
	data, err := bounded.ReadAll(br, opts.limit(), "decompressed input", hint)
	if err != nil {
		return nil, &ImportReport{Format: format}, fmt.Errorf("read %s: %w", what, err)
	}
	if gzipped && isGzip(data) {
		return nil, &ImportReport{}, fmt.Errorf("gzip inside gzip is not accepted: decompress the input once")
	}
	return ImportBytes(data, opts)
}

// parseText parses a text format and sets what its import adds.
func parseText(format string, src *lines, opts ImportOptions, rep *ImportReport) (*capture.Capture, error) {
	if format == "perf-script" {
		return readPerfScript(src, opts, rep)
	}
	c, err := readFolded(src, opts, rep)
	if err == nil {
		c.Meta.Stats.Samples = valueSamples(c)
	}
	return c, err
}

// ImportBytes is Import for input already in memory.
func ImportBytes(data []byte, opts ImportOptions) (*capture.Capture, *ImportReport, error) {
	if bounded.IsGzip(data) {
		return importGzip(bytes.NewReader(data), opts)
	}
	rep := &ImportReport{Format: Detect(data)}
	var c *capture.Capture
	var err error
	switch rep.Format {
	case "capture":
		c, err = capture.ReadLimit(bytes.NewReader(data), opts.limit())
		if err != nil {
			err = fmt.Errorf("read capture file: %w", err)
		}
	case "pprof":
		c, err = readPprof(data, opts.limit())
		if err == nil {
			c.Meta.Stats.Samples = valueSamples(c)
		}
	case "perf-script", "folded":
		c, err = parseText(rep.Format, memLines(data), opts, rep)
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

func isGzip(data []byte) bool { return bounded.IsGzip(data) }

// detectBytes is how much of the input Detect looks at (more only to finish
// a line cut there).
const detectBytes = 64 << 10

// Detect names the format of data: "capture", "pprof", "perf-script",
// "folded", or "" when it is none of them.
func Detect(data []byte) string { return detect(data, false) }

// detect is Detect of data that may be only the start of the input (cut):
// then a protobuf may end mid-field and the last line may be unfinished.
func detect(data []byte, cut bool) string {
	switch {
	case capture.IsCaptureFile(data):
		return "capture"
	case isGzip(data):
		return "pprof" // gzip: scorch captures are recognised above
	}
	// An uncompressed pprof profile: a valid walk of protobuf fields with
	// Profile's field numbers and bytes no text has (control characters),
	// which also tells an ASCII-only profile from text.
	if hasBinary(data[:min(len(data), detectBytes)]) && protoWalk(data, 14, cut) {
		return "pprof"
	}
	// Text formats: perf script has indented stack lines or event lines with
	// a "TIME: " field; folded lines end in a number.
	sample := data
	lines := 0
	folded := 0
	for len(sample) > 0 && lines < 200 && len(data)-len(sample) < detectBytes {
		var line []byte
		if i := bytes.IndexByte(sample, '\n'); i >= 0 {
			line, sample = sample[:i], sample[i+1:]
		} else if cut {
			break // unfinished: cannot say
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
		if len(t) <= 4096 {
			if _, ok, _ := parsePerfHeader(string(t)); ok && perfTimeRe.Match(t) {
				return "perf-script"
			}
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

// hasBinary reports a control character other than tab, newline and
// carriage return, which no text format has.
func hasBinary(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

// protoWalk reports whether data is a sequence of protobuf fields numbered
// 1..maxField with valid wire types, to its end (or, when cut, to where it
// was cut).
func protoWalk(data []byte, maxField uint64, cut bool) bool {
	fields := 0
	for len(data) > 0 {
		tag, n := binary.Uvarint(data)
		if n <= 0 {
			return cut && n == 0 && fields > 0
		}
		data = data[n:]
		field, wt := tag>>3, tag&7
		if field == 0 || field > maxField {
			return false
		}
		var skip uint64
		switch wt {
		case 0:
			_, n := binary.Uvarint(data)
			if n <= 0 {
				return cut && n == 0
			}
			skip = uint64(n)
		case 1:
			skip = 8
		case 2:
			l, n := binary.Uvarint(data)
			if n <= 0 {
				return cut && n == 0
			}
			data = data[n:]
			skip = l
		case 5:
			skip = 4
		default:
			return false
		}
		if skip > uint64(len(data)) {
			return cut
		}
		data = data[skip:]
		fields++
	}
	return fields > 0
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
