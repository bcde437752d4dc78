package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// A build that panics must not leave its key answered by a nil value: the
// next request builds again.
func TestLoadOnceDoesNotKeepPanics(t *testing.T) {
	l := newLoadOnce[*capture.Capture](2)
	c := &capture.Capture{}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic of the build did not reach the caller")
			}
		}()
		l.get(c, "k", func() *capture.Capture { panic("boom") })
	}()
	want := &capture.Capture{}
	if got := l.get(c, "k", func() *capture.Capture { return want }); got != want {
		t.Fatalf("after a panicked build got %p, want a new build %p", got, want)
	}
	builds := 0
	for range 3 {
		l.get(c, "k", func() *capture.Capture { builds++; return nil })
	}
	if builds != 0 {
		t.Fatalf("a kept value was built again %d times", builds)
	}
}

// holding counts the views' entries derived from c.
func (v *views) holding(c *capture.Capture) int {
	n := 0
	count := func(keys []captureKey) {
		for _, k := range keys {
			if k.c == c || k.base == c {
				n++
			}
		}
	}
	count(v.sets.c.Keys())
	count(v.summaries.c.Keys())
	count(v.counts.c.Keys())
	count(v.transformed.l.c.Keys())
	count(v.kept.c.Keys())
	return n
}

// What the views derived from a capture goes with it, whichever way the
// server lets it go: a deleted capture must not stay in memory through its
// call trees, summaries or transformed copies.
func TestViewsDroppedWithCapture(t *testing.T) {
	for _, how := range []string{"delete", "eviction"} {
		t.Run(how, func(t *testing.T) {
			base, id, _ := hmServer(t)
			s := testServers[base]
			other := hmStore(t, s, hmPhased(t))
			for _, path := range []string{
				"/api/captures/" + id + "/tree.json",
				"/api/captures/" + id + "/summary.json?t=merge:main",
				"/api/captures/" + id + "/functions.json?t=drop:cold_loop",
				"/api/captures/" + id + "/heatmap.json?t=merge:main",
				"/api/captures/" + id + "/threads.json?t=drop:cold_loop",
				"/api/diff/tree.json?base=" + id + "&compare=" + other,
			} {
				if code, body, _ := hmGet(t, base+path); code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, code, body)
				}
			}
			c := s.loaded.get(id)
			if c == nil {
				t.Fatal("the capture is not loaded after its views were asked for")
			}
			if n := s.views.holding(c); n < 4 {
				t.Fatalf("views derived from the capture: %d entries, want several (sets, summary, counts, transformed, kept, diff)", n)
			}
			switch how {
			case "delete":
				req, _ := http.NewRequest(http.MethodDelete, base+"/api/captures/"+id, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE: %d", resp.StatusCode)
				}
			case "eviction":
				for i := range 8 {
					s.loaded.put(fmt.Sprintf("filler-%d", i), &capture.Capture{})
				}
				if s.loaded.get(id) != nil {
					t.Fatal("the capture is still loaded after 8 others were")
				}
			}
			if n := s.views.holding(c); n != 0 {
				t.Errorf("after the %s, %d entries derived from the capture are still kept", how, n)
			}
			// The other capture's own views are untouched, the diff with
			// the gone capture excepted.
			if code, _, _ := hmGet(t, base+"/api/captures/"+other+"/tree.json"); code != http.StatusOK {
				t.Errorf("the other capture's tree: %d", code)
			}
		})
	}
}
