package formats

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/bounded"
)

// perf script output, as `perf script` prints it by default (and with -F
// variations): an event line, then the stack leaf first, one frame a line,
// then a blank line.
//
//	app 4242/4243 [001] 12345.678901:    1001001 cpu-clock:pppH:
//	            55d0c2a1b129 spin+0x9 (/tmp/app)
//	            7f2a1c029d90 __libc_start_call_main+0x80 (/usr/lib/x86_64-linux-gnu/libc.so.6)
var (
	perfTimeRe = regexp.MustCompile(`\s\d+\.\d+:\s`)
	srclineRe  = regexp.MustCompile(`^\s+\S+:\d+$`)
	goMethodRe = regexp.MustCompile(`\.\(.*\)\.`)
	perfMapRe  = regexp.MustCompile(`^/tmp/perf-\d+\.map$|/jit-\d+\.dump$`)
	offsetRe   = regexp.MustCompile(`\+0x[0-9a-fA-F]+$`)
	// A JVM class descriptor, "Lorg/example/Foo;.bar": Java's however its
	// thread is named (stackcollapse-perf.pl tidies Java only under the
	// comm "java", which misses the JIT threads of other names).
	javaDescRe = regexp.MustCompile(`^L[\w$]+(/[\w$]+)+;`)
)

type perfHeader struct {
	comm     string
	pid, tid uint32
	cpu      int
	time     int64 // ns
	hasTime  bool
	period   int64 // 0: not printed
	event    string
	rest     string

	cpuText, timeText, periodText string // while parsing
}

// parsePerfHeader parses an event line. ok is false when line is not one;
// err says which number of an event line is out of range.
//
// perf script prints, each field optional by -F: the comm (may hold
// spaces), pid/tid or one of them, [cpu], time:, the period, event: and,
// without a call graph, the frame; a tracepoint's payload follows its event.
// The first number (or pid/tid) after which the rest fits that order ends
// the comm; a line that starts with it has no comm.
func parsePerfHeader(line string) (h perfHeader, ok bool, err error) {
	toks := perfTokens(line)
	found := -1
	for i := 1; i < len(toks) && found < 0; i++ {
		if perfTail(line, toks, i, &h) {
			found = i
		}
	}
	if found < 0 && len(toks) > 0 && perfTail(line, toks, 0, &h) {
		found = 0
	}
	if found < 0 {
		return perfHeader{}, false, nil
	}
	if found > 0 {
		h.comm = strings.TrimSpace(line[:toks[found][0]])
	}
	ids := line[toks[found][0]:toks[found][1]]
	p1, p2, two := strings.Cut(ids, "/")
	id1, err := perfNumber("pid", p1, math.MaxUint32)
	if err != nil {
		return perfHeader{}, true, err
	}
	h.pid, h.tid = uint32(id1), uint32(id1)
	if two {
		id2, err := perfNumber("tid", p2, math.MaxUint32)
		if err != nil {
			return perfHeader{}, true, err
		}
		h.tid = uint32(id2)
	}
	if h.cpuText != "" {
		cpu, err := perfNumber("cpu", h.cpuText, math.MaxUint16)
		if err != nil {
			return perfHeader{}, true, err
		}
		h.cpu = int(cpu)
	}
	if h.timeText != "" {
		sec, frac, _ := strings.Cut(h.timeText, ".")
		if h.time, err = perfTime(sec, frac); err != nil {
			return perfHeader{}, true, err
		}
		h.hasTime = true
	}
	if h.periodText != "" {
		period, err := perfNumber("period", h.periodText, math.MaxInt64)
		if err != nil {
			return perfHeader{}, true, err
		}
		h.period = int64(period)
	}
	h.cpuText, h.timeText, h.periodText = "", "", ""
	return h, true, nil
}

