package fleet

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
)

// synthCapture has n distinct stacks spread over procs processes (that do
// not exist, so each is its own service by name).
func synthCapture(n, procs int) *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Params: capture.Params{Hz: 19}, Start: time.Unix(1700000000, 0), Duration: 15 * time.Second})
	for i := range n {
		pid := uint32(4100000 + i%procs)
		st := b.Stack([]uint32{
			b.Frame(capture.Frame{Name: fmt.Sprintf("proc%d", i%procs), Kind: capture.KindProcess}),
			b.Frame(capture.Frame{Name: "main", Module: "/usr/bin/app", Offset: 0x1000}),
			b.Frame(capture.Frame{Name: fmt.Sprintf("function_with_a_long_name_%d", i), Module: "/usr/bin/app", Offset: uint64(0x2000 + i)}),
		})
		b.Add(capture.Event{Stack: st, Value: int64(1 + i%13), PID: pid, TID: pid})
	}
	return b.Capture()
}

func decode(t *testing.T, raw []byte) (*profile.Profile, int) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(zr)
	p, err := profile.ParseUncompressed(data)
	if err != nil {
		t.Fatal(err)
	}
	return p, len(data)
}

func sums(p *profile.Profile) []int64 {
	s := make([]int64, len(p.SampleType))
	for _, smp := range p.Sample {
		for i, v := range smp.Value {
			s[i] += v
		}
	}
	return s
}

func TestTrimToLimits(t *testing.T) {
	c := synthCapture(20000, 1)
	var want int64
	for _, e := range c.Events {
		want += e.Value
	}
	for _, tc := range []struct {
		name string
		lim  Limits
	}{
		{"samples", Limits{MaxSamples: 16000, MaxBytes: 4 << 20, MaxSeries: 10}},
		{"bytes", Limits{MaxSamples: 16000, MaxBytes: 256 << 10, MaxSeries: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ts, err := buildBatch(Kinds[0], c, nil, BySevice, tc.lim, newIdentifier(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Series) != 1 {
				t.Fatalf("%d series, want 1", len(b.Series))
			}
			p, size := decode(t, b.Series[0].Raw)
			if len(p.Sample) > tc.lim.MaxSamples || size > tc.lim.MaxBytes {
				t.Errorf("%d samples, %d bytes: over %d samples, %d bytes", len(p.Sample), size, tc.lim.MaxSamples, tc.lim.MaxBytes)
			}
			if got := int64(20000 - len(p.Sample) + 1); ts.samples != got {
				t.Errorf("trimmed %d samples counted, %d merged", ts.samples, got)
			}
			if got := sums(p)[0]; got != want {
				t.Errorf("samples total %d after trimming, want %d (kept whole in [trimmed])", got, want)
			}
			found := false
			for _, fn := range p.Function {
				found = found || fn.Name == trimmedFrame
			}
			if !found {
				t.Error("no [trimmed] frame")
			}
			for i, l := range p.Location {
				if l.ID != uint64(i+1) {
					t.Fatalf("location ids not 1..n: %d at %d", l.ID, i)
				}
			}
			t.Logf("%d samples, %d bytes uncompressed, %d gzipped", len(p.Sample), size, len(b.Series[0].Raw))
		})
	}
}

func TestSeriesBoundedAndLabels(t *testing.T) {
	c := synthCapture(600, 300)
	base := []Label{{"host", "h1"}, {"env", "prod"}}
	b, ts, err := buildBatch(Kinds[0], c, base, BySevice, Limits{MaxSamples: 16000, MaxBytes: 4 << 20, MaxSeries: 50}, newIdentifier(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Series) != 50 || ts.series != 251 {
		t.Errorf("%d series, %d merged; want 50 with 251 merged into other", len(b.Series), ts.series)
	}
	var total, want int64
	for _, e := range c.Events {
		want += e.Value
	}
	for _, s := range b.Series {
		if s.Labels[0] != (Label{"__name__", "process_cpu"}) || s.Label("host") != "h1" || s.Label("env") != "prod" {
			t.Errorf("labels %v", s.Labels)
		}
		p, _ := decode(t, s.Raw)
		total += sums(p)[0]
	}
	if last := b.Series[len(b.Series)-1]; last.Label("service_name") != "other" {
		t.Errorf("last series is %q, want other", last.Label("service_name"))
	}
	if total != want {
		t.Errorf("total %d over all series, want %d", total, want)
	}

	// Per pid when asked: the pid label appears.
	b, _, _ = buildBatch(Kinds[0], synthCapture(10, 2), nil, ByPID, DefaultLimits, newIdentifier(t.TempDir()))
	if len(b.Series) != 2 || b.Series[0].Label("pid") == "" {
		t.Errorf("series by pid: %v", b.Series)
	}
}

// TestOTLPRequestRoundTrip: the OTLP request holds the same stacks and
// totals as the pprof of each series, with shared dictionary entries.
func TestOTLPRequestRoundTrip(t *testing.T) {
	c := synthCapture(300, 3)
	b, _, err := buildBatch(Kinds[0], c, []Label{{"host", "h"}}, BySevice, DefaultLimits, newIdentifier(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	req, err := OTLPRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	d := req.Dictionary
	if len(req.ResourceProfiles) != len(b.Series) {
		t.Fatalf("%d resources for %d series", len(req.ResourceProfiles), len(b.Series))
	}
	mains := 0
	for _, fn := range d.FunctionTable {
		if d.StringTable[fn.NameStrindex] == "main" {
			mains++
		}
	}
	if mains != 1 {
		t.Errorf("function main is %d times in the dictionary, want once", mains)
	}
	for i, rp := range req.ResourceProfiles {
		p, _ := decode(t, b.Series[i].Raw)
		want := map[string]int64{} // leaf function -> cpu ns
		for _, s := range p.Sample {
			want[s.Location[0].Line[0].Function.Name] += s.Value[1]
		}
		profiles := rp.ScopeProfiles[0].Profiles
		if len(profiles) != 2 {
			t.Fatalf("%d OTLP profiles for a CPU series, want 2 (samples, cpu)", len(profiles))
		}
		got := map[string]int64{}
		for _, s := range profiles[1].Samples {
			leaf := d.LocationTable[d.StackTable[s.StackIndex].LocationIndices[0]]
			got[d.StringTable[d.FunctionTable[leaf.Lines[0].FunctionIndex].NameStrindex]] += s.Values[0]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("series %d: OTLP cpu by leaf %v, pprof %v", i, got, want)
		}
		if st := d.StringTable[profiles[1].SampleType.TypeStrindex]; st != "cpu" {
			t.Errorf("second profile's sample type %q, want cpu", st)
		}
	}
}
