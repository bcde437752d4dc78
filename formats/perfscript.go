package formats

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// perf script output, as `perf script` prints it by default (and with -F
// variations): an event line, then the stack leaf first, one frame a line,
// then a blank line.
//
//	app 4242/4243 [001] 12345.678901:    1001001 cpu-clock:pppH:
//	            55d0c2a1b129 spin+0x9 (/tmp/app)
//	            7f2a1c029d90 __libc_start_call_main+0x80 (/usr/lib/x86_64-linux-gnu/libc.so.6)
var (
	perfHeaderRe = regexp.MustCompile(`^(\S.*?)\s+(\d+)(?:/(\d+))?(?:\s+\[(\d+)\])?(?:\s+(\d+)\.(\d+):)?(?:\s+(\d+))?(?:\s+([^\s:\d][^\s:]*(?::[^\s:]+)*):)?(?:\s+(.*?))?\s*$`)
	perfTimeRe   = regexp.MustCompile(`\s\d+\.\d+:\s`)
	perfFrameRe  = regexp.MustCompile(`^\s*([0-9a-fA-F]+)\s+(.*)$`)
	srclineRe    = regexp.MustCompile(`^\s+\S+:\d+$`)
	goMethodRe   = regexp.MustCompile(`\.\(.*\)\.`)
	perfMapRe    = regexp.MustCompile(`^/tmp/perf-\d+\.map$`)
	offsetRe     = regexp.MustCompile(`\+0x[0-9a-fA-F]+$`)
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
}

func parsePerfHeader(line string) (perfHeader, bool) {
	m := perfHeaderRe.FindStringSubmatch(line)
	if m == nil {
		return perfHeader{}, false
	}
	h := perfHeader{comm: m[1], cpu: -1, event: m[8], rest: m[9]}
	id1, _ := strconv.ParseUint(m[2], 10, 32)
	h.pid, h.tid = uint32(id1), uint32(id1)
	if m[3] != "" {
		id2, _ := strconv.ParseUint(m[3], 10, 32)
		h.tid = uint32(id2)
	}
	if m[4] != "" {
		h.cpu, _ = strconv.Atoi(m[4])
	}
	if m[5] != "" {
		sec, err1 := strconv.ParseInt(m[5], 10, 64)
		frac := (m[6] + "000000000")[:9]
		ns, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 == nil && err2 == nil {
			h.time, h.hasTime = sec*1e9+ns, true
		}
	}
	if m[7] != "" {
		h.period, _ = strconv.ParseInt(m[7], 10, 64)
	}
	return h, true
}