// perfTokens gives the [start, end) of every blank-separated token.
func perfTokens(line string) [][2]int {
	var toks [][2]int
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > i {
			toks = append(toks, [2]int{i, j})
		}
		i = j
	}
	return toks
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// perfTail reports whether the tokens from i on are pid[/tid] [cpu] [time:]
// [period] [event:] [rest], filling h's fields but the ids. Rest is a
// tracepoint's payload (after an event) or a frame (an address first).
func perfTail(line string, toks [][2]int, i int, h *perfHeader) bool {
	tok := func(k int) string { return line[toks[k][0]:toks[k][1]] }
	p1, p2, two := strings.Cut(tok(i), "/")
	if !allDigits(p1) || two && !allDigits(p2) {
		return false
	}
	*h = perfHeader{cpu: -1}
	k := i + 1
	if k < len(toks) {
		if t := tok(k); len(t) > 2 && t[0] == '[' && t[len(t)-1] == ']' && allDigits(t[1:len(t)-1]) {
			h.cpuText = t[1 : len(t)-1]
			k++
		}
	}
	if k < len(toks) {
		if t, ok := strings.CutSuffix(tok(k), ":"); ok {
			if sec, frac, dot := strings.Cut(t, "."); dot && allDigits(sec) && allDigits(frac) {
				h.timeText = t
				k++
			}
		}
	}
	// The period is optional and looks like a frame's address: try both.
	for _, withPeriod := range []bool{true, false} {
		j := k
		h.periodText, h.event, h.rest = "", "", ""
		if withPeriod {
			if j >= len(toks) || !allDigits(tok(j)) {
				continue
			}
			h.periodText = tok(j)
			j++
		}
		if j < len(toks) {
			if t := tok(j); len(t) > 1 && t[len(t)-1] == ':' && (t[0] < '0' || t[0] > '9') {
				h.event = t[:len(t)-1]
				j++
			}
		}
		if j == len(toks) {
			return true
		}
		h.rest = strings.TrimSpace(line[toks[j][0]:])
		if h.event != "" || isHex([]byte(tok(j))) && j+1 < len(toks) {
			return true
		}
	}
	return false
}

// perfNumber parses a decimal field of an event line, at most max.
func perfNumber(name, s string, max uint64) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("%s %s is out of range (at most %d)", name, clipDigits(s), max)
	}
	return n, nil
}

// perfTime parses the "SEC.FRAC" timestamp of an event line into
// nanoseconds. Digits past the nanosecond are dropped (perf prints 6 or 9);
// a time past int64 nanoseconds (about 292 years) is an error.
func perfTime(sec, frac string) (int64, error) {
	s, err := strconv.ParseInt(sec, 10, 64)
	if err == nil && s <= math.MaxInt64/int64(time.Second) {
		ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64) // 9 digits: no error
		if s*int64(time.Second) <= math.MaxInt64-ns {
			return s*int64(time.Second) + ns, nil
		}
	}
	return 0, fmt.Errorf("timestamp %s.%s is out of range (at most 9223372036.854775807 seconds)", clipDigits(sec), clipDigits(frac))
}

