package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	g := newGate(1, 1)
	ctx := context.Background()
	if err := g.enter(ctx); err != nil {
		t.Fatal(err)
	}
	// One waits, the next is refused at once.
	waited := make(chan error, 1)
	go func() { waited <- g.enter(ctx) }()
	for g.queued() != 1 {
		time.Sleep(time.Millisecond)
	}
	if err := g.enter(ctx); !errors.Is(err, errBusy) {
		t.Errorf("over the queue: %v, want errBusy", err)
	}
	g.leave()
	if err := <-waited; err != nil {
		t.Errorf("the waiting one: %v", err)
	}
	start := time.Now()
	if err := g.enterWithin(ctx, 50*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("timed wait: %v, want errBusy", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("timed wait took %v", el)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.enterWithin(cctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v, want context.Canceled", err)
	}
	g.leave()
	if g.queued() != 0 || len(g.slots) != 0 {
		t.Errorf("gate not empty: %d waiting, %d in", g.queued(), len(g.slots))
	}
}

// With every rendering slot taken, an uncached rendering waits at most
// renderMaxWait and is then 503 with Retry-After; cached answers and
// renderings once slots free up are served.
func TestRenderOverload(t *testing.T) {
	base, id, _ := hmServer(t)
	s := testServers[base]
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, b := get("/api/captures/" + id + "/folded"); resp.StatusCode != 200 {
		t.Fatalf("folded: %d %s", resp.StatusCode, b)
	}
	for range cap(s.renders.slots) {
		s.renders.enter(context.Background())
	}
	start := time.Now()
	resp, b := get("/api/captures/" + id + "/flamegraph.svg")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("render with every slot busy: %d %s (Retry-After %q), want 503 with Retry-After", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if el := time.Since(start); el > renderMaxWait+time.Second {
		t.Errorf("the 503 took %v", el)
	}
	if resp, _ := get("/api/captures/" + id + "/folded"); resp.StatusCode != 200 {
		t.Errorf("a cached answer while busy: %d, want 200", resp.StatusCode)
	}
	for range cap(s.renders.slots) {
		s.renders.leave()
	}
	if resp, b := get("/api/captures/" + id + "/flamegraph.svg"); resp.StatusCode != 200 {
		t.Errorf("after the slots freed: %d %s", resp.StatusCode, b)
	}
}

// testServers finds the Server behind a test URL.
var testServers = map[string]*Server{}
