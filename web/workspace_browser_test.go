package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/web/store"
)

// wsPhased is a cpu capture of two phases of 2 s each, 100 samples a
// second. hot is called from compute (under work) and from parse:
//
//	phase 1: work;compute;hot 60/s, parse;hot 20/s, work;wait 10/s, parse;lex 10/s
//	phase 2: work;compute;hot 40/s, parse;hot 40/s, work;wait 10/s, parse;lex 10/s
//
// so hot holds 320 of 400 samples (80%), 200 of them from compute.
func wsPhased() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 4 * time.Second, Timestamps: true, Source: "bpf",
		Params: capture.Params{Type: capture.CPU, Hz: 99}})
	stack := func(names ...string) uint32 {
		ids := []uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})}
		for _, n := range names {
			f := capture.Frame{Name: n, Module: "/usr/bin/app"}
			if n == "hot" {
				f.File, f.Line = "/src/app/hot.c", 42
			}
			ids = append(ids, b.Frame(f))
		}
		return b.Stack(ids)
	}
	stacks := []uint32{stack("main", "work", "compute", "hot"), stack("main", "parse", "hot"), stack("main", "work", "wait"), stack("main", "parse", "lex")}
	rates := [2][4]int{{60, 20, 10, 10}, {40, 40, 10, 10}}
	for s := 0; s < 4; s++ {
		phase := rates[s/2]
		n := 0
		for k, rate := range phase {
			for i := 0; i < rate; i++ {
				// spread each second's samples over it
				at := int64(s)*int64(time.Second) + int64(n)*int64(time.Second)/100
				b.Add(capture.Event{Time: at, Value: 1, Stack: stacks[k], PID: 100, TID: 100 + uint32(k%2), CPU: uint16(k % 2)})
				n++
			}
		}
	}
	c := b.Capture()
	c.SortEvents()
	return c
}

// wsMem: 10 allocations of 4000 bytes by temp_buf, freed, and 10 of 1000
// bytes by cache_fill, still in use at the end.
func wsMem() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.Mem, Event: "malloc", Start: time.Unix(1700000000, 0), Duration: 2 * time.Second, Timestamps: true, Source: "bpf"})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main"})
	temp := b.Stack([]uint32{app, main, b.Frame(capture.Frame{Name: "temp_buf"})})
	cache := b.Stack([]uint32{app, main, b.Frame(capture.Frame{Name: "cache_fill"})})
	for i := 0; i < 10; i++ {
		b.Add(capture.Event{Time: int64(i) * int64(100*time.Millisecond), Value: 4000, Value2: 1, Stack: temp, PID: 1, TID: 1})
		b.Add(capture.Event{Time: int64(i)*int64(100*time.Millisecond) + 1, Value: 1000, Value2: 1, Stack: cache, PID: 1, TID: 1, Flags: capture.FlagInuse})
	}
	return b.Capture()
}

