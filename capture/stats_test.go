package capture

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// Counters survive a capture file under their stable names, reasons and all.
func TestCountersRoundTrip(t *testing.T) {
	c := sample(t)
	c.Meta.Stats.Counters.Add(KernelStacksCached, 900)
	c.Meta.Stats.Counters.AddReason(UnwindEndedBy, "no CFI for pc", 6)
	c.Meta.Stats.Counters.AddReason(UnwindEndedBy, "end of stack copy", 4)
	var buf bytes.Buffer
	if err := Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Meta.Stats.Counters, c.Meta.Stats.Counters) {
		t.Errorf("counters %v, want %v", got.Meta.Stats.Counters, c.Meta.Stats.Counters)
	}
	js, _ := json.Marshal(c.Meta.Stats)
	for _, want := range []string{`{"counter":"kernel_stacks_cached","value":900}`, `{"counter":"unwind_ended","reason":"no CFI for pc","value":6}`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("stats JSON %s lacks %s", js, want)
		}
	}
}

// A file written before the counters were declared (testdata, by the
// previous version) loads its "extra" keys as counters.
func TestStatsOfOldFiles(t *testing.T) {
	f, err := os.Open("testdata/v1-extra-stats.scorch")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Meta.Stats
	if st.Samples != 1 || st.Lost != 2 || st.UnwindEnded != 10 {
		t.Errorf("stats %+v", st)
	}
	want := Counters{
		{UnwindEndedBy, "no CFI for pc"}:     6,
		{UnwindEndedBy, "end of stack copy"}: 4,
		{KernelStacksCached, ""}:             900,
		{RingBytes, ""}:                      4096,
		{LostOnCPU, "1"}:                     2,
	}
	if !reflect.DeepEqual(st.Counters, want) {
		t.Errorf("counters %v, want %v", st.Counters, want)
	}
	if got := c.Summarize(Query{}, nil); got.UserStacks.Ended["no CFI for pc"] != 6 || got.LostPerCPU["1"] != 2 {
		t.Errorf("summary: ended %v, lost per cpu %v", got.UserStacks.Ended, got.LostPerCPU)
	}
	if k := (CounterKey{UnwindEndedBy, "no CFI for pc"}).String(); k != `unwind_ended{reason="no CFI for pc"}` {
		t.Errorf("counter named %s", k)
	}
}

// The lost-events finding names the CPUs that lost the most.
func TestLostCPUsFinding(t *testing.T) {
	c := &Capture{Meta: Meta{Type: CPU, Unit: "samples"}}
	c.Meta.Stats.Samples, c.Meta.Stats.Lost = 100, 460
	for cpu, n := range map[string]uint64{"0": 0, "1": 20, "3": 400, "2": 20, "4": 10, "5": 10} {
		c.Meta.Stats.Counters.AddReason(LostOnCPU, cpu, n)
	}
	var msg string
	for _, f := range c.Summarize(Query{}, nil).Findings {
		if strings.Contains(f.Message, "events were lost") {
			msg = f.Message
		}
	}
	if want := "460 events were lost (82% of all, most on cpu 3: 400, cpu 1: 20, cpu 2: 20, cpu 4: 10)"; !strings.HasPrefix(msg, want) {
		t.Errorf("finding %q, want it to start with %q", msg, want)
	}
	// With the reasons counted, the finding says why, most first.
	c.Meta.Stats.Counters.AddReason(LostBy, LostMapFull, 60)
	c.Meta.Stats.Counters.AddReason(LostBy, LostRingFull, 400)
	sm := c.Summarize(Query{}, nil)
	if sm.LostBy[LostRingFull] != 400 {
		t.Errorf("lost_by %v", sm.LostBy)
	}
	for _, f := range sm.Findings {
		if strings.Contains(f.Message, "events were lost") {
			msg = f.Message
		}
	}
	if want := "cpu 4: 10, 400: ring buffer full, 60: map full)"; !strings.Contains(msg, want) {
		t.Errorf("finding %q, want it to contain %q", msg, want)
	}
}
