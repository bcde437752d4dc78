package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/internal/synthcapture"
)

// tvPhased is a 6 s cpu capture of two processes. app (pid 200) has a
// worker thread (201) that runs phase_one for the first 3 s and phase_two
// for the last 3, 50 samples a second; an io thread (202) running steady
// 20 a second throughout; and its main thread (200) idle_loop 5 a second.
// A process named like markup (pid 300, evilComm) runs background 10 a
// second: its name must reach the page as text.
func tvPhased() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 6 * time.Second, Timestamps: true, Source: "bpf",
		Params: capture.Params{Type: capture.CPU, Hz: 50}})
	stack := func(names ...string) uint32 {
		ids := []uint32{b.Frame(capture.Frame{Name: names[0], Kind: capture.KindProcess})}
		for _, n := range names[1:] {
			ids = append(ids, b.Frame(capture.Frame{Name: n, Module: "/usr/bin/" + names[0]}))
		}
		return b.Stack(ids)
	}
	one, two := stack("app", "main", "worker", "phase_one"), stack("app", "main", "worker", "phase_two")
	steady, idle, bg := stack("app", "main", "io", "steady"), stack("app", "main", "idle_loop"), stack(evilComm, "main", "background")
	add := func(stack uint32, pid, tid uint32, from, to time.Duration, perSecond int) {
		step := time.Second / time.Duration(perSecond)
		for at := from; at < to; at += step {
			b.Add(capture.Event{Time: int64(at), Value: 1, Stack: stack, PID: pid, TID: tid, CPU: uint16(tid % 2)})
		}
	}
	add(one, 200, 201, 0, 3*time.Second, 50)
	add(two, 200, 201, 3*time.Second, 6*time.Second, 50)
	add(steady, 200, 202, 0, 6*time.Second, 20)
	add(idle, 200, 200, 0, 6*time.Second, 5)
	add(bg, 300, 300, 0, 6*time.Second, 10)
	c := b.Capture()
	c.SortEvents()
	return c
}

// evilComm is a process name that would run script if it reached the DOM
// as markup.
const evilComm = `<img src=x onerror="document.title='pwned'">bg`

// tvOffCPU is a 4 s off-CPU capture: four threads of app (401-404) each
// blocked in poll 90 ms of every 100 ms, then waiting 10 ms in the run
// queue, for the first 2 s; in the last 2 s only thread 401 does.
func tvOffCPU() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Start: time.Unix(1700000000, 0), Duration: 4 * time.Second, Timestamps: true, Source: "bpf"})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	poll := b.Frame(capture.Frame{Name: "poll", Module: "/usr/bin/app"})
	blocked := b.Stack([]uint32{app, poll, b.Frame(capture.Frame{Name: capture.FrameBlocked, Kind: capture.KindSynthetic})})
	runq := b.Stack([]uint32{app, poll, b.Frame(capture.Frame{Name: capture.FrameRunqueue, Kind: capture.KindSynthetic})})
	for tid := uint32(401); tid <= 404; tid++ {
		end := 2 * time.Second
		if tid == 401 {
			end = 4 * time.Second
		}
		for at := time.Duration(0); at < end; at += 100 * time.Millisecond {
			b.Add(capture.Event{Time: int64(at), Value: int64(90 * time.Millisecond), Stack: blocked, PID: 400, TID: tid})
			b.Add(capture.Event{Time: int64(at + 90*time.Millisecond), Value: int64(10 * time.Millisecond), Stack: runq, PID: 400, TID: tid})
		}
	}
	c := b.Capture()
	c.SortEvents()
	return c
}

