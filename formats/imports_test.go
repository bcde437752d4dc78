package formats

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
)

// perfWorkC names its thread "spin worker" (a comm with a space) and burns
// CPU in main → alpha → beta on it.
const perfWorkC = `
#include <pthread.h>
#include <sys/prctl.h>
volatile unsigned long sink;
__attribute__((noinline)) void beta(void) { for (unsigned long i = 0; i < 1000000000UL; i++) sink += i; }
__attribute__((noinline)) void alpha(void) { beta(); sink++; }
void *worker(void *a) { prctl(PR_SET_NAME, "spin worker"); alpha(); return 0; }
int main(void) { pthread_t t; pthread_create(&t, 0, worker, 0); pthread_join(t, 0); return 0; }
`

// Every header form perf script prints (field selections with and without
// time, pid, cpu, period and event, no comm, --ns, --reltime, --header,
// srcline, no call graph) imports the same samples under the same names;
// times count from the first sample and the start is never 1970.
func TestPerfScriptHeaderForms(t *testing.T) {
	testutil.RequireRoot(t)
	perf := testutil.RequireTool(t, "perf")
	bin := testutil.BuildC(t, "gcc", perfWorkC, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread")
	data := filepath.Join(t.TempDir(), "perf.data")
	if out, err := exec.Command(perf, "record", "-q", "-g", "--sample-cpu", "-F", "499", "-o", data, bin).CombinedOutput(); err != nil {
		t.Skipf("perf record cannot run here: %v\n%s", err, out)
	}
	script := func(args ...string) []byte {
		out, err := exec.Command(perf, append([]string{"script", "-i", data}, args...)...).Output()
		if err != nil {
			t.Fatalf("perf script %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// The reference: perf's own count of samples.
	all := script("-F", "tid")
	want := bytes.Count(all, []byte("\n"))
	if want < 50 {
		t.Fatalf("only %d samples recorded", want)
	}
	forms := []struct {
		args            []string
		comm, time, tid bool
	}{
		{nil, true, true, true},
		{[]string{"--ns"}, true, true, true},
		{[]string{"--header"}, true, true, true},
		{[]string{"-F", "+pid"}, true, true, true},
		{[]string{"-F", "+srcline"}, true, true, true},
		{[]string{"-G"}, true, true, true},
		{[]string{"-F", "comm,tid,ip,sym,dso"}, true, false, true},
		{[]string{"-F", "comm,pid,tid,ip,sym,dso"}, true, false, true},
		{[]string{"-F", "comm,tid,event,ip,sym,dso"}, true, false, true},
		{[]string{"-F", "comm,tid,period,event,ip,sym,dso"}, true, false, true},
		{[]string{"-F", "comm,tid,cpu,ip,sym,dso"}, true, false, true},
		{[]string{"-F", "comm,pid,tid,time,ip,sym,dso"}, true, true, true},
		{[]string{"-F", "comm,tid,time,period,ip,sym,dso"}, true, true, true},
		{[]string{"-F", "comm,pid,tid,cpu,time,period,event,ip,sym,dso,symoff"}, true, true, true},
		{[]string{"-F", "comm,pid,time,event,ip,sym,dso", "--reltime"}, true, true, false},
		{[]string{"-F", "tid,time,event,ip,sym"}, false, true, true},
		{[]string{"-F", "pid,tid,time,ip,sym"}, false, true, true},
		{[]string{"-F", "pid,tid,ip,sym"}, false, false, true},
	}
	for _, form := range forms {
		t.Run(strings.Join(form.args, " "), func(t *testing.T) {
			text := script(form.args...)
			c, rep, err := ImportBytes(text, ImportOptions{})
			if err != nil {
				t.Fatalf("import: %v\n%s", err, head(text))
			}
			if rep.Format != "perf-script" || rep.BadLines != 0 {
				t.Errorf("format %s, %d bad lines (first %d: %q)", rep.Format, rep.BadLines, rep.FirstBadLine, rep.FirstBadText)
			}
			if len(c.Events) != want || c.Meta.Stats.Samples != uint64(want) {
				t.Errorf("%d events, %d samples; perf script has %d", len(c.Events), c.Meta.Stats.Samples, want)
			}
			stacks := map[string]int64{}
			for _, sv := range c.Aggregate(capture.Query{IncludeIdle: true}) {
				stacks[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
			}
			root := "spin_worker;"
			if !form.comm {
				root = ":" // perf's name for a thread of unknown comm: ":TID"
			}
			// (alpha, the caller of a leaf without a frame pointer, is
			// missing from perf's frame-pointer stacks.)
			chain := "start_thread;worker;"
			if form.args != nil && form.args[0] == "-G" {
				chain = "beta" // no call graph: the leaf only
			}
			var under, tot int64
			for s, v := range stacks {
				tot += v
				if strings.HasPrefix(s, root) && strings.Contains(s, ";"+chain) && strings.Contains(s, "beta") {
					under += v
				}
			}
			if under < tot/2 {
				t.Errorf("%d of %d under %s%s:\n%v", under, tot, root, chain, stacks)
			}
			if c.Meta.Timestamps != form.time {
				t.Errorf("timestamps %v, want %v", c.Meta.Timestamps, form.time)
			}
			if form.time && (c.Meta.Duration < 100*time.Millisecond || c.Meta.Duration > time.Minute) {
				t.Errorf("duration %s: not the length of the recording", c.Meta.Duration)
			}
			if y := c.Meta.Start.Year(); !c.Meta.Start.IsZero() && y < 2020 {
				t.Errorf("starts in %d", y)
			}
			if form.args != nil && form.args[0] == "--header" && time.Since(c.Meta.Start).Abs() > time.Hour {
				t.Errorf("start %s, not the header's 'captured on'", c.Meta.Start)
			}
			if form.tid {
				worker := 0
				for _, e := range c.Events {
					if e.TID != e.PID && e.TID != 0 {
						worker++
					}
				}
				if strings.Contains(strings.Join(form.args, ","), "pid") && worker < want/2 {
					t.Errorf("only %d of %d events have the worker's tid apart from its pid", worker, want)
				}
			}
		})
	}
}

func head(b []byte) string {
	lines := strings.SplitN(string(b), "\n", 6)
	return strings.Join(lines[:min(5, len(lines))], "\n")
}

// Java's descriptors are tidied only where they are Java's: a Node.js frame
// keeps its first letter.
func TestPerfScriptJavaTidying(t *testing.T) {
	in := `java 100/101 1.000000: 1 cpu-clock:
	7f0001 Lorg/example/Foo;.bar(I)V (/tmp/perf-100.map)
	7f0002 Interpreter (/tmp/perf-100.map)

C2 CompilerThre 100/102 1.000100: 1 cpu-clock:
	7f0003 Lorg/example/Foo;.baz()V (/tmp/perf-100.map)

node 200/200 1.000200: 1 cpu-clock:
	7f0004 LazyCompile:*foo /srv/app/lib/x.js:12 (/tmp/perf-200.map)
	7f0005 Lonely (/srv/app/node)
`
	c, _, err := ImportBytes([]byte(in), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sv := range c.Aggregate(capture.Query{}) {
		got = append(got, strings.Join(c.FoldedStack(sv.Stack), ";"))
	}
	want := []string{
		"java;Interpreter_[j];org/example/Foo:.bar_[j]",
		"C2_CompilerThre;org/example/Foo:.baz_[j]",
		"node;Lonely;LazyCompile:*foo /srv/app/lib/x.js:12_[j]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A folded or pprof import counts its samples as the sum of the values, not
// the number of distinct stacks.
func TestImportSampleCounts(t *testing.T) {
	folded := "app;main;a 10\napp;main;b 20\napp;main;a 5\n"
	c, _, err := ImportBytes([]byte(folded), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Stats.Samples != 35 {
		t.Errorf("folded: %d samples, want 35", c.Meta.Stats.Samples)
	}
	var buf bytes.Buffer
	if err := WritePprof(&buf, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	p, _, err := ImportBytes(buf.Bytes(), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Meta.Stats.Samples != 35 {
		t.Errorf("pprof: %d samples, want 35", p.Meta.Stats.Samples)
	}
	// A time-valued folded file has no sample count: it counts its stacks.
	c, _, err = ImportBytes([]byte(folded), ImportOptions{Type: capture.OffCPU})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Stats.Samples != 2 {
		t.Errorf("off-CPU folded: %d samples, want its 2 stacks", c.Meta.Stats.Samples)
	}
}