// TestWorkspaceBrowser acts as a user on the capture page in headless
// Chromium: picks a function in the table and reads its callers, focuses
// on a frame from the context menu and goes Back, searches and steps
// through the matches, zooms, compares two ranges picked on the heatmap
// and reads the change in the table, switches a mem capture to in-use,
// resizes the window, and checks that no page logs an error. Screenshots
// are kept in internal/browser/artifacts/TestWorkspaceBrowser.
func TestWorkspaceBrowser(t *testing.T) {
	browser.Require(t)
	s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cpu := hmStore(t, s, wsPhased())
	mem := hmStore(t, s, wsMem())
	// Recorded with view=inuse from the new-capture form.
	memInuse := hmStore(t, s, wsMem())
	s.store.Update(memInuse, func(r *store.Record) { r.Params.View = "inuse" })
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded", Duration: time.Second})
	noTS.Add(capture.Event{Value: 3, Stack: noTS.Stack([]uint32{noTS.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), noTS.Frame(capture.Frame{Name: "<b>bold</b>"})})})
	folded := hmStore(t, s, noTS.Capture())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	artifacts := browser.Artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join(browser.Dir(), "workspace.mjs"), ts.URL, cpu, mem, folded, artifacts, memInuse)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Errors                          []string
		RootInView, CanvasPainted       bool
		CanvasWidth, BoxWidth           float64
		WideCanvasWidth, WideBoxWidth   float64
		HotTotal, HotSource             string
		SelectURL, SandwichTitle        string
		CallerTip                       string
		CalleesOfHot                    []string
		FocusURL, FocusCrumb            string
		FocusRootKids                   []string
		FocusHotTotal                   string
		FocusTableFresh, BackTableFresh bool
		BackURL, BackHotTotal           string
		BackCrumbs                      int
		SearchInfo, StepInfo, StepBack  string
		MatchedRows                     []string
		ZoomURL, ZoomCrumb, EscURL      string
		ZoomWidest                      string
		DiffURL                         string
		DiffHeader                      []string
		DiffRows                        map[string]string
		LegendVisible                   bool
		MemTop, MemInuseTop, MemURL     string
		MemInuseShare                   string
		FormInuseURL, FormInuseTop      string
		PrunedBefore, GraftedAfter      []string
		NoTimeText                      string
		FoldedNames                     []string
		ErrorPage                       string
		DarkBackground                  string
		Screenshots                     []string
		Tooltip                         string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	t.Logf("screenshots: %s", strings.Join(got.Screenshots, ", "))
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	if !got.RootInView || !got.CanvasPainted {
		t.Errorf("first paint: root in view %v, canvas painted %v", got.RootInView, got.CanvasPainted)
	}
	if got.CanvasWidth < got.BoxWidth-2 || got.BoxWidth < 1100 {
		t.Errorf("at 1280 px the graph is %v px wide in a %v px box, want it full width", got.CanvasWidth, got.BoxWidth)
	}
	if got.WideCanvasWidth < got.WideBoxWidth-2 || got.WideBoxWidth < 1750 {
		t.Errorf("after resizing to 1920 px the graph is %v px wide in a %v px box, want it redrawn full width", got.WideCanvasWidth, got.WideBoxWidth)
	}
	if !strings.Contains(got.Tooltip, "total: 200 samples · 50.00% of all · 100.00% of parent") || !strings.Contains(got.Tooltip, "self: 200 samples") {
		t.Errorf("tooltip over hot: %q", got.Tooltip)
	}
	if !strings.Contains(got.Tooltip, "/src/app/hot.c:42") || got.HotSource != "/src/app/hot.c:42" {
		t.Errorf("hot's source: tooltip %q, table row title %q; want /src/app/hot.c:42", got.Tooltip, got.HotSource)
	}
	if got.HotTotal != "80.00%" {
		t.Errorf("table: hot's total %q, want 80.00%%", got.HotTotal)
	}
	if !strings.Contains(got.SelectURL, "fn=hot") || !strings.HasPrefix(got.SandwichTitle, "hot — total 320 samples (80.00%)") {
		t.Errorf("selecting hot: URL %q, sandwich %q", got.SelectURL, got.SandwichTitle)
	}
	if !strings.Contains(got.CallerTip, "compute") || !strings.Contains(got.CallerTip, "200 samples") || !strings.Contains(got.CallerTip, "62.50% of parent") {
		t.Errorf("hovering compute among hot's callers: %q, want 200 samples, 62.50%% of parent", got.CallerTip)
	}
	if !strings.Contains(got.FocusURL, "t=focus%3Awork") || got.FocusCrumb != "Focus on work ×" || strings.Join(got.FocusRootKids, ",") != "work" || got.FocusHotTotal != "83.33%" {
		t.Errorf("focus on work: URL %q, crumb %q, root's children %v, hot's total %q (want 83.33%%)", got.FocusURL, got.FocusCrumb, got.FocusRootKids, got.FocusHotTotal)
	}
	if !got.FocusTableFresh || !got.BackTableFresh {
		t.Errorf("the function table after focus (same as a new page's: %v) and after Back (%v) differs from the one a new page draws", got.FocusTableFresh, got.BackTableFresh)
	}
	if strings.Contains(got.BackURL, "t=") || got.BackCrumbs != 0 || got.BackHotTotal != "80.00%" {
		t.Errorf("Back after focus: URL %q, %d transform crumbs, hot's total %q", got.BackURL, got.BackCrumbs, got.BackHotTotal)
	}
	if !strings.HasPrefix(got.SearchInfo, "3 frames match, 90.00% of the total") {
		t.Errorf("search hot|lex: %q, want 3 frames, 90.00%%", got.SearchInfo)
	}
	if !strings.Contains(got.StepInfo, "2/3") || !strings.Contains(got.StepBack, "1/3") {
		t.Errorf("n, n, N: %q then %q", got.StepInfo, got.StepBack)
	}
	if strings.Join(got.MatchedRows, ",") != "hot,lex" {
		t.Errorf("rows highlighted by the search: %v", got.MatchedRows)
	}
	if !strings.Contains(got.ZoomURL, "zoom=app%3Bmain%3Bparse") || got.ZoomCrumb != "parse" || got.ZoomWidest != "parse" || strings.Contains(got.EscURL, "zoom=") {
		t.Errorf("zoom on parse: URL %q, crumb %q, widest frame %q; after Esc %q", got.ZoomURL, got.ZoomCrumb, got.ZoomWidest, got.EscURL)
	}
	if !strings.Contains(got.DiffURL, "from=0&to=2&compare_from=2&compare_to=4") || !got.LegendVisible {
		t.Errorf("compare two ranges: URL %q, legend %v", got.DiffURL, got.LegendVisible)
	}
	if strings.Join(got.DiffHeader, ",") != "Total,Base total,Change ▾,Self,Function" {
		t.Errorf("diff table header %v", got.DiffHeader)
	}
	for fn, want := range map[string]string{"compute": "-20.00 pt", "parse": "+20.00 pt", "hot": "0.00 pt"} {
		if got.DiffRows[fn] != want {
			t.Errorf("change of %s: %q, want %q (all: %v)", fn, got.DiffRows[fn], want, got.DiffRows)
		}
	}
	if got.MemTop != "temp_buf" || got.MemInuseTop != "cache_fill" || !strings.Contains(got.MemURL, "view=inuse") || got.MemInuseShare != "100.00%" {
		t.Errorf("mem: top %q, in use %q (%s), URL %q", got.MemTop, got.MemInuseTop, got.MemInuseShare, got.MemURL)
	}
	if !strings.Contains(got.FormInuseURL, "view=inuse") || got.FormInuseTop != "cache_fill" {
		t.Errorf("a mem capture recorded with view=inuse opens at %q with %q on top, want its in-use view", got.FormInuseURL, got.FormInuseTop)
	}
	if strings.Contains(strings.Join(got.PrunedBefore, ","), "hot") || !strings.Contains(strings.Join(got.PrunedBefore, ","), "[pruned]") ||
		!strings.Contains(strings.Join(got.GraftedAfter, ","), "hot") || !strings.Contains(strings.Join(got.GraftedAfter, ","), "compute") {
		t.Errorf("budget 5: drawn %v; after zooming on work %v, want hot and compute fetched and drawn", got.PrunedBefore, got.GraftedAfter)
	}
	if !strings.Contains(got.NoTimeText, "no timestamps") {
		t.Errorf("folded import: %q, want a sentence on the missing time views", got.NoTimeText)
	}
	if strings.Join(got.FoldedNames, ",") != "all,app,<b>bold</b>" {
		t.Errorf("folded import drawn as %v", got.FoldedNames)
	}
	if !strings.Contains(got.ErrorPage, "not found") {
		t.Errorf("unknown capture page: %q", got.ErrorPage)
	}
	if got.DarkBackground == "" || got.DarkBackground == "rgb(246, 246, 244)" {
		t.Errorf("dark mode background %q", got.DarkBackground)
	}
}

