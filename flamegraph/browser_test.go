package flamegraph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/browser"
)

type browserFrame struct {
	Name  string  `json:"name"`
	Cls   string  `json:"cls"`
	Width float64 `json:"width"`
	Label string  `json:"label"`
}

type browserState struct {
	URL          string         `json:"url"`
	Matched      string         `json:"matched"`
	UnzoomHidden bool           `json:"unzoomHidden"`
	Details      string         `json:"details"`
	Frames       []browserFrame `json:"frames"`
}

func (s browserState) frame(name string) browserFrame {
	for _, f := range s.Frames {
		if f.Name == name {
			return f
		}
	}
	return browserFrame{Cls: "missing"}
}

// TestBrowser opens the SVG in headless Chromium: hover, search, zoom,
// search while zoomed, history, and the script under a nonce-only CSP.
func TestBrowser(t *testing.T) {
	browser.Require(t)
	// leaf_b is under both work_a and work_b: the Matched % differs once
	// zoomed into work_a, where FlameGraph counted hidden frames.
	c := build(t, capture.CPU,
		"app;main;work_a;leaf_a 600",
		"app;main;work_a;leaf_b 100",
		"app;main;work_b;leaf_b 300",
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "graph.svg")
	cspFile := filepath.Join(dir, "csp.svg")
	for _, f := range []struct {
		path string
		opts Options
	}{{file, Options{}}, {cspFile, Options{ScriptNonce: "n0nce"}}} {
		var buf bytes.Buffer
		if err := Render(&buf, c, capture.Query{}, f.opts); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join("testdata", "browser.js"), file, cspFile, "n0nce")
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	get := func(k string) browserState {
		var s browserState
		if err := json.Unmarshal(res[k], &s); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return s
	}
	var errs []string
	json.Unmarshal(res["errors"], &errs)
	if len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
	full := float64(1200 - 20)
	pct := func(v, total float64) string { return fmt.Sprintf("Matched: %.2f%%", 100*v/total) }

	init := get("initial")
	if len(init.Frames) != 8 || !init.UnzoomHidden || init.Matched != "" {
		t.Errorf("initial: %d frames, unzoom hidden %v, matched %q", len(init.Frames), init.UnzoomHidden, init.Matched)
	}
	if hover := string(res["hover"]); !strings.Contains(hover, "work_b: 300 samples (30.00%), self 0 samples") {
		t.Errorf("hover details %s", hover)
	}
	s := get("searchUnzoomed")
	if want := pct(400, 1000); s.Matched != want || !strings.Contains(s.frame("leaf_b").Cls, "m") || strings.Contains(s.frame("leaf_a").Cls, "m") {
		t.Errorf("search leaf_b unzoomed: %q, want %q", s.Matched, want)
	}
	if !strings.Contains(s.URL, "s=leaf_b") {
		t.Errorf("URL %q lacks the search", s.URL)
	}
	z := get("zoomed")
	if w := z.frame("work_a").Width; math.Abs(w-full) > 0.2 {
		t.Errorf("zoomed frame width %.1f, want %.0f", w, full)
	}
	if !strings.Contains(z.frame("main").Cls, "parent") || !strings.Contains(z.frame("work_b").Cls, "hide") || z.UnzoomHidden {
		t.Errorf("zoom: main %q (want parent), work_b %q (want hide), reset hidden %v", z.frame("main").Cls, z.frame("work_b").Cls, z.UnzoomHidden)
	}
	if w := z.frame("leaf_a").Width; math.Abs(w-full*600/700) > 0.2 {
		t.Errorf("leaf_a width %.1f after zoom, want %.1f", w, full*600/700)
	}
	if want := pct(100, 700); z.Matched != want {
		t.Errorf("Matched while zoomed into work_a = %q, want %q (hidden frames must not count)", z.Matched, want)
	}
	if !strings.Contains(z.URL, "x=") || !strings.Contains(z.URL, "d=3") {
		t.Errorf("URL %q lacks the zoom", z.URL)
	}
	ic := get("searchZoomedIgnoreCase")
	if want := pct(100, 700); ic.Matched != want || !strings.Contains(ic.URL, "i=1") {
		t.Errorf("ignore-case search LEAF_B zoomed: %q (url %q), want %q", ic.Matched, ic.URL, want)
	}
	back := get("back")
	if want := pct(100, 700); back.Matched != want || !strings.Contains(back.frame("work_b").Cls, "hide") {
		t.Errorf("Back: matched %q (want %q), work_b %q (want hidden: still zoomed)", back.Matched, want, back.frame("work_b").Cls)
	}
	bu := get("backUnzoomed")
	if strings.Contains(bu.frame("work_b").Cls, "hide") || !bu.UnzoomHidden || bu.Matched != pct(400, 1000) {
		t.Errorf("Back to before the zoom: work_b %q, matched %q", bu.frame("work_b").Cls, bu.Matched)
	}
	csp := get("csp")
	if w := csp.frame("work_b").Width; math.Abs(w-full) > 0.2 || csp.Matched != pct(300, 300) {
		t.Errorf("under the CSP: work_b width %.1f, matched %q: the script did not run", w, csp.Matched)
	}
}
