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
	if g.queued() != 0 || g.held() != 0 {
		t.Errorf("gate not empty: %d waiting, %d in", g.queued(), g.held())
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
	for range s.renders.size() {
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
	for range s.renders.size() {
		s.renders.leave()
	}
	if resp, b := get("/api/captures/" + id + "/flamegraph.svg"); resp.StatusCode != 200 {
		t.Errorf("after the slots freed: %d %s", resp.StatusCode, b)
	}
}

// testServers finds the Server behind a test URL.
var testServers = map[string]*Server{}

// The weighted gate admits small costs beside each other within the
// budget, a cost over the budget alone, first come first served (a large
// one waiting is not passed by smaller ones), and forgets a waiter whose
// request ended.
func TestWeightedGate(t *testing.T) {
	ctx := context.Background()
	g := newWeightedGate(100, 3)
	for range 2 {
		if err := g.enter(ctx, 40); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := g.counts(); n != 2 {
		t.Fatalf("two costs of 40 within 100: %d running, want 2", n)
	}
	admitted := make(chan int64, 4)
	enter := func(cost int64) {
		go func() {
			if err := g.enter(ctx, cost); err == nil {
				admitted <- cost
			}
		}()
	}
	waitLine := func(n int) {
		t.Helper()
		for i := 0; ; i++ {
			if _, w := g.counts(); w == n {
				return
			}
			if i > 5000 {
				t.Fatalf("the line did not reach %d", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	enter(500) // over the budget: waits until nothing runs
	waitLine(1)
	enter(10) // fits, but a larger one came first
	waitLine(2)
	cctx, cancel := context.WithCancel(ctx)
	gone := make(chan error, 1)
	go func() { gone <- g.enter(cctx, 10) }()
	waitLine(3)
	if err := g.enter(ctx, 1); !errors.Is(err, errBusy) {
		t.Errorf("over the line: %v, want errBusy", err)
	}
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("a waiter whose request ended: %v", err)
	}
	waitLine(2)
	select {
	case c := <-admitted:
		t.Fatalf("cost %d admitted while 80 of 100 is used and a larger one waits first", c)
	case <-time.After(20 * time.Millisecond):
	}
	g.leave(40)
	g.leave(40)
	if c := <-admitted; c != 500 {
		t.Fatalf("admitted %d first, want the 500 that waited first", c)
	}
	if n, w := g.counts(); n != 1 || w != 1 {
		t.Fatalf("the large one runs alone: %d running, %d waiting; want 1 and 1", n, w)
	}
	g.leave(500)
	if c := <-admitted; c != 10 {
		t.Fatalf("admitted %d, want 10", c)
	}
	g.leave(10)
	if n, w := g.counts(); n != 0 || w != 0 {
		t.Errorf("all left: %d running, %d waiting", n, w)
	}
}
