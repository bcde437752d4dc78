package web

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/calltree"
	"github.com/scorch-dev/scorch/capture"
)

// The page asks for tree, table and health of one view at once: while one
// request builds the view's set, the others wait for it without holding a
// render slot, so other renderings are served meanwhile (with each waiter
// holding a slot they were 503s) and every request of the view is
// answered once the set is built.
func TestViewWaitersHoldNoSlot(t *testing.T) {
	base, id, _ := hmServer(t)
	s := testServers[base]
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	c, err := s.load(id)
	if err != nil {
		t.Fatal(err)
	}
	// The view's build, held until the other requests are in: it holds
	// one of the slots the whole time.
	release := make(chan struct{})
	building := make(chan struct{})
	go s.setOnce(context.Background(), true, c, viewKey(capture.Query{}, nil, false), func() *calltree.Set {
		close(building)
		<-release
		set := calltree.NewSet()
		set.Add(c, capture.Query{}, false, false)
		return set
	})
	<-building
	before := s.views.sets.c.Stats().Hits
	var wg sync.WaitGroup
	routes := []string{"tree.json", "functions.json", "summary.json", "sandwich.json?fn=app"}
	codes := make([]int, len(routes))
	for i, r := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = get("/api/captures/" + id + "/" + r)
		}()
	}
	// Until every one of them waits for the set.
	deadline := time.Now().Add(10 * time.Second)
	for s.views.sets.c.Stats().Hits < before+uint64(len(routes)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := s.renders.held(); n != 1 {
		t.Errorf("render slots held while %d requests wait for one view: %d, want 1 (the build's)", len(routes), n)
	}
	// More than renderMaxWait later, a rendering of another answer still
	// gets a slot.
	time.Sleep(renderMaxWait + 100*time.Millisecond)
	if code, b := get("/api/captures/" + id + "/flamegraph.svg?width=777"); code != http.StatusOK {
		t.Errorf("a rendering while the view builds: %d %s, want 200", code, b)
	}
	close(release)
	wg.Wait()
	for i, r := range routes {
		if codes[i] != http.StatusOK {
			t.Errorf("%s, waiting for the view's set: %d, want 200", r, codes[i])
		}
	}
}
