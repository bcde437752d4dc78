package formats

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
)

// perfSamples counts the event lines of a perf script file for one event,
// independently of the parser: lines that are not stack lines and name the
// event.
func perfSamples(t *testing.T, data []byte, event string) (n int, periodSum int64) {
	t.Helper()
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' || line[0] == '\t' || !strings.Contains(line, " "+event+":") {
			continue
		}
		f := strings.Fields(line[:strings.Index(line, " "+event+":")])
		p, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			p = 1
		}
		n++
		periodSum += p
	}
	return n, periodSum
}

func folded(t *testing.T, c *capture.Capture, q capture.Query) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFolded(&buf, c, q); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func importFile(t *testing.T, name string, opts ImportOptions) (*capture.Capture, *ImportReport, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c, rep, err := Import(bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Import(%s): %v", name, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Import(%s) built an invalid capture: %v", name, err)
	}
	return c, rep, data
}

func total(c *capture.Capture, q capture.Query) (sum int64) {
	for _, sv := range c.Aggregate(q) {
		sum += sv.Value
	}
	return sum
}

func TestPerfScriptFixtures(t *testing.T) {
	tests := []struct {
		file      string
		opts      ImportOptions
		event     string
		typ       capture.Type
		unit      string
		wantLines []string // substrings of the folded output
	}{
		{"perf-cpu-clock.txt", ImportOptions{}, "cpu-clock", capture.CPU, "ns",
			[]string{"spinner;", ";main;work_a;leaf_a ", "spin_worker;", ";worker;__GI___libc_write;entry_SYSCALL_64_after_hwframe_[k];"}},
		{"perf-no-callgraph.txt", ImportOptions{}, "cpu-clock", capture.CPU, "ns", []string{"spinner;leaf_a "}},
		// The first sample is a page fault: that event is kept by default.
		{"perf-two-events.txt", ImportOptions{}, "page-faults", capture.Mem, "count", []string{"spinner;_start "}},
		{"perf-two-events.txt", ImportOptions{Event: "cpu-clock"}, "cpu-clock", capture.CPU, "ns", []string{";work_a;leaf_a "}},
		{"perf-system-wide.txt", ImportOptions{}, "cpu-clock", capture.CPU, "ns", []string{"vet;", "runtime."}},
		{"perf-header.txt", ImportOptions{}, "cpu-clock", capture.CPU, "ns", []string{";work_a;leaf_a "}},
		{"perf-jit-hostile.txt", ImportOptions{}, "cpu-clock", capture.CPU, "ns", []string{"jit;__libc_start_call_main;<script>alert_[j] "}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.event, func(t *testing.T) {
			c, rep, data := importFile(t, tt.file, tt.opts)
			if rep.Format != "perf-script" || rep.BadLines != 0 {
				t.Fatalf("report %+v: want perf-script without bad lines", rep)
			}
			n, sum := perfSamples(t, data, tt.event)
			if len(c.Events) != n {
				t.Errorf("%d events, want %d samples of %s", len(c.Events), n, tt.event)
			}
			if got := total(c, capture.Query{IncludeIdle: true}); got != sum {
				t.Errorf("total %d, want the sum of the periods %d", got, sum)
			}
			if c.Meta.Type != tt.typ || c.Meta.Unit != tt.unit || !c.Meta.Timestamps {
				t.Errorf("meta %s/%s timestamps %v, want %s/%s with timestamps", c.Meta.Type, c.Meta.Unit, c.Meta.Timestamps, tt.typ, tt.unit)
			}
			out := folded(t, c, capture.Query{IncludeIdle: true})
			// What flamegraph.pl accepts: frames, blanks, an integer count.
			valid := regexp.MustCompile(`^[^;\s][^;\n]*(;[^;\n]+)* \d+$`)
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !valid.MatchString(line) || strings.Contains(line, ";;") {
					t.Fatalf("folded line flamegraph.pl would ignore: %q", line)
				}
			}
			for _, want := range tt.wantLines {
				if !strings.Contains(out, want) {
					t.Errorf("folded output lacks %q:\n%s", want, firstLines(out, 5))
				}
			}
			for _, e := range c.Events {
				if e.PID == 0 && e.Flags&capture.FlagIdle == 0 || e.TID == 0 && e.PID != 0 {
					t.Fatalf("event without pid/tid: %+v", e)
				}
				if e.Time < 0 || e.Time > int64(c.Meta.Duration) {
					t.Fatalf("event time %d outside 0..%d", e.Time, c.Meta.Duration)
				}
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestPerfScriptDetails(t *testing.T) {
	c, _, _ := importFile(t, "perf-cpu-clock.txt", ImportOptions{})
	if c.Meta.Params.Hz != 999 {
		t.Errorf("hz %d, want 999 from the 1001001 ns period", c.Meta.Params.Hz)
	}
	threads := map[uint32]bool{}
	kernelLeaves := 0
	for _, e := range c.Events {
		threads[e.TID] = true
		if e.Flags&capture.FlagKernel != 0 {
			kernelLeaves++
		}
	}
	if c.Meta.Stats.Samples != uint64(len(c.Events)) || kernelLeaves == 0 || kernelLeaves == len(c.Events) {
		t.Errorf("stats say %d samples for %d events; %d samples in the kernel", c.Meta.Stats.Samples, len(c.Events), kernelLeaves)
	}
	if len(threads) != 2 {
		t.Errorf("%d threads, want the main thread and the worker", len(threads))
	}
	if !slices.IsSortedFunc(c.Events, func(a, b capture.Event) int { return int(a.Time - b.Time) }) || c.Events[0].Time != 0 {
		t.Errorf("events not in time order from 0")
	}
	h, _, hdata := importFile(t, "perf-header.txt", ImportOptions{})
	if want := time.Date(2026, 11, 25, 10, 35, 6, 0, time.UTC); !h.Meta.Start.Equal(want) {
		t.Errorf("start %v, want %v from '# captured on'", h.Meta.Start, want)
	}
	if h.Meta.Host == "" || !strings.Contains(string(hdata), "# hostname : "+h.Meta.Host+"\n") || h.Meta.Kernel == "" {
		t.Errorf("host %q, kernel %q: want them from the header", h.Meta.Host, h.Meta.Kernel)
	}
	// Monotonic perf times and a wall clock cannot be aligned: overlaid.
	m := Merge(c, h)
	if m.Meta.Duration > c.Meta.Duration+h.Meta.Duration || len(m.Meta.Warnings) == 0 {
		t.Errorf("merged duration %v, warnings %v", m.Meta.Duration, m.Meta.Warnings)
	}
	sys, _, data := importFile(t, "perf-system-wide.txt", ImportOptions{})
	if bytes.HasSuffix(data, []byte("\n\n")) {
		t.Fatal("fixture should end without a blank line")
	}
	cpus := map[uint16]bool{}
	for _, e := range sys.Events {
		cpus[e.CPU] = true
	}
	if len(cpus) < 2 {
		t.Errorf("cpus %v: want the [cpu] field of both CPUs", cpus)
	}
	two, rep, _ := importFile(t, "perf-two-events.txt", ImportOptions{})
	if rep.Skipped == 0 || len(two.Meta.Warnings) == 0 || !strings.Contains(two.Meta.Warnings[0], "kept only event page-faults") {
		t.Errorf("skipping page-faults samples is not reported: %+v %v", rep, two.Meta.Warnings)
	}
}

func TestParsePerfHeader(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want perfHeader
	}{
		{"spinner 22271  2243.058366:    1001001 cpu-clock: ", true,
			perfHeader{comm: "spinner", pid: 22271, tid: 22271, cpu: -1, time: 2243058366000, hasTime: true, period: 1001001, event: "cpu-clock"}},
		{"spin worker 4/5 [001] 1.5: 7 cycles:u:", true,
			perfHeader{comm: "spin worker", pid: 4, tid: 5, cpu: 1, time: 1500000000, hasTime: true, period: 7, event: "cycles:u"}},
		{"spinner 22271  2243.058366: ", true,
			perfHeader{comm: "spinner", pid: 22271, tid: 22271, cpu: -1, time: 2243058366000, hasTime: true}},
		{"spinner 22271  2243.058366:", true,
			perfHeader{comm: "spinner", pid: 22271, tid: 22271, cpu: -1, time: 2243058366000, hasTime: true}},
		{"app 9 [000] 3.000001: sched:sched_switch: prev_comm=app prev_pid=9", true,
			perfHeader{comm: "app", pid: 9, tid: 9, cpu: 0, time: 3000001000, hasTime: true, event: "sched:sched_switch", rest: "prev_comm=app prev_pid=9"}},
		{"spinner 22992  2256.121492:    1001001 cpu-clock:      55e3d5f551c1 leaf_a+0x38 (/tmp/fx/spinner)", true,
			perfHeader{comm: "spinner", pid: 22992, tid: 22992, cpu: -1, time: 2256121492000, hasTime: true, period: 1001001, event: "cpu-clock", rest: "55e3d5f551c1 leaf_a+0x38 (/tmp/fx/spinner)"}},
		{"no numbers here", false, perfHeader{}},
	}
	for _, tt := range tests {
		h, ok, err := parsePerfHeader(tt.line)
		if ok != tt.ok || err != nil || (ok && h != tt.want) {
			t.Errorf("parsePerfHeader(%q) = %+v, %v, %v; want %+v", tt.line, h, ok, err, tt.want)
		}
	}
}

func TestPerfScriptBadLines(t *testing.T) {
	in := "app 1/1 [000] 1.000000: 1000 cpu-clock:\n\t1234 main+0x1 (/bin/app)\n\nthis is garbage\n\ngarbage again\napp 1/1 [000] 1.001000: 1000 cpu-clock:\n\t1234 main+0x1 (/bin/app)"
	c, rep, err := Import(strings.NewReader(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BadLines != 2 || rep.FirstBadLine != 4 || rep.FirstBadText != "this is garbage" {
		t.Errorf("report %+v: want 2 bad lines, the first line 4", rep)
	}
	if len(c.Events) != 2 || c.Meta.Stats.BadInputLines != 2 {
		t.Errorf("%d events, %d bad lines in stats; want 2 and 2", len(c.Events), c.Meta.Stats.BadInputLines)
	}
	_, _, err = Import(strings.NewReader("\tnot a stack\n\tneither\n"), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("nothing parseable: err %v, want one naming line 1", err)
	}
}

// TestPerfScriptNumbersOutOfRange: numbers of an event line that do not
// fit (hostile or corrupt input) fail the import with an error naming the
// line and the field, instead of wrapping around or being clamped silently.
func TestPerfScriptNumbersOutOfRange(t *testing.T) {
	const stack = "\t1234 main+0x1 (/bin/app)\n\n"
	ok := "app 1/1 [000] 1.000000: 1000 cpu-clock:\n" + stack
	tests := []struct {
		name, in string
		err      string // "" when the import must succeed
		check    func(*capture.Capture) string
	}{
		{"huge seconds", ok + "app 1/1 [000] 99999999999999999999.1: 1000 cpu-clock:\n" + stack,
			"line 4: timestamp 99999999999999999999.1 is out of range", nil},
		{"one ns past int64", ok + "app 1/1 [000] 9223372036.854775808: 1000 cpu-clock:\n" + stack,
			"line 4: timestamp 9223372036.854775808 is out of range", nil},
		{"seconds past int64 ns", "app 1/1 [000] 9300000000.0: 1000 cpu-clock:\n" + stack,
			"line 1: timestamp 9300000000.0 is out of range", nil},
		{"pid", "app 4294967296/1 [000] 1.0: 1000 cpu-clock:\n" + stack, "line 1: pid 4294967296 is out of range", nil},
		{"tid", "app 1/99999999999 [000] 1.0: 1000 cpu-clock:\n" + stack, "line 1: tid 99999999999 is out of range", nil},
		{"cpu", "app 1/1 [65536] 1.0: 1000 cpu-clock:\n" + stack, "line 1: cpu 65536 is out of range", nil},
		{"period", "app 1/1 [000] 1.0: 9223372036854775808 cpu-clock:\n" + stack, "line 1: period 9223372036854775808 is out of range", nil},
		{"30 fraction digits", "app 1/1 [000] 1.0: 1000 cpu-clock:\n" + stack + "app 1/1 [000] 1.123456789999999999999999999999: 1000 cpu-clock:\n" + stack, "",
			func(c *capture.Capture) string {
				if want := time.Duration(123456789 + 1000); c.Meta.Duration != want {
					return fmt.Sprintf("duration %v, want %v (digits past the ns dropped, plus the last period)", c.Meta.Duration, want)
				}
				return ""
			}},
		{"largest time", "app 1/1 [000] 0.000000: 1000 cpu-clock:\n" + stack + "app 1/1 [001] 9223372036.854775807: 1000 cpu-clock:\n" + stack, "",
			func(c *capture.Capture) string {
				if c.Meta.Duration < 0 || c.Events[1].Time != 9223372036854775807 || c.Events[1].CPU != 1 {
					return fmt.Sprintf("duration %v, last event %+v", c.Meta.Duration, c.Events[1])
				}
				return ""
			}},
		{"largest fields", "app 4294967295/4294967295 [65535] 1.0: 9223372036854775807 cpu-clock:\n" + stack, "",
			func(c *capture.Capture) string {
				e := c.Events[0]
				if e.PID != 4294967295 || e.TID != 4294967295 || e.CPU != 65535 || e.Value != 9223372036854775807 {
					return fmt.Sprintf("event %+v", e)
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Import(strings.NewReader(tt.in), ImportOptions{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestHostileJITNameInSVG: a perf-map symbol written as markup reaches
// the SVG as text only.
func TestHostileJITNameInSVG(t *testing.T) {
	c, _, _ := importFile(t, "perf-jit-hostile.txt", ImportOptions{})
	var buf bytes.Buffer
	if err := flamegraph.Render(&buf, c, capture.Query{}, flamegraph.Options{MinWidth: "0"}); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	if n := strings.Count(svg, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only scorch's own", n)
	}
	if !strings.Contains(svg, "<title>&lt;script&gt;alert\n") {
		t.Errorf("the JIT frame is not in the SVG as escaped text")
	}
	dec := xml.NewDecoder(&buf)
	for {
		if _, err := dec.Token(); err != nil {
			if err != io.EOF {
				t.Fatalf("not well-formed XML: %v", err)
			}
			break
		}
	}
}

func TestTidyName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"foo(int, char*)", "foo"},
		{"main.(*Server).Serve", "main.(*Server).Serve"},
		{"(anonymous namespace)::helper(int)", "(anonymous namespace)::helper"},
		{"Ljava/lang/Thread;::run", "java/lang/Thread:::run"},
		{`say "hi"`, "say hi"},
		{"Lonely", "Lonely"},
	}
	for _, tt := range tests {
		if got := tidyName(tt.in, true); got != tt.want {
			t.Errorf("tidyName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

func TestFoldedRoundTrip(t *testing.T) {
	in := strings.Join([]string{
		"app;_start;main;alpha;beta;spin 412",
		"app;main;napper;clock_nanosleep_[k];[blocked] 2981034112",
		"app;reader;wait_for_poke;read_[k];--;write_[w];poke_reader_[w];poker_[w];app 3004331",
		"app;main;alloc_big;malloc 10485760",
		"java;Interpreter;hot_[j];inl_[i] 7",
		"app;libc.so.6+0x1a2b 3",
	}, "\n") + "\n"
	c, rep, err := Import(strings.NewReader(in+"app;_start;main;alpha;beta;spin 8\n"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != "folded" || rep.Lines != 7 {
		t.Fatalf("report %+v", rep)
	}
	out := folded(t, c, capture.Query{})
	want := strings.Replace(in, " 412", " 420", 1) // repeated stacks are summed
	if !slices.Equal(sortedLines(out), sortedLines(want)) {
		t.Errorf("round trip differs:\n%s\nwant\n%s", out, want)
	}
	kinds := map[string]capture.FrameKind{}
	for _, f := range c.Frames {
		kinds[f.FoldedName()] = f.Kind
	}
	for name, k := range map[string]capture.FrameKind{"read_[k]": capture.KindKernel, "hot_[j]": capture.KindJIT, "inl_[i]": capture.KindInlined,
		"[blocked]": capture.KindSynthetic, "--": capture.KindSynthetic, "app": capture.KindProcess, "write_[w]": capture.KindUser} {
		if kinds[name] != k {
			t.Errorf("%s: kind %v, want %v", name, kinds[name], k)
		}
	}
	bad := "a;b 1\nno count here\nc;d 2.5\n"
	c, rep, err = Import(strings.NewReader(bad), ImportOptions{})
	if err != nil || rep.BadLines != 1 || rep.FirstBadLine != 2 || total(c, capture.Query{}) != 4 {
		t.Errorf("bad line handling: %+v, %v", rep, err)
	}
}

func TestPprofRoundTrip(t *testing.T) {
	c, _, _ := importFile(t, "perf-cpu-clock.txt", ImportOptions{})
	var buf bytes.Buffer
	if err := WritePprof(&buf, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte{0x1f, 0x8b}) {
		t.Fatal("pprof output is not gzipped")
	}
	p, err := profile.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "samples" || p.SampleType[1].Type != "cpu" || p.SampleType[1].Unit != "nanoseconds" {
		t.Errorf("sample types %v", p.SampleType)
	}
	var samples, ns int64
	comms := map[string]bool{}
	for _, s := range p.Sample {
		samples += s.Value[0]
		ns += s.Value[1]
		comms[s.Label["comm"][0]] = true
		if len(s.NumLabel["pid"]) != 1 || len(s.NumLabel["tid"]) != 1 {
			t.Fatalf("sample without pid/tid labels")
		}
	}
	if samples != int64(len(c.Events)) || ns != total(c, capture.Query{}) {
		t.Errorf("pprof totals %d samples %d ns, want %d and %d", samples, ns, len(c.Events), total(c, capture.Query{}))
	}
	if !comms["spinner"] || !comms["spin_worker"] {
		t.Errorf("comm labels %v", comms)
	}
	files := map[string]bool{}
	for _, m := range p.Mapping {
		files[m.File] = true
	}
	if !files["[kernel.kallsyms]"] || !files["/tmp/fx/spinner"] {
		t.Errorf("mappings %v lack the kernel and the program", files)
	}
	back, rep, err := Import(bytes.NewReader(buf.Bytes()), ImportOptions{})
	if err != nil || rep.Format != "pprof" {
		t.Fatalf("re-import: %v %+v", err, rep)
	}
	if got, want := sortedLines(folded(t, back, capture.Query{})), sortedLines(folded(t, c, capture.Query{})); !slices.Equal(got, sortedLines(scaleFolded(want))) {
		t.Errorf("pprof round trip changes the stacks:\n%s\nwant\n%s", strings.Join(got[:3], "\n"), strings.Join(want[:3], "\n"))
	}
}

// scaleFolded turns ns values of 1001001 per sample into sample counts, the
// first sample type that a re-import reads.
func scaleFolded(lines []string) string {
	var out []string
	for _, l := range lines {
		i := strings.LastIndexByte(l, ' ')
		v, _ := strconv.ParseInt(l[i+1:], 10, 64)
		out = append(out, l[:i+1]+strconv.FormatInt(v/1001001, 10))
	}
	return strings.Join(out, "\n")
}

func TestPprofSampleTypes(t *testing.T) {
	tests := []struct {
		typ   capture.Type
		event string
		want  string
	}{
		{capture.CPU, "", "samples/count,cpu/nanoseconds"},
		{capture.OffCPU, "", "off_cpu/nanoseconds"},
		{capture.Wakeup, "", "wakeup/nanoseconds"},
		{capture.OffWake, "", "off_wake/nanoseconds"},
		{capture.Mem, "malloc", "alloc_space/bytes,alloc_objects/count,inuse_space/bytes,inuse_objects/count"},
		{capture.Mem, "page-faults", "page_faults/count"},
		{capture.CPI, "", "cycles/count,instructions/count"},
		{capture.PerfEvent, "cache-misses", "events/count"},
	}
	for _, tt := range tests {
		b := capture.NewBuilder(capture.Meta{Type: tt.typ, Event: tt.event, Params: capture.Params{Hz: 49}})
		proc := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
		sep := b.Frame(capture.Frame{Name: "--", Kind: capture.KindSynthetic})
		waker := b.Frame(capture.Frame{Name: "wake_up_[k]", Kind: capture.KindKernel, Waker: true, Module: "[kernel.kallsyms]", Offset: 0xffffffff81000010})
		b.Add(capture.Event{Stack: b.Stack([]uint32{proc, sep, waker, proc}), Value: 5, Value2: 9, PID: 3, TID: 4})
		p := Profile(b.Capture(), capture.Query{})
		if err := p.CheckValid(); err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
		var got []string
		for _, st := range p.SampleType {
			got = append(got, st.Type+"/"+st.Unit)
		}
		if g := strings.Join(got, ","); g != tt.want || strings.Contains(g, "-") {
			t.Errorf("%s %s: sample types %s, want %s", tt.typ, tt.event, g, tt.want)
		}
		if period := int64(time.Second) / 49; tt.typ == capture.CPU && (p.Period != period || p.Sample[0].Value[1] != 5*period) {
			t.Errorf("cpu period %d, cpu value %d", p.Period, p.Sample[0].Value[1])
		}
		if loc := p.Sample[0].Location[1]; loc.Mapping == nil || loc.Address != 0xffffffff81000010 || loc.Mapping.Start > loc.Address {
			t.Errorf("kernel location %+v should keep its kernel address", loc)
		}
	}
}

func TestPprofInlinedAndMem(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.Mem, Event: "malloc"})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main", Module: "/bin/app", BuildID: "abcd", Offset: 0x1100})
	inl := b.Frame(capture.Frame{Name: "helper", Kind: capture.KindInlined, Module: "/bin/app", BuildID: "abcd", Offset: 0x1100})
	malloc := b.Frame(capture.Frame{Name: "malloc", Module: "/lib/libc.so.6", Offset: 0x9000})
	st := b.Stack([]uint32{app, main, inl, malloc})
	b.Add(capture.Event{Stack: st, Value: 4096, Value2: 1, PID: 7, TID: 8})
	b.Add(capture.Event{Stack: st, Value: 1024, Value2: 1, PID: 7, TID: 8, Flags: capture.FlagInuse})
	c := b.Capture()
	p := Profile(c, capture.Query{})
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	if got := strings.Join(types, ","); got != "alloc_space/bytes,alloc_objects/count,inuse_space/bytes,inuse_objects/count" {
		t.Errorf("sample types %s", got)
	}
	if len(p.Sample) != 1 || !slices.Equal(p.Sample[0].Value, []int64{5120, 2, 1024, 1}) {
		t.Fatalf("samples %v", p.Sample[0].Value)
	}
	locs := p.Sample[0].Location
	if len(locs) != 2 || len(locs[1].Line) != 2 || locs[1].Line[0].Function.Name != "helper" || locs[1].Line[1].Function.Name != "main" {
		t.Fatalf("inlined frame should be an extra line of main's location: %+v", locs)
	}
	m := locs[1].Mapping
	if m.File != "/bin/app" || m.BuildID != "abcd" || locs[1].Address-m.Start+m.Offset != 0x1100 {
		t.Errorf("mapping %+v address %#x: want the file offset 0x1100", m, locs[1].Address)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, _, err := Import(&buf, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := folded(t, back, capture.Query{}); got != "app;main;helper_[i];malloc 5120\n" {
		t.Errorf("re-imported alloc view %q", got)
	}
	if got := folded(t, back, capture.Query{View: "inuse"}); got != "app;main;helper_[i];malloc 1024\n" {
		t.Errorf("re-imported inuse view %q", got)
	}
}

var spinSink int

//go:noinline
func spinForProfile(d time.Duration) int {
	n := 0
	defer func() { spinSink = n }()
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 1000; i++ {
			n += i * i
		}
	}
	return n
}

func TestImportGoCPUProfile(t *testing.T) {
	for attempt := 0; attempt < 5; attempt++ {
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			t.Skipf("cannot start a Go CPU profile: %v", err)
		}
		spinForProfile(300 * time.Millisecond)
		pprof.StopCPUProfile()
		c, rep, err := Import(&buf, ImportOptions{})
		if err != nil {
			continue // no samples yet on a slow machine
		}
		if rep.Format != "pprof" || c.Meta.Type != capture.CPU || c.Meta.Unit != "samples" || c.Meta.Params.Hz != 100 {
			t.Fatalf("meta %+v", c.Meta)
		}
		if out := folded(t, c, capture.Query{}); strings.Contains(out, "spinForProfile") {
			return
		}
	}
	t.Fatal("the Go CPU profile never showed spinForProfile")
}

func TestGoToolPprof(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	c, _, _ := importFile(t, "perf-cpu-clock.txt", ImportOptions{})
	file := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePprof(f, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The SVG's total is the pprof cpu total.
	var svg bytes.Buffer
	if err := flamegraph.Render(&svg, c, capture.Query{}, flamegraph.Options{}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`data-total="(\d+)"`).FindSubmatch(svg.Bytes())
	if m == nil || string(m[1]) != strconv.FormatInt(total(c, capture.Query{}), 10) {
		t.Fatalf("svg total %q, want %d", m, total(c, capture.Query{}))
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", "-sample_index=cpu", "-unit=ns", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	if want := "of " + string(m[1]) + "ns total"; !strings.Contains(string(out), want) {
		t.Errorf("pprof -top total differs from the SVG's (want %q):\n%s", want, out)
	}
	out, err = exec.Command(gobin, "tool", "pprof", "-top", "-sample_index=samples", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	if want := "of " + strconv.Itoa(len(c.Events)) + " total"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "leaf_a") {
		t.Errorf("pprof -top does not agree (want %q and leaf_a):\n%s", want, out)
	}
	out, err = exec.Command(gobin, "tool", "pprof", "-traces", file).CombinedOutput()
	if err != nil || !regexp.MustCompile(`comm:\s+spin_worker`).Match(out) || !strings.Contains(string(out), "work_a") {
		t.Errorf("pprof -traces: %v\n%s", err, firstLines(string(out), 20))
	}
}

func TestSpeedscope(t *testing.T) {
	c, _, _ := importFile(t, "perf-cpu-clock.txt", ImportOptions{})
	var buf bytes.Buffer
	if err := WriteSpeedscope(&buf, c, capture.Query{From: 0.1}); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Schema string `json:"$schema"`
		Shared struct {
			Frames []struct{ Name string } `json:"frames"`
		} `json:"shared"`
		Profiles []struct {
			Type     string  `json:"type"`
			Unit     string  `json:"unit"`
			EndValue int64   `json:"endValue"`
			Samples  [][]int `json:"samples"`
			Weights  []int64 `json:"weights"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if f.Schema != SpeedscopeSchema || len(f.Profiles) != 1 {
		t.Fatalf("schema %q, %d profiles", f.Schema, len(f.Profiles))
	}
	p := f.Profiles[0]
	n := len(c.Aggregate(capture.Query{From: 0.1}))
	var sel int
	for _, e := range c.Events {
		if e.Time >= int64(100*time.Millisecond) {
			sel++
		}
	}
	if p.Type != "sampled" || p.Unit != "nanoseconds" || len(p.Samples) != sel || len(p.Weights) != sel || n == 0 {
		t.Errorf("profile %s/%s with %d samples, want %d (one per event from 0.1 s)", p.Type, p.Unit, len(p.Samples), sel)
	}
	var sum int64
	for _, w := range p.Weights {
		sum += w
	}
	if sum != total(c, capture.Query{From: 0.1}) || p.EndValue != sum {
		t.Errorf("weights sum %d, endValue %d, want %d", sum, p.EndValue, total(c, capture.Query{From: 0.1}))
	}
	for _, s := range p.Samples {
		for _, i := range s {
			if i < 0 || i >= len(f.Shared.Frames) {
				t.Fatalf("frame index %d out of range", i)
			}
		}
		if f.Shared.Frames[s[0]].Name != "spinner" && f.Shared.Frames[s[0]].Name != "spin_worker" {
			t.Fatalf("sample root %q is not a process", f.Shared.Frames[s[0]].Name)
		}
	}
}

func TestSpeedscopeCPUSamples(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Params: capture.Params{Hz: 100}, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: "main"})})
	for i := 0; i < 3; i++ {
		b.Add(capture.Event{Stack: st, Value: 1, Time: int64(i) * 1e7})
	}
	var buf bytes.Buffer
	if err := WriteSpeedscope(&buf, b.Capture(), capture.Query{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"unit":"nanoseconds","startValue":0,"endValue":30000000`) || !strings.Contains(buf.String(), `"weights":[10000000,10000000,10000000]`) {
		t.Errorf("100 Hz samples should weigh 10 ms each: %s", buf.String())
	}
}

func TestDetectAndMerge(t *testing.T) {
	c, _, _ := importFile(t, "perf-no-callgraph.txt", ImportOptions{})
	var capBuf, pb bytes.Buffer
	if err := capture.Write(&capBuf, c); err != nil {
		t.Fatal(err)
	}
	if err := WritePprof(&pb, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		data []byte
		want string
	}{
		{capBuf.Bytes(), "capture"},
		{pb.Bytes(), "pprof"},
		{[]byte("a;b 1\n"), "folded"},
		{[]byte("# comment\napp 1 [000] 1.5: 1 cpu-clock:\n"), "perf-script"},
		{[]byte("hello world\n"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := Detect(tt.data); got != tt.want {
			t.Errorf("Detect(%.20q) = %q, want %q", tt.data, got, tt.want)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("app;main;x 5\n"))
	zw.Close()
	if z, rep, err := Import(&gz, ImportOptions{}); err != nil || rep.Format != "folded" || total(z, capture.Query{}) != 5 {
		t.Errorf("gzipped folded input: %v %+v", err, rep)
	}
	back, rep, err := Import(&capBuf, ImportOptions{})
	if err != nil || rep.Format != "capture" || len(back.Events) != len(c.Events) {
		t.Fatalf("capture import: %v %+v", err, rep)
	}
	if _, _, err := Import(strings.NewReader("hello world\n"), ImportOptions{}); err != ErrUnknownFormat {
		t.Errorf("unknown input: %v", err)
	}
	m := Merge(c, back)
	if len(m.Events) != 2*len(c.Events) || total(m, capture.Query{}) != 2*total(c, capture.Query{}) || len(m.Stacks) != len(c.Stacks) {
		t.Errorf("merge: %d events %d stacks", len(m.Events), len(m.Stacks))
	}
}

func FuzzImport(f *testing.F) {
	for _, name := range []string{"perf-no-callgraph.txt", "perf-system-wide.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:min(len(data), 2000)])
	}
	f.Add([]byte("a;b;c 10\na;--;b_[w];app 3\n"))
	f.Add([]byte("app 1/2 [003] 5.000001: 77 cycles:u:\n\t1 a->b->c+0x1 (/tmp/perf-1.map)\n"))
	// Numbers at and past the limits of their fields.
	f.Add([]byte("app 1/1 [000] 0.0: 1000 cpu-clock:\n\t1 a (/x)\n\napp 4294967295/4294967295 [65535] 9223372036.854775807: 9223372036854775807 cpu-clock:\n\t1 a (/x)\n"))
	f.Add([]byte("app 1/1 [000] 9223372036.854775808: 1000 cpu-clock:\n\t1 a (/x)\n"))
	f.Add([]byte("app 1 99999999999999999999.123456789012345678901234567890: 1000 cpu-clock:\n\t1 a (/x)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, rep, err := Import(bytes.NewReader(data), ImportOptions{})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("invalid capture from %q: %v", data, err)
		}
		if rep.Format == "perf-script" {
			// Times are from the first sample on, within the duration.
			if c.Meta.Duration < 0 {
				t.Fatalf("negative duration %v from %q", c.Meta.Duration, data)
			}
			for _, e := range c.Events {
				if e.Time < 0 || e.Time > int64(c.Meta.Duration) || e.Value <= 0 {
					t.Fatalf("event %+v out of range (duration %v) from %q", e, c.Meta.Duration, data)
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteFolded(&buf, c, capture.Query{IncludeIdle: true}); err != nil {
			t.Fatal(err)
		}
		if err := WritePprof(&buf, c, capture.Query{}); err != nil {
			t.Fatal(err)
		}
		if err := WriteSpeedscope(&buf, c, capture.Query{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPprofReadsBackEveryType writes a capture of every type and unit the
// type table has pprof sample types for and imports it: it reads back as
// that type (with the event its sample types name), by the table alone.
func TestPprofReadsBackEveryType(t *testing.T) {
	for _, typ := range capture.Types {
		info := typ.Info()
		for unit, sts := range info.Pprof {
			name := fmt.Sprintf("%s/%s", typ, unit)
			t.Run(name, func(t *testing.T) {
				event := "malloc"
				for _, st := range sts {
					if st.Event != "" {
						event = st.Event
					}
				}
				meta := capture.Meta{Type: typ, Unit: unit, Event: event, Params: capture.Params{Hz: 49}}
				if unit == "" {
					meta.Unit = typ.Unit(event)
				}
				b := capture.NewBuilder(meta)
				proc := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
				fn := b.Frame(capture.Frame{Name: "work", Kind: capture.KindUser, Module: "/tmp/app", Offset: 0x40})
				b.Add(capture.Event{Stack: b.Stack([]uint32{proc, fn}), Value: 1000, Value2: 7, PID: 3, TID: 4})
				var buf bytes.Buffer
				if err := WritePprof(&buf, b.Capture(), capture.Query{}); err != nil {
					t.Fatal(err)
				}
				back, rep, err := ImportBytes(buf.Bytes(), ImportOptions{})
				if err != nil || rep.Format != "pprof" {
					t.Fatalf("import: %v %+v", err, rep)
				}
				if back.Meta.Type != typ {
					t.Errorf("sample types %v read back as %s, want %s", sts, back.Meta.Type, typ)
				}
				for _, st := range sts {
					if st.Event != "" && back.Meta.Event != st.Event {
						t.Errorf("event %q, want %q", back.Meta.Event, st.Event)
					}
				}
				if len(back.Events) == 0 || back.Events[0].Value <= 0 {
					t.Errorf("events %+v lost the value", back.Events)
				}
			})
		}
	}
}

var heapSink [][]byte

// TestImportGoHeapProfile imports Go's heap profile (alloc_* and inuse_*)
// as a mem capture whose inuse view is a part of its alloc view, and one of
// only the inuse_* types as its in-use bytes.
func TestImportGoHeapProfile(t *testing.T) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for i := 0; i < 200; i++ {
		heapSink = append(heapSink, make([]byte, 4096))
	}
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	heapSink = nil
	c, rep, err := ImportBytes(buf.Bytes(), ImportOptions{})
	if err != nil || rep.Format != "pprof" {
		t.Fatalf("import: %v %+v", err, rep)
	}
	if c.Meta.Type != capture.Mem || c.Meta.Unit != "bytes" {
		t.Fatalf("meta %+v, want a mem capture in bytes", c.Meta)
	}
	alloc, inuse := total(c, capture.Query{View: "alloc"}), total(c, capture.Query{View: "inuse"})
	if inuse < 200*4096 || alloc < inuse {
		t.Errorf("alloc %d inuse %d bytes: want at least the 800 KiB kept, in use within allocated", alloc, inuse)
	}

	p, err := profile.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	p.SampleType, p.DefaultSampleType = p.SampleType[2:], "inuse_space" // inuse_objects, inuse_space
	for _, s := range p.Sample {
		s.Value = s.Value[2:]
	}
	var in bytes.Buffer
	if err := p.WriteUncompressed(&in); err != nil {
		t.Fatal(err)
	}
	c, _, err = ImportBytes(in.Bytes(), ImportOptions{})
	if err != nil || c.Meta.Type != capture.Mem || c.Meta.Unit != "bytes" {
		t.Fatalf("inuse-only import: %v %+v", err, c)
	}
	if got := total(c, capture.Query{View: "alloc"}); got != inuse {
		t.Errorf("inuse-only profile: %d bytes, want the %d in use", got, inuse)
	}
}
