package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/fleet"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// workloadC spins in fleet_spin and sleeps in fleet_nap, forever: CPU
// samples land in the one, off-CPU time in the other.
const workloadC = `
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void fleet_spin(void) {
	for (unsigned long i = 0; i < 20000000; i++) sink += i * i;
}
__attribute__((noinline)) void fleet_nap(void) {
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, 0);
}
int main(void) {
	for (;;) { fleet_spin(); fleet_nap(); }
}
`

// startWorkload builds and starts the workload under a name of its own
// (its comm, so its service_name) and returns that name.
func startWorkload(t *testing.T) string {
	t.Helper()
	bin := testutil.BuildC(t, "gcc", workloadC, "-O1", "-fno-omit-frame-pointer", "-fno-inline")
	name := fmt.Sprintf("fleetwl%d", os.Getpid()%100000)
	named := filepath.Join(filepath.Dir(bin), name)
	if err := os.Rename(bin, named); err != nil {
		t.Fatal(err)
	}
	testutil.Start(t, named)
	return name
}

// tee pushes each batch to several remotes, so one BPF run checks them all.
type tee []fleet.Remote

func (t tee) Push(ctx context.Context, b *fleet.Batch) error {
	var errs []error
	for _, r := range t {
		errs = append(errs, r.Push(ctx, b))
	}
	return errors.Join(errs...)
}

func (t tee) Close() error {
	for _, r := range t {
		r.Close()
	}
	return nil
}

// window is what the agent captured locally for one window and type.
type window struct {
	kind   fleet.Kind
	start  int64
	totals []int64 // per sample type, of the whole capture (idle excluded)
}

func localTotals(c *capture.Capture) []int64 {
	p := formats.Profile(c, capture.Query{})
	if len(p.Sample) == 0 {
		return nil // an empty window (the last, cut short, of a quiet type) pushes nothing
	}
	t := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			t[i] += v
		}
	}
	return t
}

