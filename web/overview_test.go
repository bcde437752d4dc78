package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/host"
	"github.com/scorch-dev/scorch/web"
)

// realSampler samples this host quickly, for the tests.
func realSampler(t *testing.T) *host.Sampler {
	t.Helper()
	hs := host.NewSampler(host.Options{Interval: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hs.Run(ctx)
	return hs
}

func TestOverviewJSON(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Host = realSampler(t) })
	resp, b := e.get("/api/overview.json?minutes=1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var o struct {
		Resources []struct {
			Resource    string
			Utilization *float64
			Saturation  *float64
			Errors      *float64
			Units       map[string]string
			Series      map[string]json.RawMessage
			Status      string
			Rule        string
		}
		Top map[string][]struct {
			PID   int
			Comm  string
			Value float64
		}
		Findings     []json.RawMessage
		KernelErrors []json.RawMessage `json:"kernel_errors"`
		Missing      []string
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	names := map[string]bool{}
	for _, r := range o.Resources {
		names[r.Resource] = true
		if r.Status != "ok" && r.Status != "warning" && r.Status != "critical" {
			t.Errorf("%s: status %q", r.Resource, r.Status)
		}
		if r.Rule == "" || r.Units["utilization"] == "" || r.Series["utilization"] == nil {
			t.Errorf("%s: rule %q units %v series %v", r.Resource, r.Rule, r.Units, r.Series)
		}
	}
	if !names["cpu"] || !names["memory"] {
		t.Fatalf("resources %v: want cpu and memory on any Linux host", names)
	}
	for _, k := range []string{"cpu", "runqueue", "io"} {
		if _, ok := o.Top[k]; !ok {
			t.Errorf("top has no %q list: %s", k, b)
		}
	}
	if o.Findings == nil || o.KernelErrors == nil {
		t.Errorf("findings or kernel_errors is null, want lists: %s", b)
	}

	for _, bad := range []string{"0", "16", "x"} {
		resp, b := e.get("/api/overview.json?minutes=" + bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorMessage(t, b), "allowed 1..15") {
			t.Errorf("minutes=%s: %d %s", bad, resp.StatusCode, b)
		}
	}
}

func TestOverviewEvents(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Host = realSampler(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/overview/events?minutes=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	var samples []int
	for sc.Scan() && len(samples) < 3 {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		var o struct{ Samples int }
		if err := json.Unmarshal(line[6:], &o); err != nil {
			t.Fatalf("event data: %v", err)
		}
		samples = append(samples, o.Samples)
	}
	if len(samples) < 3 || samples[1] <= samples[0] || samples[2] <= samples[1] {
		t.Fatalf("samples of the events: %v, want three, increasing", samples)
	}
}

// fixedSampler answers one overview with a finding of each kind.
type fixedSampler struct{ o host.Overview }

func (f fixedSampler) Overview(int) host.Overview { return f.o }
func (f fixedSampler) Generation() uint64         { return 5 }
func (f fixedSampler) Changed() <-chan struct{}   { return make(chan struct{}) }

// Every drill the sampler proposes is a body POST /api/captures accepts.
func TestOverviewDrillsAreCaptureBodies(t *testing.T) {
	drills := []host.Drill{
		{Type: "cpu", PID: 1, Duration: "10s"},
		{Type: "offcpu", PID: 1, Duration: "10s", State: "all"},
		{Type: "offcpu", PID: 1, Duration: "10s", State: "D"},
		{Type: "mem", Duration: "10s", Event: "page-faults"},
		{Type: "event", Duration: "10s", Event: "skb:kfree_skb"},
	}
	o := host.Overview{}
	for _, d := range drills {
		o.Findings = append(o.Findings, host.Finding{Resource: "cpu", Status: "critical", Message: "m", Drill: d})
	}
	e := newEnv(t, func(c *web.Config) {
		c.Host = fixedSampler{o}
		c.ProcessExists = func(int) bool { return true }
		c.MaxConcurrent = len(drills)
	})
	e.rec.Unavailable = nil
	_, b := e.get("/api/overview.json")
	var got struct {
		Findings []struct{ Drill json.RawMessage }
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got.Findings) != len(drills) {
		t.Fatalf("%v: %s", err, b)
	}
	for _, f := range got.Findings {
		resp, b := e.do("POST", "/api/captures", bytes.NewReader(f.Drill))
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("drill %s: %d %s", f.Drill, resp.StatusCode, b)
		}
	}
}

func TestOverviewPage(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Host = fixedSampler{} })
	resp, b := e.get("/overview")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	page := string(b)
	for _, want := range []string{`id="use"`, `src="/assets/overview.js"`, `href="/assets/overview.css"`, `<nav><a href="/overview">Overview</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, asset := range []string{"/assets/overview.js", "/assets/overview.css"} {
		if resp, _ := e.get(asset); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", asset, resp.StatusCode)
		}
	}
}
