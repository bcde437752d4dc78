package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/web"
)

// twoPhaseWorkload spins in warm_up until SIGUSR1 (sent once the capture
// is sampling it: loading the collector takes a while on a busy host), then
// in phase_alpha for 2 s and in phase_beta for 2 s, and exits: a hot
// function that changes half-way.
const twoPhaseWorkload = `
#include <signal.h>
#include <time.h>
volatile unsigned long sink;
volatile sig_atomic_t go;
static void start(int sig) { (void)sig; go = 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) void warm_up(void) { for (int i = 0; i < 200000; i++) sink -= i; }
__attribute__((noinline)) void phase_alpha(void) { for (int i = 0; i < 200000; i++) sink += i; }
__attribute__((noinline)) void phase_beta(void) { for (int i = 0; i < 200000; i++) sink ^= i; }
int main(void) {
	signal(SIGUSR1, start);
	while (!go) warm_up();
	double t0 = now();
	while (now() - t0 < 2.0) phase_alpha();
	while (now() - t0 < 4.0) phase_beta();
	return 0;
}
`

// TestTimeViewsRealCapture records the two-phase program with scorch's
// BPF cpu collector through the service and looks at the capture page in
// Chromium: selecting phase_alpha, then phase_beta, in the function table
// paints the program's track and the heatmap where each ran, alpha's
// spans before beta's; the stack chart of its thread shows them in order.
// Screenshots are kept in internal/browser/artifacts/TestTimeViewsRealCapture.
func TestTimeViewsRealCapture(t *testing.T) {
	testutil.RequireRoot(t)
	browser.Require(t)
	if c := profiler.Capabilities(context.Background()).Collectors["cpu"]; !c.Available {
		t.Skipf("the cpu collector cannot run here: %s", c.Reason)
	}
	bin := testutil.BuildC(t, "gcc", twoPhaseWorkload, "-O1", "-fno-omit-frame-pointer")
	artifacts := browser.Artifacts(t)
	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{DataDir: t.TempDir(), Listen: ts.Listener.Addr().String(), Recorder: profilerRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	// The capture follows the program and ends when it exits; the phases
	// start once it samples.
	cmd := testutil.Start(t, bin)
	body := fmt.Sprintf(`{"type":"cpu","duration":"20s","hz":199,"pid":%d}`, cmd.Process.Pid)
	resp, err := http.Post(ts.URL+"/api/captures", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/captures: %s %s", resp.Status, b)
	}
	var rec struct {
		ID      string
		Status  string
		Samples int
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	get := func() {
		t.Helper()
		resp, err := http.Get(ts.URL + "/api/captures/" + rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
			t.Fatal(err)
		}
	}
	signaled := false
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("capture %s still %s after 60 s", rec.ID, rec.Status)
		}
		get()
		if rec.Status != "running" {
			break
		}
		if !signaled && rec.Samples > 0 {
			if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			signaled = true
		}
	}
	if rec.Status != "done" || !signaled {
		t.Fatalf("capture %s: %s, program signaled %v", rec.ID, rec.Status, signaled)
	}
	out, err := browser.Run(t.Context(), filepath.Join(browser.Dir(), "timeviews-real.mjs"), ts.URL, rec.ID, fmt.Sprint(cmd.Process.Pid), artifacts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	type focus struct {
		Track, Total struct {
			Name, Sub string
			Spans     int
			From, To  float64
			Halves    []float64
		}
		Cells []int
	}
	var got struct {
		Errors, Screenshots []string
		End, Bucket         float64
		Alpha, Beta         focus
		Chart               struct{ AlphaFrom, AlphaTo, BetaFrom, BetaTo float64 }
		ChartTip            string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	t.Logf("capture %s: %d samples over %.2f s, buckets of %g s; screenshots: %s", rec.ID, rec.Samples, got.End, got.Bucket, strings.Join(got.Screenshots, ", "))
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	a, be := got.Alpha.Track, got.Beta.Track
	t.Logf("phase_alpha on the program's track: %.2f-%.2f s (halves %v); phase_beta: %.2f-%.2f s (halves %v)", a.From, a.To, a.Halves, be.From, be.To, be.Halves)
	if a.Spans == 0 || be.Spans == 0 {
		t.Fatalf("the program's track paints phase_alpha in %d buckets and phase_beta in %d, want both", a.Spans, be.Spans)
	}
	// The phase change shows: alpha's spans end about where beta's start
	// (a bucket or two of overlap where the switch falls), 2 s each.
	slack := 2*got.Bucket + 0.05
	if a.To > be.From+slack || a.From > be.From || a.To > be.To {
		t.Errorf("phase_alpha spans %.2f-%.2f s and phase_beta %.2f-%.2f s: want alpha before beta", a.From, a.To, be.From, be.To)
	}
	for name, f := range map[string]struct{ From, To float64 }{"phase_alpha": {a.From, a.To}, "phase_beta": {be.From, be.To}} {
		if d := f.To - f.From; d < 1.6 || d > 2.4+slack {
			t.Errorf("%s spans %.2f s of the track, want about 2 s", name, d)
		}
	}
	// In the heatmap too: alpha's columns come before beta's.
	if len(got.Alpha.Cells) == 0 || len(got.Beta.Cells) == 0 {
		t.Errorf("heatmap cells painted: alpha %d, beta %d", len(got.Alpha.Cells), len(got.Beta.Cells))
	} else if maxOf(got.Alpha.Cells) > minOf(got.Beta.Cells)+1 {
		t.Errorf("heatmap: alpha in columns %v, beta in %v; want alpha's before beta's", got.Alpha.Cells, got.Beta.Cells)
	}
	c := got.Chart
	if !(c.AlphaFrom < c.BetaFrom && c.AlphaTo <= c.BetaFrom+slack) {
		t.Errorf("stack chart: alpha %.2f-%.2f s, beta %.2f-%.2f s; want alpha before beta", c.AlphaFrom, c.AlphaTo, c.BetaFrom, c.BetaTo)
	}
	if !strings.HasPrefix(got.ChartTip, "phase_beta") {
		t.Errorf("stack chart tooltip over phase_beta: %q", got.ChartTip)
	}
}

func maxOf(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func minOf(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}
