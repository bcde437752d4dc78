package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/web"
)

// profilerRecorder is the real recorder, as cmd/scorch wires it.
type profilerRecorder struct{}

func (profilerRecorder) Record(ctx context.Context, p capture.Params, progress func(web.Progress)) (*capture.Capture, error) {
	c, err := profiler.Record(ctx, p, profiler.Options{Progress: func(pr profiler.Progress) {
		progress(web.Progress{Elapsed: pr.Elapsed, Events: pr.Events, Lost: pr.Lost})
	}})
	if errors.Is(err, profiler.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", web.ErrUnavailable, err)
	}
	return c, err
}

func (profilerRecorder) Capabilities(ctx context.Context) web.Capabilities {
	caps := profiler.Capabilities(ctx)
	out := web.Capabilities{Kernel: caps.Kernel, BTF: caps.BTF, Collectors: map[string]web.Collector{}}
	for k, c := range caps.Collectors {
		out.Collectors[k] = web.Collector{Available: c.Available, Reason: c.Reason}
	}
	return out
}

const browserWorkload = `
volatile unsigned long sink;
__attribute__((noinline)) void scorch_browser_hot(void) { for (int i = 0; i < 3000000; i++) sink += i; }
int main(void) { for (;;) scorch_browser_hot(); }
`

// TestBrowserRealCapture is the same end-to-end run with the BPF profiler
// recording the whole host while a workload spins.
func TestBrowserRealCapture(t *testing.T) {
	testutil.RequireRoot(t)
	browser.Require(t)
	dir := browser.Dir()
	if c := profiler.Capabilities(context.Background()).Collectors["cpu"]; !c.Available {
		t.Skipf("the cpu collector cannot run here: %s", c.Reason)
	}
	testutil.Start(t, testutil.BuildC(t, "gcc", browserWorkload, "-O1", "-fno-omit-frame-pointer"))
	artifacts := filepath.Join(dir, "artifacts", t.Name())
	os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{DataDir: t.TempDir(), Listen: ts.Listener.Addr().String(), Recorder: profilerRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	t.Setenv("ZOOM", "scorch_browser_hot")
	t.Setenv("SEARCH", "scorch_browser_hot")
	t.Setenv("DURATION", "3s")
	out, err := browser.Run(t.Context(), filepath.Join(dir, "web.mjs"), ts.URL, artifacts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Errors     []string
		Screenshot string
		Status     string
		Frames     []string
		ZoomURL    string
		Matched    string
		PprofFile  string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q (screenshot: %s)", got.Errors, got.Screenshot)
	}
	if !contains(got.Frames, "scorch_browser_hot") {
		t.Errorf("the flame graph of the real capture lacks scorch_browser_hot (%d frames)", len(got.Frames))
	}
	// Its share depends on what else runs on the host; the search must
	// find it.
	if pct, _ := strconv.ParseFloat(got.Matched, 64); !(pct > 0) {
		t.Errorf("search scorch_browser_hot matched %s%%, want more than 0", got.Matched)
	}
	if st, err := os.Stat(got.PprofFile); err != nil || st.Size() == 0 {
		t.Errorf("pprof download: %v", err)
	}
	if !t.Failed() {
		os.RemoveAll(artifacts)
	}
}