// perfFrame is one parsed stack line: one frame, or several when
// perf-map-agent wrote inlined frames as "a->b->c".
func perfFrames(sym, dso string, out []capture.Frame) []capture.Frame {
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
		f := capture.Frame{Name: tidyName(part), Kind: kind, Module: dso}
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

// tidyName cleans a symbol the way stackcollapse-perf.pl does: argument
// lists and quotes removed (but Go's pkg.(*T).M and C++'s "(anonymous
// namespace)" kept), Java's leading L dropped, ';' made ':'.
func tidyName(s string) string {
	s = strings.ReplaceAll(s, ";", ":")
	if !goMethodRe.MatchString(s) {
		for i := 0; i < len(s); i++ {
			if s[i] == '(' && !strings.HasPrefix(s[i:], "(anonymous namespace)") {
				s = s[:i]
				break
			}
		}
	}
	s = strings.NewReplacer(`"`, "", `'`, "").Replace(s)
	if strings.HasPrefix(s, "L") && strings.Contains(s, "/") {
		s = s[1:]
	}
	return s
}

// parseFrameLine reads "  55d0c2a1b129 spin+0x9 (/tmp/app)".
func parseFrameLine(line string) (sym, dso string, ok bool) {
	m := perfFrameRe.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	rest := strings.TrimSpace(m[2])
	if strings.HasSuffix(rest, ")") {
		if i := strings.LastIndex(rest, " ("); i >= 0 {
			return strings.TrimSpace(rest[:i]), rest[i+2 : len(rest)-1], true
		} else if strings.HasPrefix(rest, "(") {
			return "", rest[1 : len(rest)-1], true
		}
	}
	return rest, "", true
}

type perfSample struct {
	h      perfHeader
	frames []capture.Frame // leaf first
}

// readPerfScript imports `perf script` text following stackcollapse-perf.pl's
// conventions: the period is the weight when printed, only one event type
// is kept, the comm (spaces made '_') is the root frame.
func readPerfScript(data []byte, opts ImportOptions, rep *ImportReport) (*capture.Capture, error) {
	var samples []perfSample
	var cur *perfSample
	var captured time.Time
	var host, kernel string
	lineNo := 0
	event := opts.Event
	for len(data) > 0 {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		lineNo++
		line := string(bytes.TrimRight(raw, "\r"))
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		if line[0] == '#' {
			// perf script --header: "# captured on    : Wed Nov 25 10:35:06 2026"
			key, v, _ := strings.Cut(strings.TrimPrefix(line, "#"), ":")
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
		rep.Lines++
		indented := line[0] == ' ' || line[0] == '\t'
		if indented && cur != nil {
			if sym, dso, ok := parseFrameLine(line); ok {
				cur.frames = perfFrames(sym, dso, cur.frames)
				continue
			}
			if srclineRe.MatchString(line) {
				continue // -F+srcline: the source line of the frame above
			}
		}
		// An event line; without -g perf script indents these too.
		if h, ok := parsePerfHeader(strings.TrimLeft(line, " \t")); ok {
			samples = append(samples, perfSample{h: h})
			cur = &samples[len(samples)-1]
			// Without -g the one frame follows the event on the same line.
			if sym, dso, ok := parseFrameLine(h.rest); ok && (dso != "" || sym != "") {
				cur.frames = perfFrames(sym, dso, cur.frames)
			}
			continue
		}
		rep.bad(lineNo, raw)
		if !indented {
			cur = nil
		}
	}
	if len(samples) == 0 {
		return nil, rep.nothing("perf script")
	}
	if event == "" {
		event = samples[0].h.event
	}
	// Keep one event type; find the time base and whether periods vary.
	kept := samples[:0]
	var t0, t1 int64
	stamps := true
	period := int64(-1)
	for _, s := range samples {
		if s.h.event != event {
			rep.Skipped++
			continue
		}
		if !s.h.hasTime {
			stamps = false
		} else if len(kept) == 0 || s.h.time < t0 {
			t0 = s.h.time
		}
		t1 = max(t1, s.h.time)
		if period == -1 {
			period = s.h.period
		} else if period != s.h.period {
			period = 0
		}
		kept = append(kept, s)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("perf script input has no samples of event %q", event)
	}
	typ, unit := perfEventType(event, kept[0].h.period > 0)
	meta := capture.Meta{Type: typ, Unit: unit, Source: "perf-script", Timestamps: stamps,
		Params: capture.Params{Type: typ}, Host: host, Kernel: kernel}
	if typ != capture.CPU {
		meta.Event = event
		meta.Params.Event = event
	}
	if typ == capture.CPU && period > 0 {
		meta.Params.Hz = int((1e9 + period/2) / period)
	}
	if stamps {
		meta.Start = time.Unix(0, t0).UTC()
		if !captured.IsZero() {
			meta.Start = captured
		}
		meta.Duration = time.Duration(t1 - t0)
		if period > 0 && unit == "ns" {
			meta.Duration += time.Duration(period)
		}
	}
	if rep.Skipped > 0 {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("kept only event %s: %d samples of other events skipped", event, rep.Skipped))
	}
	b := capture.NewBuilder(meta)
	var ids []uint32
	for _, s := range kept {
		ids = ids[:0]
		comm := strings.ReplaceAll(s.h.comm, " ", "_")
		ids = append(ids, b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess}))
		for i := len(s.frames) - 1; i >= 0; i-- {
			ids = append(ids, b.Frame(s.frames[i]))
		}
		e := capture.Event{Stack: b.Stack(ids), PID: s.h.pid, TID: s.h.tid, Value: 1}
		if s.h.period > 0 {
			e.Value = s.h.period
		}
		if s.h.hasTime {
			e.Time = s.h.time - t0
		}
		if s.h.cpu >= 0 {
			e.CPU = uint16(s.h.cpu)
		}
		if s.h.pid == 0 {
			e.Flags |= capture.FlagIdle
		}
		if len(s.frames) > 0 && s.frames[0].Kind == capture.KindKernel {
			e.Flags |= capture.FlagKernel
		}
		b.Add(e)
	}
	c := b.Capture()
	c.Meta.Stats.BadInputLines = uint64(rep.BadLines)
	c.Meta.Stats.Filtered = uint64(rep.Skipped)
	if stamps {
		c.SortEvents()
	}
	return c, nil
}

// perfEventType maps a perf event name to a capture type and the unit of
// its weights.
func perfEventType(event string, periods bool) (capture.Type, string) {
	base, _, _ := strings.Cut(event, ":")
	switch base {
	case "cpu-clock", "task-clock":
		if periods {
			return capture.CPU, "ns"
		}
		return capture.CPU, "samples"
	case "page-faults", "faults", "major-faults", "minor-faults":
		return capture.Mem, "count"
	}
	return capture.PerfEvent, "count"
}
