package web

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/browser"
)

// TestHeatmapBrowser selects a range on the heatmap in headless Chromium by
// clicking two cells and checks that the flame graph shows that range.
func TestHeatmapBrowser(t *testing.T) {
	browser.Require(t)
	base, id, noTS := hmServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, filepath.Join(browser.Dir(), "heatmap.mjs"), base+"/captures/"+id, base+"/captures/"+noTS)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Errors                                            []string
		Hover, Src, Title, PageURL, Graph                 string
		DiffSrc, FlippedSrc, ComparePageURL, PermalinkSrc string
		DragSrc                                           string
		HighlightStarted, HighlightAfterEsc               int
		HighlightLive, PermalinkHighlight                 int
		NoTimestampsGraphVisible                          bool
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reading the browser's report: %v\n%s", err, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("browser errors: %q", got.Errors)
	}
	if !strings.Contains(got.Hover, "3–3.02 s") || !strings.Contains(got.Hover, "4 samples") {
		t.Errorf("hover over [3][0] shows %q, want its range 3–3.02 s and 4 samples", got.Hover)
	}
	if got.HighlightStarted == 0 || got.HighlightAfterEsc != 0 {
		t.Errorf("highlight: %d rects after the first click, %d after Esc; want some, then none", got.HighlightStarted, got.HighlightAfterEsc)
	}
	if got.HighlightLive < 2 {
		t.Errorf("live highlight from [2][0] to [3][4] drew %d rects, want the rest of column 2 and the head of column 3", got.HighlightLive)
	}
	if !strings.Contains(got.Src, "from=2&") || !strings.Contains(got.Src, "to=2.2") || !strings.Contains(got.Src, "s=hot") {
		t.Errorf("flame graph src %q, want from=2 to=2.2 and the search s=hot", got.Src)
	}
	if !strings.Contains(got.PageURL, "from=2&to=2.2") || !strings.Contains(got.PageURL, "s=hot") {
		t.Errorf("page URL %q is not a permalink of the range", got.PageURL)
	}
	if !strings.Contains(got.Title, "2–2.2 s") {
		t.Errorf("range shown %q, want 2–2.2 s", got.Title)
	}
	if !strings.Contains(got.Graph, "hot_loop") || strings.Contains(got.Graph, "cold_loop") {
		t.Errorf("the range's flame graph should show hot_loop only (hot %v, cold %v)", strings.Contains(got.Graph, "hot_loop"), strings.Contains(got.Graph, "cold_loop"))
	}

	if !strings.Contains(got.DragSrc, "to=3.2") {
		t.Errorf("after a drag from [3][0] to [3][9] the graph src is %q, want from=3 to=3.2", got.DragSrc)
	}
	ranges := map[string]string{"base_from": "2", "base_to": "2.2", "compare_from": "0.5", "compare_to": "0.9"}
	for name, src := range map[string]string{"diff": got.DiffSrc, "flipped": got.FlippedSrc} {
		u, err := url.Parse(src)
		if err != nil || u.Path != "/api/diff.svg" {
			t.Errorf("%s graph src %q, want /api/diff.svg", name, src)
			continue
		}
		for k, want := range ranges {
			if name == "flipped" {
				k = strings.NewReplacer("base", "compare", "compare", "base").Replace(k)
			}
			if v := u.Query().Get(k); v != want {
				t.Errorf("%s graph src %q: %s is %q, want %q", name, src, k, v, want)
			}
		}
	}
	if !strings.Contains(got.ComparePageURL, "compare_from=0.5&compare_to=0.9") {
		t.Errorf("page URL %q is not a permalink of the comparison", got.ComparePageURL)
	}
	if got.PermalinkHighlight == 0 || !strings.Contains(got.PermalinkSrc, "from=2&") || !strings.Contains(got.PermalinkSrc, "to=2.2") {
		t.Errorf("permalink %q: %d highlight rects, graph %q; want the range 2-2.2 restored", got.PageURL, got.PermalinkHighlight, got.PermalinkSrc)
	}
	if !got.NoTimestampsGraphVisible {
		t.Errorf("capture without timestamps: the heatmap should hide and the flame graph stay visible")
	}
}