// TestTimeViewsBrowser acts as a user on the time views in headless
// Chromium: brushes the heatmap and a track and sees the tracks, graph and
// table follow; adds a second range with Shift; steps with ] and [;
// clicks a thread's track and sees every view filtered, in the URL;
// opens the stack chart and hovers a frame; selects a function and sees
// where it ran on the heatmap and the tracks; reads an off-CPU capture in
// threads blocked; brushes both sides on the compare page. Screenshots
// are kept in internal/browser/artifacts/TestTimeViewsBrowser.
func TestTimeViewsBrowser(t *testing.T) {
	browser.Require(t)
	s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cpu := hmStore(t, s, tvPhased())
	off := hmStore(t, s, tvOffCPU())
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded", Duration: time.Second})
	noTS.Add(capture.Event{Value: 3, Stack: noTS.Stack([]uint32{noTS.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), noTS.Frame(capture.Frame{Name: "f"})})})
	folded := hmStore(t, s, noTS.Capture())
	// The benchmark's capture, shorter: 50 threads in 5 processes, lost
	// events in its middle tenth.
	synth, err := synthcapture.Generate(synthcapture.Options{Duration: 20 * time.Second, Hz: 199, Lost: 500})
	if err != nil {
		t.Fatal(err)
	}
	synthID := hmStore(t, s, synth)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	artifacts := browser.Artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join(browser.Dir(), "timeviews.mjs"), ts.URL, cpu, off, folded, artifacts, synthID)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	type track struct {
		Key, PID, TID, Name, Sub   string
		Selected                   bool
		Spans                      int
		FocusFrom, FocusTo, Halves string
	}
	var got struct {
		Errors, Screenshots                             []string
		Tracks, FocusTracks, HoverTracks                []track
		OffTracks                                       []track
		HeatBrushURL, HeatBrushRange, HeatBrushTrackSel string
		HeatBrushTable, HeatBrushGraph                  []string
		TrackBrushURL, HeatShiftURL, HeatShiftTracks    string
		HeatShiftHighlights                             int
		TrackBrushTable                                 []string
		TrackBrushHeat                                  int
		TwoRangesURL, TwoRangesInfo, TwoRangesSamples   string
		TwoRangesTable                                  []string
		StepURL, StepRange                              string
		PickURL, PickRange, PickLegend                  string
		WholeLegend                                     int
		PickTable, PickGraph, PickTracks                []string
		PermalinkTable, PermalinkSelected               []string
		ChartNames, ChartSelected                       []string
		ChartInfo, ChartTip, ZoomURL                    string
		ChartOrder                                      *bool
		FocusCells                                      []int
		OffLegend, OffHover, OffTrackHover              string
		OffSumLegend, OffSumURL                         string
		NoTime                                          string
		NoTimeHidden                                    []bool
		CompareURL, CompareDiff                         string
		CompareInputs                                   map[string]string
		SynthTracks, SynthOpened                        []track
		SynthLost                                       string
		DarkBackground, DarkTrackLabel                  string
		Title                                           string
		PermalinkFocus                                  []string
		Images                                          int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	t.Logf("screenshots: %s", strings.Join(got.Screenshots, ", "))
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	keys := func(ts []track) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Key)
		}
		return out
	}
	// The tracks: the total, app (open, its threads busiest first), bg.
	if k := strings.Join(keys(got.Tracks), ","); k != "all,p200,t201,t202,t200,p300" {
		t.Errorf("tracks %s, want all,p200,t201,t202,t200,p300", k)
	}
	for _, tr := range got.Tracks {
		if tr.Key == "p300" && tr.Name != evilComm {
			t.Errorf("pid 300's track is named %q, want the process name as text, %q", tr.Name, evilComm)
		}
		if tr.Key == "p200" && (tr.Name != "app" || !strings.Contains(tr.Sub, "pid 200, 3 threads · 88.2%")) {
			t.Errorf("app's track reads %q %q, want app, pid 200, 3 threads, 88.2%% (450 of 510 samples)", tr.Name, tr.Sub)
		}
	}

	// Brushing the heatmap's first two columns: 0-2 s in every view.
	if !strings.Contains(got.HeatBrushURL, "from=0&to=2") || got.HeatBrushRange != "showing 0–2 s" || got.HeatBrushTrackSel != "0-2" {
		t.Errorf("heatmap brush: URL %q, range %q, tracks' selection %q", got.HeatBrushURL, got.HeatBrushRange, got.HeatBrushTrackSel)
	}
	if slices.Contains(got.HeatBrushTable, "phase_two") || !slices.Contains(got.HeatBrushTable, "phase_one") || slices.Contains(got.HeatBrushGraph, "phase_two") {
		t.Errorf("0-2 s: table %v, graph %v; want phase_one without phase_two", got.HeatBrushTable, got.HeatBrushGraph)
	}
	// Shift-drag on the heatmap: a second range, on the tracks too.
	if !strings.Contains(got.HeatShiftURL, "from=0&from=4&to=2&to=6") || got.HeatShiftHighlights < 2 || got.HeatShiftTracks != "0-2,4-6" {
		t.Errorf("heatmap Shift-drag: URL %q, %d highlights, tracks' selection %q", got.HeatShiftURL, got.HeatShiftHighlights, got.HeatShiftTracks)
	}
	// Brushing a track: 3.5-5.5 s, the heatmap highlights it.
	if !strings.Contains(got.TrackBrushURL, "from=3.5&to=5.5") || slices.Contains(got.TrackBrushTable, "phase_one") || got.TrackBrushHeat == 0 {
		t.Errorf("track brush: URL %q, table %v, %d heatmap highlights", got.TrackBrushURL, got.TrackBrushTable, got.TrackBrushHeat)
	}
	// Shift adds 0.5-1 s: both in the URL, the table counts both.
	if !strings.Contains(got.TwoRangesURL, "from=0.5&from=3.5&to=1&to=5.5") || got.TwoRangesInfo != "showing 0.5–1 s + 3.5–5.5 s" ||
		!slices.Contains(got.TwoRangesTable, "phase_one") || !slices.Contains(got.TwoRangesTable, "phase_two") {
		t.Errorf("two ranges: URL %q, %q, table %v", got.TwoRangesURL, got.TwoRangesInfo, got.TwoRangesTable)
	}
	// steady: 20 a second over 2.5 s.
	if got.TwoRangesSamples != "50 samples" {
		t.Errorf("steady's self over the two ranges: %q, want 50 samples", got.TwoRangesSamples)
	}
	if !strings.Contains(got.StepURL, "from=1&to=2") || got.StepRange != "showing 1–2 s" {
		t.Errorf("0-1 s, ], ], [: URL %q, %q, want 1-2 s", got.StepURL, got.StepRange)
	}

	// The worker's track: tid=201 everywhere, and kept by the permalink.
	if !strings.Contains(got.PickURL, "tid=201") || got.PickRange != "showing whole capture of thread 201" ||
		strings.Join(got.PickTable, ",") != strings.Join(got.PermalinkTable, ",") || strings.Join(got.PickTracks, ",") != "t201" || strings.Join(got.PermalinkSelected, ",") != "t201" {
		t.Errorf("pick worker: URL %q, %q, tracks selected %v (permalink %v), table %v (permalink %v)", got.PickURL, got.PickRange, got.PickTracks, got.PermalinkSelected, got.PickTable, got.PermalinkTable)
	}
	for _, fn := range []string{"steady", "idle_loop", "background"} {
		if slices.Contains(got.PickTable, fn) || slices.Contains(got.PickGraph, fn) {
			t.Errorf("thread 201 picked: %s still in the table %v or the graph %v", fn, got.PickTable, got.PickGraph)
		}
	}

	// The heatmap follows the pick: thread 201 alone has one sample per
	// 20 ms cell, the whole capture more.
	if !strings.Contains(got.PickLegend, "1 sample per cell") || got.WholeLegend <= 1 {
		t.Errorf("heatmap of thread 201: legend %q (the whole capture's maximum is %d per cell)", got.PickLegend, got.WholeLegend)
	}

	// The stack chart of thread 201: phase_one before phase_two.
	if strings.Join(got.ChartNames, ",") != "app,main,phase_one,phase_two,worker" || got.ChartOrder == nil || !*got.ChartOrder {
		t.Errorf("stack chart: %v, phase_one first %v", got.ChartNames, got.ChartOrder)
	}
	if !strings.HasPrefix(got.ChartTip, "phase_two") || !strings.Contains(got.ChartTip, "/usr/bin/app") || !strings.Contains(got.ChartTip, "3–6 s") {
		t.Errorf("stack chart tooltip over phase_two: %q, want its name, module and 3–6 s", got.ChartTip)
	}
	if strings.Join(got.ChartSelected, ",") != "phase_two" {
		t.Errorf("clicking phase_two in the stack chart selected %v", got.ChartSelected)
	}
	if !strings.Contains(got.ZoomURL, "from=") || !strings.Contains(got.ZoomURL, "to=") {
		t.Errorf("wheel over the stack chart: URL %q, want a narrower range", got.ZoomURL)
	}

	// phase_one selected: heatmap cells and track spans in the first 3 s.
	if len(got.FocusCells) == 0 || slices.Max(got.FocusCells) > 2 {
		t.Errorf("phase_one's heatmap cells in columns %v, want some, all before 3 s", got.FocusCells)
	}
	if k := strings.Join(keys(got.FocusTracks), ","); k != "all,p200,t201" {
		t.Errorf("tracks with phase_one spans: %s, want all,p200,t201", k)
	}
	for _, tr := range got.FocusTracks {
		if tr.FocusFrom != "0" || tr.FocusTo != "3" || !strings.HasSuffix(tr.Halves, ",0") {
			t.Errorf("phase_one on track %s spans %s-%s s, halves %s; want 0-3 s, nothing in the second half", tr.Key, tr.FocusFrom, tr.FocusTo, tr.Halves)
		}
	}
	if strings.Join(got.PermalinkFocus, ",") != "all,p200,t201" {
		t.Errorf("opening the permalink with fn=phase_one painted tracks %v, want all,p200,t201", got.PermalinkFocus)
	}
	for _, tr := range got.HoverTracks {
		if tr.Key == "t201" && (tr.FocusFrom != "3" || tr.FocusTo != "6" || !strings.HasPrefix(tr.Halves, "0,")) {
			t.Errorf("hovering phase_two: the worker's spans %s-%s s, halves %s; want 3-6 s", tr.FocusFrom, tr.FocusTo, tr.Halves)
		}
	}
	if len(got.HoverTracks) == 0 {
		t.Errorf("hovering phase_two's row painted no track")
	}

	// Off-CPU: threads blocked by default, the sum on request.
	if !strings.Contains(got.OffLegend, "threads") || !strings.Contains(got.OffHover, "threads blocked") {
		t.Errorf("off-CPU heatmap legend %q, hover %q, want threads blocked", got.OffLegend, got.OffHover)
	}
	if !strings.Contains(got.OffSumURL, "norm=sum") || !strings.Contains(got.OffSumLegend, "ms blocked") {
		t.Errorf("sum of threads: URL %q, legend %q", got.OffSumURL, got.OffSumLegend)
	}
	if !strings.Contains(got.OffTrackHover, "% blocked") || !strings.Contains(got.OffTrackHover, "waiting to run") {
		t.Errorf("off-CPU track hover %q, want blocked and waiting-to-run time", got.OffTrackHover)
	}

	if !strings.Contains(got.NoTime, "thread tracks, the stack chart") || slices.Contains(got.NoTimeHidden, false) {
		t.Errorf("capture without timestamps: %q, hidden (heatmap, tracks, stack chart tab) %v", got.NoTime, got.NoTimeHidden)
	}

	// 50 threads: 5 process tracks, the busiest open on its 6 busiest
	// threads and a "more threads" track that opens on a click.
	procs, more := 0, ""
	for _, tr := range got.SynthTracks {
		if strings.HasPrefix(tr.Key, "p") {
			procs++
		}
		if strings.HasPrefix(tr.Key, "more-") {
			more = tr.Name
		}
	}
	if procs != 5 || more != "4 more threads" {
		t.Errorf("synthetic capture: %d process tracks, more-threads track %q; want 5 and \"4 more threads\" (tracks %v)", procs, more, keys(got.SynthTracks))
	}
	if len(got.SynthOpened) != len(got.SynthTracks)+3 {
		t.Errorf("opening \"more threads\": %d tracks, want %d (the 4 others instead of the row)", len(got.SynthOpened), len(got.SynthTracks)+3)
	}
	// Lost events: counted in the total's label, and where they happened
	// (the middle tenth) under the pointer at 10 s.
	if !strings.Contains(got.SynthLost, "500 lost |") || !strings.Contains(got.SynthLost, "events lost") {
		t.Errorf("lost events on the total track: %q", got.SynthLost)
	}
	if got.Title == "pwned" || got.Images != 0 {
		t.Errorf("a process name ran as markup: title %q, %d img elements on the page", got.Title, got.Images)
	}
	if got.DarkBackground == "rgb(246, 246, 244)" || got.DarkTrackLabel == "" {
		t.Errorf("dark mode: page %q, track label colour %q", got.DarkBackground, got.DarkTrackLabel)
	}

	if got.CompareInputs["base_from"] != "0" || got.CompareInputs["base_to"] != "3" || got.CompareInputs["compare_from"] != "3" || got.CompareInputs["compare_to"] != "6" ||
		!strings.Contains(got.CompareDiff, "base_from=0&base_to=3") || !strings.Contains(got.CompareDiff, "compare_from=3&compare_to=6") || !strings.Contains(got.CompareURL, "compare_from=3") {
		t.Errorf("compare page brushed 0-3 s and 3-6 s: inputs %v, diff %q, URL %q", got.CompareInputs, got.CompareDiff, got.CompareURL)
	}
}