// wsHost is a whole-host cpu capture: 40 processes of 3 threads over 4 s,
// each process with 6 stacks 12 to 45 frames deep (user frames above
// kernel ones), so that its flame graph is taller than a 900 px window
// leaves below the page's header.
func wsHost() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 4 * time.Second, Timestamps: true, Source: "bpf",
		Params: capture.Params{Type: capture.CPU, Hz: 99}})
	var stacks []uint32
	var pids []uint32
	for p := 0; p < 40; p++ {
		proc := b.Frame(capture.Frame{Name: fmt.Sprintf("proc%02d", p), Kind: capture.KindProcess})
		for s := 0; s < 6; s++ {
			ids := []uint32{proc}
			depth := 12 + (p*7+s*5)%34
			for d := 0; d < depth; d++ {
				f := capture.Frame{Name: fmt.Sprintf("p%d_fn%d_%d", p, d, s%(d%3+1)), Module: fmt.Sprintf("/usr/bin/proc%02d", p)}
				if d >= depth-4 {
					f = capture.Frame{Name: fmt.Sprintf("kfunc%d", d%7), Kind: capture.KindKernel}
				}
				ids = append(ids, b.Frame(f))
			}
			stacks = append(stacks, b.Stack(ids))
			pids = append(pids, uint32(1000+p))
		}
	}
	for i := 0; i < 8000; i++ {
		k := (i * 7919) % len(stacks)
		b.Add(capture.Event{Time: int64(i) * int64(4*time.Second) / 8000, Value: 1, Stack: stacks[k], PID: pids[k], TID: pids[k]*10 + uint32(i%3), CPU: uint16(i % 2)})
	}
	c := b.Capture()
	c.SortEvents()
	return c
}