// clipDigits cuts a run of digits for an error message.
func clipDigits(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// perfFrames appends the frames of one parsed stack line: one, or several when
// perf-map-agent wrote inlined frames as "a->b->c".
func perfFrames(sym, dso string, java bool, out []capture.Frame) []capture.Frame {
	kind := capture.KindUser
	switch {
	case perfMapRe.MatchString(dso):
		kind = capture.KindJIT
	case dso != "[unknown]" && dso != "[vdso]" && dso != "[vsyscall]" &&
		(strings.HasPrefix(dso, "[") || strings.HasSuffix(dso, "vmlinux")):
		kind = capture.KindKernel
	}
	sym = offsetRe.ReplaceAllString(sym, "")
	if sym == "" || sym == "[unknown]" {
		name := capture.FrameUnknown
		if dso != "" && dso != "[unknown]" {
			name = "[" + path.Base(dso) + "]"
		}
		return append(out, capture.Frame{Name: name, Kind: kind, Module: dso})
	}
	for i, part := range strings.Split(sym, "->") {
		f := capture.Frame{Name: tidyName(part, java || javaDescRe.MatchString(part)), Kind: kind, Module: dso}
		if i > 0 {
			f.Kind = capture.KindInlined
		}
		if f.Name != part {
			f.SystemName = part
		}
		out = append(out, f)
	}
	return out
}

var quoteRemover = strings.NewReplacer(`"`, "", `'`, "")

// tidyName cleans a symbol the way stackcollapse-perf.pl does: argument
// lists and quotes removed (but Go's pkg.(*T).M and C++'s "(anonymous
// namespace)" kept), ';' made ':', and for Java (java) the leading L of a
// class name dropped.
func tidyName(s string, java bool) string {
	if !strings.ContainsAny(s, `;("'`) && !(java && strings.HasPrefix(s, "L")) {
		return s
	}
	s = strings.ReplaceAll(s, ";", ":")
	if !goMethodRe.MatchString(s) {
		for i := 0; i < len(s); i++ {
			if s[i] == '(' && !strings.HasPrefix(s[i:], "(anonymous namespace)") {
				s = s[:i]
				break
			}
		}
	}
	s = quoteRemover.Replace(s)
	if java && strings.HasPrefix(s, "L") && strings.Contains(s, "/") {
		s = s[1:]
	}
	return s
}

// parsedFrames are the frames of one stack line, root first.
type parsedFrames struct {
	ids    []uint32
	kernel bool
}

// perfReader holds the state of one perf script import.
type perfReader struct {
	b      *capture.Builder
	event  string
	rep    *ImportReport
	frames map[string]parsedFrames // by the frame text after the address
	// javaFrames are the frames of samples of java, tidied as Java names.
	javaFrames map[string]parsedFrames
	java       bool        // the current sample's comm is java
	stack      []uint32    // the current sample's frames, leaf first
	cur        *perfHeader // the current sample, nil when skipped or none
	hdr        perfHeader
	t0, t1     int64
	stamps     bool
	period     int64 // the common period, 0 when periods vary
	kept       int
	leafKern   bool
}

// perfSampleBytes is the import limit's charge for one perf script sample
// (an event with its timestamp, kept as it is for heatmaps): what bounds
// the memory of a 900 MB stream of one-line samples.
const perfSampleBytes = 256

// readPerfScript imports `perf script` text following stackcollapse-perf.pl's
// conventions: the period is the weight when printed, only one event type
// is kept (the first, or ImportOptions.Event), the comm (spaces made '_') is
// the root frame. It streams: repeated frame lines are parsed once.
func readPerfScript(src *lines, opts ImportOptions, rep *ImportReport) (*capture.Capture, error) {
	r := &perfReader{event: opts.Event, rep: rep, frames: make(map[string]parsedFrames), javaFrames: make(map[string]parsedFrames), stamps: true, period: -1}
	var captured time.Time
	var host, kernel string
	samples := 0
	lineNo := 0
	inSample := false
	for {
		raw, ok := next(src)
		if !ok {
			break
		}
		lineNo++
		line := bytes.TrimRight(raw, "\r")
		trimmed := bytes.TrimLeft(line, " \t")
		if len(bytes.TrimSpace(trimmed)) == 0 {
			r.finish()
			inSample = false
			continue
		}
		// A '#' first, even after spaces, outside a sample's frames is a
		// comment: an event line whose comm starts with '#' cannot be told
		// from one, and reading it as an event gave a process named "#",
		// which folded output cannot carry (its readers skip '#' lines).
		if line[0] == '#' || (trimmed[0] == '#' && !inSample) {
			// perf script --header: "# captured on    : Wed Nov 25 10:35:06 2026"
			key, v, _ := strings.Cut(strings.TrimPrefix(string(line), "#"), ":")
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(key) {
			case "captured on":
				if t, err := time.Parse("Mon Jan _2 15:04:05 2006", v); err == nil {
					captured = t
				}
			case "hostname":
				host = v
			case "os release":
				kernel = v
			}
			continue
		}
		indented := len(trimmed) < len(line)
		if indented && inSample {
			if r.frameLine(trimmed) {
				rep.Lines++
				continue
			}
			if srclineRe.Match(line) || !bytes.ContainsAny(bytes.TrimSpace(trimmed), " \t") {
				// -F+srcline: the source line of the frame above
				// ("cpu.c:8", "??:0", "[kernel.kallsyms][ffffffff81369642]").
				rep.Lines++
				continue
			}
		}
		// Nor is an indented '#' line within a sample that is not one of
		// its frames an event line: it is a comment too (read as an event,
		// it gave a process named "#", as above).
		if trimmed[0] == '#' {
			continue
		}
		rep.Lines++
		// An event line; without -g perf script indents these too.
		if h, ok, err := parsePerfHeader(string(trimmed)); ok {
			if err != nil {
				return nil, fmt.Errorf("perf script line %d: %w", lineNo, err)
			}
			r.finish()
			samples++
			if max := opts.limit() / perfSampleBytes; int64(samples) > max {
				return nil, fmt.Errorf("perf script input: %w", &bounded.LimitError{What: "the samples kept", Limit: max, Unit: fmt.Sprintf("samples (one per %d bytes of the import limit)", perfSampleBytes)})
			}
			inSample = true
			r.start(h)
			// Without -g the one frame follows the event on the same line.
			if h.rest != "" {
				r.frameLine([]byte(h.rest))
			}
			continue
		}
		rep.bad(lineNo, raw)
		if !indented {
			r.finish()
			inSample = false
		}
	}
	if err := src.failed(); err != nil {
		return nil, fmt.Errorf("read perf script input: %w", err)
	}
	r.finish()
	if samples == 0 {
		return nil, rep.nothing("perf script")
	}
	if r.b == nil || r.kept == 0 {
		return nil, fmt.Errorf("perf script input has no samples of event %q", r.event)
	}
	m := r.b.Meta()
	if m.Type.Info().Sampled && r.period > 0 {
		m.Params.Hz = int((1e9 + r.period/2) / r.period)
	}
	m.Timestamps = r.stamps
	m.Host, m.Kernel = host, kernel
	c := r.b.Capture()
	if r.stamps {
		for i := range c.Events {
			c.Events[i].Time -= r.t0
		}
		// perf's timestamps count from boot, not from 1970: the start is
		// known only from --header's "captured on" (zero: unknown).
		m.Start = captured
		m.Duration = time.Duration(r.t1 - r.t0)
		if r.period > 0 && m.Unit == "ns" {
			// The last sample's period, unless the sum would overflow.
			m.Duration += time.Duration(min(r.period, math.MaxInt64-int64(m.Duration)))
		}
		c.SortEvents()
	} else {
		for i := range c.Events {
			c.Events[i].Time = 0
		}
	}
	if rep.Skipped > 0 {
		m.Warnings = append(m.Warnings, fmt.Sprintf("kept only event %s: %d samples of other events skipped", r.event, rep.Skipped))
	}
	m.Stats.BadInputLines = uint64(rep.BadLines)
	m.Stats.Filtered = uint64(rep.Skipped)
	return c, nil
}

// start begins a sample; samples of other events are skipped.
func (r *perfReader) start(h perfHeader) {
	if r.event == "" {
		r.event = h.event
	}
	if h.event != r.event {
		r.rep.Skipped++
		r.cur = nil
		return
	}
	if r.b == nil {
		typ, unit := perfEventType(h.event, h.period > 0)
		meta := capture.Meta{Type: typ, Unit: unit, Source: "perf-script", Params: capture.Params{Type: typ}}
		if !typ.Info().Sampled {
			// A sampled type's event is its clock, which the type names.
			meta.Event, meta.Params.Event = h.event, h.event
		}
		r.b = capture.NewBuilder(meta)
	}
	r.hdr = h
	r.cur = &r.hdr
	r.java = h.comm == "java"
	r.stack = r.stack[:0]
	r.leafKern = false
}

// frameLine adds the frames of one stack line ("55d0c2a1b129 spin+0x9
// (/tmp/app)", leading blanks removed) to the current sample.
func (r *perfReader) frameLine(line []byte) bool {
	sp := bytes.IndexAny(line, " \t")
	if sp <= 0 || !isHex(line[:sp]) {
		return false
	}
	if r.cur == nil {
		return true // a frame of a skipped sample
	}
	rest := bytes.TrimSpace(line[sp:])
	cache := r.frames
	if r.java {
		cache = r.javaFrames
	}
	pf, ok := cache[string(rest)]
	if !ok {
		sym, dso := splitSymDSO(string(rest))
		fs := perfFrames(sym, dso, r.java, nil)
		for _, f := range fs {
			pf.ids = append(pf.ids, r.b.Frame(f))
		}
		pf.kernel = len(fs) > 0 && fs[0].Kind == capture.KindKernel
		cache[string(rest)] = pf
	}
	ids := pf.ids
	if len(r.stack) == 0 {
		r.leafKern = pf.kernel
	}
	// The stack is leaf first and ids are root first.
	for i := len(ids) - 1; i >= 0; i-- {
		r.stack = append(r.stack, ids[i])
	}
	return true
}

// finish adds the current sample as an event.
func (r *perfReader) finish() {
	h := r.cur
	if h == nil {
		return
	}
	r.cur = nil
	comm := strings.ReplaceAll(h.comm, " ", "_")
	if comm == "" {
		comm = fmt.Sprintf(":%d", h.tid) // no comm field: perf's name for an unknown comm
	}
	ids := make([]uint32, 0, len(r.stack)+1)
	ids = append(ids, r.b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess}))
	for i := len(r.stack) - 1; i >= 0; i-- {
		ids = append(ids, r.stack[i])
	}
	e := capture.Event{Stack: r.b.Stack(ids), PID: h.pid, TID: h.tid, Value: 1}
	if h.period > 0 {
		e.Value = h.period
	}
	if h.hasTime {
		e.Time = h.time
		if r.kept == 0 || h.time < r.t0 {
			r.t0 = h.time
		}
		r.t1 = max(r.t1, h.time)
	} else {
		r.stamps = false
	}
	if r.period == -1 {
		r.period = h.period
	} else if r.period != h.period {
		r.period = 0
	}
	if h.cpu >= 0 {
		e.CPU = uint16(h.cpu)
	}
	if h.pid == 0 {
		e.Flags |= capture.FlagIdle
	}
	if r.leafKern {
		e.Flags |= capture.FlagKernel
	}
	r.b.Add(e)
	r.kept++
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return len(b) > 0
}

// splitSymDSO splits "spin+0x9 (/tmp/app)" into the symbol and the DSO.
func splitSymDSO(rest string) (sym, dso string) {
	if strings.HasSuffix(rest, ")") {
		if i := strings.LastIndex(rest, " ("); i >= 0 {
			return strings.TrimSpace(rest[:i]), rest[i+2 : len(rest)-1]
		} else if strings.HasPrefix(rest, "(") {
			return "", rest[1 : len(rest)-1]
		}
	}
	return rest, ""
}

// perfEventType maps a perf event name to the capture type that names it
// (capture.TypeInfo.PerfEvents) and the unit of its weights: with periods,
// a sampled type's are ns of its clock.
func perfEventType(event string, periods bool) (capture.Type, string) {
	base, _, _ := strings.Cut(event, ":")
	for _, t := range capture.Types {
		if ti := t.Info(); slices.Contains(ti.PerfEvents, base) {
			if periods && ti.Sampled {
				return t, "ns"
			}
			return t, t.Unit(base)
		}
	}
	t := capture.OtherEventsType()
	return t, t.Unit(base)
}
