package web_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/webtest"
)

// TestBrowserEndToEnd drives the UI in headless Chromium: start a capture
// from the form (fake recorder, so the graph is known), watch the progress,
// zoom and search in the flame graph, download pprof.
func TestBrowserEndToEnd(t *testing.T) {
	browser.Require(t)
	dir := browser.Dir()
	artifacts := filepath.Join(dir, "artifacts", t.Name())
	os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{DataDir: t.TempDir(), Listen: ts.Listener.Addr().String(), Recorder: &webtest.Recorder{Speed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	out, err := browser.Run(t.Context(), filepath.Join(dir, "web.mjs"), ts.URL, artifacts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Errors     []string
		Collectors int
		FormError  string
		CaptureURL string
		Progress   []struct {
			Value   float64
			Left    string
			Samples string
		}
		Status, ZoomURL, Matched, PprofFile, Screenshot string
		Frames, Highlighted                             []string
		DeltaHidden, ListFollowed                       bool
		ListStatus                                      string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q (screenshot: %s)", got.Errors, got.Screenshot)
	}
	if got.Collectors != 7 {
		t.Errorf("capabilities table has %d collectors, want 7", got.Collectors)
	}
	if !strings.Contains(got.FormError, "pid 999999999 does not exist") {
		t.Errorf("form error %q", got.FormError)
	}
	if !regexp.MustCompile(`/captures/[0-9]{8}-[0-9]{6}-[0-9a-f]{8}$`).MatchString(got.CaptureURL) {
		t.Errorf("capture page URL %q", got.CaptureURL)
	}
	// The progress moved: some sample while running had samples > 0 and a
	// bar between 0 and 1.
	moved := false
	for _, p := range got.Progress {
		n, _ := strconv.Atoi(p.Samples)
		if n > 0 && p.Value > 0 && p.Value < 1 && strings.HasSuffix(p.Left, "s left") {
			moved = true
		}
	}
	if !moved {
		t.Errorf("no live progress seen: %+v", got.Progress)
	}
	if got.ListStatus != "running" || !got.ListFollowed {
		t.Errorf("captures list: status %q while running, followed to done without reload: %v", got.ListStatus, got.ListFollowed)
	}
	if strings.TrimSpace(got.Status) != "done" {
		t.Errorf("status after the capture: %q", got.Status)
	}
	for _, want := range []string{"alpha", "beta", "gamma", "delta"} {
		if !contains(got.Frames, want) {
			t.Errorf("flame graph lacks %s: %q", want, got.Frames)
		}
	}
	if !strings.Contains(got.ZoomURL, "zoom=") || !got.DeltaHidden {
		t.Errorf("zoom on alpha: URL %q, delta hidden %v", got.ZoomURL, got.DeltaHidden)
	}
	// beta is 300 of 600 samples per second of the fake capture: 50%.
	if pct, _ := strconv.ParseFloat(got.Matched, 64); pct < 49.9 || pct > 50.1 {
		t.Errorf("search ^beta$ matched %s%%, want 50", got.Matched)
	}
	if len(got.Highlighted) != 1 || got.Highlighted[0] != "beta" {
		t.Errorf("search highlighted %q, want beta", got.Highlighted)
	}
	data, err := os.ReadFile(got.PprofFile)
	if err != nil {
		t.Fatalf("downloaded pprof: %v", err)
	}
	prof, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("downloaded pprof does not parse: %v", err)
	}
	if len(prof.Sample) != 3 {
		t.Errorf("pprof has %d samples, want the 3 stacks", len(prof.Sample))
	}
	if !t.Failed() {
		os.RemoveAll(artifacts)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