// TestWorkspaceRootInView opens capture pages as a user does, at 1280x900
// and 1920x1080: a small capture, a whole-host one (a graph taller than
// the window), in flame and icicle layout, and an import without
// timestamps (no heatmap). Once the page has drawn everything above the
// graph, the graph's root bar is wholly on screen: inside the window and
// inside the part of the graph's box that shows. Screenshots are kept in
// internal/browser/artifacts/TestWorkspaceRootInView.
func TestWorkspaceRootInView(t *testing.T) {
	browser.Require(t)
	s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	small := hmStore(t, s, wsPhased())
	host := hmStore(t, s, wsHost())
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded", Duration: time.Second})
	noTS.Add(capture.Event{Value: 3, Stack: noTS.Stack([]uint32{noTS.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), noTS.Frame(capture.Frame{Name: "main"})})})
	folded := hmStore(t, s, noTS.Capture())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	artifacts := browser.Artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join(browser.Dir(), "workspace-fit.mjs"), ts.URL, artifacts,
		"small=/captures/"+small, "host=/captures/"+host, "host-icicle=/captures/"+host+"?layout=icicle", "folded=/captures/"+folded)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Errors      []string
		Screenshots []string
		Merge       struct {
			HeatmapKept, TracksKept bool
			Graph                   []string
		}
		Pages []struct {
			Name, Viewport, Root string
			Bar, Visible         map[string]float64
			Inside, Uncovered    bool
			Depth                int
			ScrollY              float64
			Rows                 struct {
				Before, After int
				Info          string
			}
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	t.Logf("screenshots: %s", strings.Join(got.Screenshots, ", "))
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	if !got.Merge.HeatmapKept || !got.Merge.TracksKept || slices.Contains(got.Merge.Graph, "compute") || !slices.Contains(got.Merge.Graph, "hot") {
		t.Errorf("merge compute: heatmap kept %v, tracks kept %v (want both: the merge keeps every sample), graph %v (want hot without compute)",
			got.Merge.HeatmapKept, got.Merge.TracksKept, got.Merge.Graph)
	}
	if len(got.Pages) != 8 {
		t.Fatalf("%d pages looked at, want 8", len(got.Pages))
	}
	for _, p := range got.Pages {
		t.Logf("%s at %s: root %q at %v, on screen of the box %v, page scrolled %v px, graph %d frames deep", p.Name, p.Viewport, p.Root, p.Bar, p.Visible, p.ScrollY, p.Depth)
		if p.Root != "all" || !p.Inside || !p.Uncovered {
			t.Errorf("%s at %s: the root bar %q at %v is not wholly on screen (the box shows %v; uncovered %v)", p.Name, p.Viewport, p.Root, p.Bar, p.Visible, p.Uncovered)
		}
		if strings.HasPrefix(p.Name, "host") && p.Depth < 40 {
			t.Errorf("%s: the graph is %d frames deep, want a whole host's 40 or more", p.Name, p.Depth)
		}
		// The whole host's table: 80 rows built, the rest (up to 400) as
		// the table is scrolled down.
		if strings.HasPrefix(p.Name, "host") && (p.Rows.Before != 80 || p.Rows.After != 400 || !strings.HasPrefix(p.Rows.Info, "400 of ")) {
			t.Errorf("%s at %s: function table of %d rows, %d after scrolling it down (%q); want 80, then 400", p.Name, p.Viewport, p.Rows.Before, p.Rows.After, p.Rows.Info)
		}
	}
}