// TestAgentPushesToPyroscopeAndOTLP runs the agent with the real profiler
// on a known workload for a few windows and checks what a Pyroscope
// server and an OpenTelemetry Collector would receive.
func TestAgentPushesToPyroscopeAndOTLP(t *testing.T) {
	testutil.RequireRoot(t)
	name := startWorkload(t)
	pyro, pyroSrv := newFakePyroscope(t)
	coll, collURL := newFakeCollector(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600)
	hdr := map[string]string{"X-Scope-OrgID": "tenant1"}
	pr, err := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: pyroSrv.URL, TokenFile: tokenFile, Headers: hdr})
	if err != nil {
		t.Fatal(err)
	}
	or, err := fleet.NewRemote(fleet.RemoteConfig{Kind: "otlp", URL: collURL, TokenFile: tokenFile, Headers: hdr})
	if err != nil {
		t.Fatal(err)
	}
	kinds, _ := fleet.ParseTypes("cpu,offcpu")
	var mu sync.Mutex
	var windows []window
	counts := map[string]int{}
	closed := false
	reg := prometheus.NewRegistry()
	sym := symbolizer.New(symbolizer.Options{})
	defer sym.Close()
	a, err := fleet.New(fleet.Config{
		Remote:     tee{pr, or},
		Recorder:   &fleet.ProfilerRecorder{Symbolizer: sym, Unwinder: unwind.New(unwind.Options{}), RingBytes: 1 << 20},
		Kinds:      kinds,
		Every:      2 * time.Second,
		Hz:         49,
		Labels:     []fleet.Label{{Name: "env", Value: "test"}},
		Registerer: reg,
		OnWindow: func(k fleet.Kind, c *capture.Capture, b *fleet.Batch) {
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return
			}
			windows = append(windows, window{kind: k, start: c.Meta.Start.UnixNano(), totals: localTotals(c)})
			counts[k.Name]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := min(counts["process_cpu"], counts["off_cpu"])
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	// A window still symbolizing at the flush deadline may call OnWindow
	// after Run: it is not counted.
	mu.Lock()
	closed = true
	mu.Unlock()
	if c := counts["process_cpu"]; c < 3 {
		t.Fatalf("only %d CPU windows in 90 s", c)
	}
	// Every window was cut from one loaded collector per type.
	for _, name := range []string{"process_cpu", "off_cpu"} {
		loads := metric(t, reg, "scorch_agent_collector_loads_total", map[string]string{"profile": name})
		windows := metric(t, reg, "scorch_agent_windows_total", map[string]string{"profile": name})
		if loads != 1 || windows < 3 {
			t.Errorf("%s: %v collector loads for %v windows, want 1 for at least 3", name, loads, windows)
		}
	}
	host, _ := os.Hostname()

	// Pyroscope: labels, types and the pprof inside.
	got := pyro.received()
	if len(got) == 0 {
		t.Fatal("pyroscope received nothing")
	}
	type key struct {
		name  string
		start int64
	}
	pushed := map[key][]int64{}
	var spin, nap int64
	var workloadCPU, workloadOff int64
	for _, r := range got {
		if r.labels["host"] != host || r.labels["env"] != "test" || r.labels["service_name"] == "" {
			t.Errorf("series labels %v: want host=%s, env=test and a service_name", r.labels, host)
		}
		if _, ok := r.labels["pid"]; ok {
			t.Errorf("series labels %v carry a pid by default", r.labels)
		}
		k := key{r.labels["__name__"], r.profile.TimeNanos}
		if pushed[k] == nil {
			pushed[k] = make([]int64, len(r.profile.SampleType))
		}
		for _, s := range r.profile.Sample {
			for i, v := range s.Value {
				pushed[k][i] += v
			}
		}
		if r.labels["service_name"] != name {
			continue
		}
		vi := len(r.profile.SampleType) - 1
		for _, s := range r.profile.Sample {
			v := s.Value[vi]
			switch r.labels["__name__"] {
			case "process_cpu":
				workloadCPU += v
				if stackHas(s, "fleet_spin") {
					spin += v
				}
			case "off_cpu":
				// Blocked time is the nap; run-queue time (waiting for a
				// CPU on this busy machine) falls in fleet_spin too.
				if stackHas(s, capture.FrameBlocked) {
					workloadOff += v
					if stackHas(s, "fleet_nap") {
						nap += v
					}
				}
			}
		}
		switch n := r.labels["__name__"]; n {
		case "process_cpu":
			if st := sampleTypes(r.profile); st != "samples/count,cpu/nanoseconds" || r.profile.PeriodType.Type != "cpu" {
				t.Errorf("process_cpu sample types %s, period type %v", st, r.profile.PeriodType)
			}
		case "off_cpu":
			if st := sampleTypes(r.profile); st != "off_cpu/nanoseconds" {
				t.Errorf("off_cpu sample types %s", st)
			}
		default:
			t.Errorf("unexpected profile name %q", n)
		}
	}
	if workloadCPU == 0 || workloadOff == 0 {
		t.Fatalf("no series of service %s with CPU (%d) and off-CPU (%d) time", name, workloadCPU, workloadOff)
	}
	if float64(spin) < 0.8*float64(workloadCPU) {
		t.Errorf("fleet_spin holds %d of the workload's %d CPU ns; want most", spin, workloadCPU)
	}
	if float64(nap) < 0.5*float64(workloadOff) {
		t.Errorf("fleet_nap holds %d of the workload's %d blocked ns; want most", nap, workloadOff)
	}
	t.Logf("%d series; %s: fleet_spin %.0f%% of CPU, fleet_nap %.0f%% of blocked time", len(got), name,
		100*float64(spin)/float64(workloadCPU), 100*float64(nap)/float64(workloadOff))
	// Totals of every window match the local capture of the same window.
	for _, w := range windows {
		p := pushed[key{w.kind.Name, w.start}]
		if !slices.Equal(p, w.totals) {
			t.Errorf("%s window at %d: pushed totals %v, local capture %v", w.kind.Name, w.start, p, w.totals)
		}
	}
	pyro.mu.Lock()
	h := pyro.headers[0]
	pyro.mu.Unlock()
	if h.Get("Authorization") != "Bearer s3cret-token" || h.Get("X-Scope-OrgID") != "tenant1" {
		t.Errorf("pyroscope headers: Authorization %q, X-Scope-OrgID %q", h.Get("Authorization"), h.Get("X-Scope-OrgID"))
	}

	// OTLP: the same windows, resource attributes, one profile per sample type.
	reqs := coll.requests()
	if len(reqs) == 0 {
		t.Fatal("the collector received nothing")
	}
	otlpTotals := map[key][]int64{}
	var otlpSpin int64
	for _, req := range reqs {
		d := req.Dictionary
		for _, rp := range req.ResourceProfiles {
			attrs := map[string]string{}
			for _, kv := range rp.Resource.Attributes {
				attrs[kv.Key] = kv.Value.GetStringValue()
			}
			if attrs["service.name"] == "" || attrs["host.name"] != host || attrs["env"] != "test" {
				t.Errorf("resource attributes %v: want service.name, host.name=%s, env=test", attrs, host)
			}
			for _, sp := range rp.ScopeProfiles {
				for _, p := range sp.Profiles {
					pname := ""
					for _, ai := range p.AttributeIndices {
						a := d.AttributeTable[ai]
						if d.StringTable[a.KeyStrindex] == fleet.OTLPProfileNameKey {
							pname = a.Value.GetStringValue()
						}
					}
					st := d.StringTable[p.SampleType.TypeStrindex]
					k := key{pname, int64(p.TimeUnixNano)}
					if otlpTotals[k] == nil {
						otlpTotals[k] = make([]int64, 0, 2)
					}
					var sum int64
					for _, s := range p.Samples {
						sum += s.Values[0]
						if st == "cpu" && attrs["service.name"] == name {
							for _, li := range d.StackTable[s.StackIndex].LocationIndices {
								for _, ln := range d.LocationTable[li].Lines {
									if d.StringTable[d.FunctionTable[ln.FunctionIndex].NameStrindex] == "fleet_spin" {
										otlpSpin += s.Values[0]
									}
								}
							}
						}
					}
					// Profiles of a window come in sample-type order per
					// resource: add them up position by position.
					idx := 0
					if st == "cpu" {
						idx = 1
					}
					for len(otlpTotals[k]) <= idx {
						otlpTotals[k] = append(otlpTotals[k], 0)
					}
					otlpTotals[k][idx] += sum
				}
			}
		}
	}
	for _, w := range windows {
		if p := otlpTotals[key{w.kind.Name, w.start}]; !slices.Equal(p, w.totals) {
			t.Errorf("otlp %s window at %d: totals %v, local capture %v", w.kind.Name, w.start, p, w.totals)
		}
	}
	if float64(otlpSpin) < 0.8*float64(workloadCPU) {
		t.Errorf("otlp: fleet_spin has %d CPU ns, pyroscope %d of %d", otlpSpin, spin, workloadCPU)
	}
	coll.mu.Lock()
	md := coll.md[0]
	coll.mu.Unlock()
	if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer s3cret-token" {
		t.Errorf("otlp authorization metadata %v", v)
	}
	if v := md.Get("x-scope-orgid"); len(v) != 1 || v[0] != "tenant1" {
		t.Errorf("otlp x-scope-orgid metadata %v", v)
	}
}

func stackHas(s *profile.Sample, fn string) bool {
	for _, l := range s.Location {
		for _, ln := range l.Line {
			if ln.Function.Name == fn {
				return true
			}
		}
	}
	return false
}

func sampleTypes(p *profile.Profile) string {
	var s []string
	for _, st := range p.SampleType {
		s = append(s, st.Type+"/"+st.Unit)
	}
	return strings.Join(s, ",")
}
