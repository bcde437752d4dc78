package synthcapture

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

func TestGenerate(t *testing.T) {
	c, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 60 s at 999 Hz on 2 CPUs, less the samples a thread already on the
	// other CPU would take.
	if n := len(c.Events); n < 110000 || n > 2*60*999 {
		t.Errorf("%d events, want about 2*60*999", n)
	}
	threads := map[uint32]int{}
	var first, second [2]int64 // parse_request, compress_block samples per half
	busiest := [2]map[uint32]int{{}, {}}
	for i, e := range c.Events {
		if i > 0 && e.Time < c.Events[i-1].Time {
			t.Fatalf("event %d out of time order", i)
		}
		if e.Flags&capture.FlagIdle != 0 {
			continue
		}
		threads[e.TID]++
		half := 0
		if e.Time >= int64(30*time.Second) {
			half = 1
		}
		busiest[half][e.TID]++
		stack := strings.Join(c.FoldedStack(e.Stack), ";")
		for j, fn := range []string{"parse_request", "compress_block"} {
			if strings.Contains(stack, ";"+fn+";") {
				if half == 0 {
					first[j]++
				} else {
					second[j]++
				}
			}
		}
	}
	if len(threads) != 50 {
		t.Errorf("%d threads, want 50", len(threads))
	}
	if first[1] != 0 || second[0] != 0 || first[0] == 0 || second[1] == 0 {
		t.Errorf("phases: parse_request %d then %d, compress_block %d then %d; want each in its half only", first[0], second[0], first[1], second[1])
	}
	top := func(m map[uint32]int) (tid uint32) {
		for k, v := range m {
			if v > m[tid] || v == m[tid] && k < tid {
				tid = k
			}
		}
		return tid
	}
	if a, b := top(busiest[0]), top(busiest[1]); a == b {
		t.Errorf("thread %d is the busiest in both halves: the tracks should show the change", a)
	}
	again, _ := Generate(Options{})
	if !reflect.DeepEqual(c.Events, again.Events) {
		t.Error("the same options gave another capture")
	}
	var buf bytes.Buffer
	if err := capture.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	back, err := capture.Read(&buf)
	if err != nil || len(back.Events) != len(c.Events) || !back.Meta.Timestamps || back.Meta.Params.Hz != 999 {
		t.Fatalf("read back: %v", err)
	}
}

func TestGenerateOffCPU(t *testing.T) {
	c, err := Generate(Options{Type: capture.OffCPU, Duration: 5 * time.Second, Threads: 4, Processes: 2, Lost: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var blocked, runq int64
	end := map[uint32]int64{}
	for _, e := range c.Events {
		if e.Time < end[e.TID] {
			t.Fatalf("thread %d: interval at %d overlaps the previous one ending at %d", e.TID, e.Time, end[e.TID])
		}
		end[e.TID] = e.Time + e.Value
		switch st := c.FoldedStack(e.Stack); st[len(st)-1] {
		case capture.FrameBlocked:
			blocked += e.Value
		case capture.FrameRunqueue:
			runq += e.Value
		default:
			t.Fatalf("stack %v ends in neither [blocked] nor [runqueue]", st)
		}
	}
	if len(end) != 4 || blocked == 0 || runq == 0 || c.Meta.Stats.Lost != 3 {
		t.Errorf("threads %d, blocked %d, runqueue %d, lost %d", len(end), blocked, runq, c.Meta.Stats.Lost)
	}
	// Lost events are marked in time (5 s: 2.25-2.75 s, two 250 ms polls
	// on 2 CPUs) and survive the capture file.
	var buf bytes.Buffer
	if err := capture.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	back, err := capture.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var lost uint64
	for _, sp := range back.Meta.Stats.LostAt {
		if sp.From < int64(2250*time.Millisecond) || sp.To > int64(2750*time.Millisecond) || sp.To <= sp.From {
			t.Errorf("lost span %+v outside 2.25-2.75 s", sp)
		}
		lost += sp.Count
	}
	if lost != 3 || back.Meta.Stats.Counters.Get(capture.LostOnCPU) != 3 {
		t.Errorf("lost spans add up to %d, per CPU to %d; want 3", lost, back.Meta.Stats.Counters.Get(capture.LostOnCPU))
	}
	if _, err := Generate(Options{Type: capture.Mem}); err == nil {
		t.Error("mem: want an error")
	}
}
