package web_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/host"
	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/web"
)

// tickingSampler is a made-up host whose sample changes every 300 ms: a
// CPU-critical finding with a drill, a hostile process name and kernel
// message.
type tickingSampler struct {
	mu      sync.Mutex
	gen     uint64
	changed chan struct{}
}

func newTickingSampler(t *testing.T) *tickingSampler {
	s := &tickingSampler{changed: make(chan struct{}), gen: 2}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tk := time.NewTicker(300 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				s.mu.Lock()
				s.gen++
				close(s.changed)
				s.changed = make(chan struct{})
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *tickingSampler) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *tickingSampler) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *tickingSampler) Overview(int) host.Overview {
	gen := s.Generation()
	n := int(gen)
	series := host.Series{Start: float64(time.Now().Unix() - int64(n)), Step: 1}
	for i := range n {
		series.Utilization = append(series.Utilization, host.Num(50+i%50))
		series.Saturation = append(series.Saturation, host.Num(i%3))
		series.Errors = append(series.Errors, 0)
		series.Status = append(series.Status, int8(min(2, i/3)))
	}
	const evil = `<img src=x onerror="document.title='owned'">`
	drill := host.Drill{Type: "cpu", PID: 4242, Duration: "2s"}
	return host.Overview{
		Time: float64(time.Now().Unix()), Interval: 1, CPUs: 2, Samples: n, Uptime: 600,
		Load: [3]host.Num{1, 2, 3},
		Resources: []host.Resource{
			{Resource: "cpu", Utilization: 99, Saturation: 2.5, Errors: host.Num(0), Units: host.Units{Utilization: "% busy", Saturation: "tasks waiting to run per CPU"},
				Series: series, Status: "critical", Rule: "CPU 99% busy, top hog (4242) 198%"},
			{Resource: "disk:vda", Utilization: 3, Saturation: 0.1, Units: host.Units{Utilization: "% busy", Saturation: "average queue size"},
				Series: series, Status: "ok", Rule: "vda 3% busy, await 0.4 ms"},
		},
		Top:          host.Top{CPU: []host.Proc{{PID: 4242, Comm: "hog", Value: 198}, {PID: 7, Comm: evil, Value: 1}}},
		TopUnits:     host.TopUnits,
		Findings:     []host.Finding{{Resource: "cpu", Status: "critical", Message: "CPU 99% busy, top hog (4242) 198%", Drill: drill}},
		KernelErrors: []host.KernelError{{Time: float64(time.Now().Unix()), Level: "err", Message: evil}},
	}
}

// TestOverviewBrowser opens the overview from the navigation in headless
// Chromium, watches it update and follows a finding's drill button to the
// capture page.
func TestOverviewBrowser(t *testing.T) {
	browser.Require(t)
	e := newEnv(t, func(c *web.Config) {
		c.Host = newTickingSampler(t)
		c.ProcessExists = func(int) bool { return true }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join("testdata", "overview_browser.js"), e.ts.URL)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	type row struct {
		Resource, Status string
		Cells, Bars      []string
	}
	var got struct {
		Errors                      []string
		FirstNav                    string
		Rows, RowsAfter             []row
		SamplesBefore, SamplesAfter int
		Top, Kernel, Findings       []string
		Injected                    int
		CaptureURL, CaptureHeading  string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	if got.FirstNav != "/overview" {
		t.Errorf("the first navigation link is %q, want /overview", got.FirstNav)
	}
	if len(got.Rows) != 2 || got.Rows[0].Resource != "cpu" || got.Rows[0].Status != "critical" || got.Rows[1].Resource != "disk:vda" {
		t.Fatalf("table rows %+v, want cpu (critical) and disk:vda", got.Rows)
	}
	cpu := strings.Join(got.Rows[0].Cells, "|")
	for _, want := range []string{"cpu|critical|99%", "2.50", "CPU 99% busy, top hog (4242) 198%"} {
		if !strings.Contains(cpu, want) {
			t.Errorf("cpu row %q lacks %q", cpu, want)
		}
	}
	// Sparklines: one bar per sample, coloured by that sample's status.
	bars := got.RowsAfter[0].Bars
	if len(bars) < 3*got.SamplesAfter-3 || !contains(bars, "s0") || !contains(bars, "s2") {
		t.Errorf("cpu sparklines have %d bars (classes %v) for %d samples, want 3 series of ok to critical bars", len(bars), bars[:min(len(bars), 12)], got.SamplesAfter)
	}
	if got.SamplesAfter < got.SamplesBefore+2 {
		t.Errorf("the page showed sample %d, then %d: no live update", got.SamplesBefore, got.SamplesAfter)
	}
	if len(got.Top) != 2 || !strings.Contains(got.Top[0], "4242hog198") {
		t.Errorf("top cpu rows %q, want hog first", got.Top)
	}
	if got.Injected != 0 || !strings.Contains(strings.Join(got.Top, ""), "<img src=x") || len(got.Kernel) != 1 || !strings.Contains(got.Kernel[0], "<img src=x") {
		t.Errorf("hostile names: %d elements injected; top %q, kernel %q should show the text", got.Injected, got.Top, got.Kernel)
	}
	if len(got.Findings) != 1 || !strings.Contains(got.Findings[0], "cpu, pid 4242, 2s") {
		t.Errorf("findings %q, want the cpu drill of pid 4242", got.Findings)
	}
	if !strings.Contains(got.CaptureURL, "/captures/") || !strings.Contains(got.CaptureHeading, "cpu capture") {
		t.Fatalf("drill down landed on %q (%q), want a cpu capture's page", got.CaptureURL, got.CaptureHeading)
	}
	id := got.CaptureURL[strings.LastIndex(got.CaptureURL, "/")+1:]
	_, b := e.get("/api/captures/" + id)
	var rec struct {
		Type   string
		Params struct{ PID []int }
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Type != "cpu" || len(rec.Params.PID) != 1 || rec.Params.PID[0] != 4242 {
		t.Errorf("the drilled capture is %s", b)
	}
}
