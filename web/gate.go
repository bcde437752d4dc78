package web

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errBusy: a gate's wait queue is full.
var errBusy = errors.New("busy")

// gate admits at most slots holders at once; up to maxWait more wait in
// line, and anyone beyond that is refused at once (the caller answers 429 or
// 503 with Retry-After) instead of piling up goroutines and memory.
type gate struct {
	slots   chan struct{}
	mu      sync.Mutex
	waiting int
	maxWait int
}

func newGate(slots, maxWait int) *gate {
	return &gate{slots: make(chan struct{}, slots), maxWait: maxWait}
}

// enter takes a slot, waiting in line while ctx lasts; errBusy when the line
// is full. The caller calls leave after a nil error.
func (g *gate) enter(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	g.mu.Lock()
	if g.waiting >= g.maxWait {
		g.mu.Unlock()
		return errBusy
	}
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enterWithin is enter that also gives up with errBusy after waiting d: a
// request answered late is worse than one told to retry.
func (g *gate) enterWithin(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := g.enter(ctx)
	if errors.Is(err, context.DeadlineExceeded) && context.Cause(ctx) == context.DeadlineExceeded {
		return errBusy
	}
	return err
}

func (g *gate) leave() { <-g.slots }

// queued is how many wait in line now.
func (g *gate) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}
