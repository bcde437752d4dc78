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
// 503 with Retry-After) instead of piling up goroutines and memory. It is a
// weightedGate whose holders each cost one slot.
type gate struct{ w *weightedGate }

func newGate(slots, maxWait int) *gate {
	return &gate{w: newWeightedGate(int64(slots), maxWait)}
}

// enter takes a slot, waiting in line while ctx lasts; errBusy when the line
// is full. The caller calls leave after a nil error.
func (g *gate) enter(ctx context.Context) error { return g.w.enter(ctx, 1) }

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

func (g *gate) leave() { g.w.leave(1) }

// queued is how many wait in line now.
func (g *gate) queued() int {
	_, waiting := g.w.counts()
	return waiting
}

// weightedGate admits holders by what each may cost (the memory an
// import's decoding takes): the costs of those admitted add up to at most
// budget, except that one holder is always admitted when none is in, so a
// cost over the budget runs alone. Up to maxWait more wait, first come
// first served (a large one is not passed for ever by small ones); beyond
// that, errBusy.
type weightedGate struct {
	budget  int64
	maxWait int

	mu      sync.Mutex
	used    int64
	running int
	line    []*weightedWaiter
}

type weightedWaiter struct {
	cost  int64
	ready chan struct{} // closed when admitted
}

func newWeightedGate(budget int64, maxWait int) *weightedGate {
	return &weightedGate{budget: budget, maxWait: maxWait}
}

// enter admits a holder of cost, waiting in line while ctx lasts; errBusy
// when the line is full. The caller calls leave(cost) after a nil error.
func (g *weightedGate) enter(ctx context.Context, cost int64) error {
	g.mu.Lock()
	if len(g.line) == 0 && g.fits(cost) {
		g.admit(cost)
		g.mu.Unlock()
		return nil
	}
	if len(g.line) >= g.maxWait {
		g.mu.Unlock()
		return errBusy
	}
	w := &weightedWaiter{cost: cost, ready: make(chan struct{})}
	g.line = append(g.line, w)
	g.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		select {
		case <-w.ready: // admitted meanwhile: give it back
			g.leaveLocked(cost)
		default:
			for i, o := range g.line {
				if o == w {
					g.line = append(g.line[:i], g.line[i+1:]...)
					break
				}
			}
			g.wake() // the head may fit now that this one is gone
		}
		return ctx.Err()
	}
}

func (g *weightedGate) fits(cost int64) bool { return g.running == 0 || g.used+cost <= g.budget }

func (g *weightedGate) admit(cost int64) {
	g.used += cost
	g.running++
}

// wake admits the waiters at the head of the line that fit.
func (g *weightedGate) wake() {
	for len(g.line) > 0 && g.fits(g.line[0].cost) {
		w := g.line[0]
		g.line = g.line[1:]
		g.admit(w.cost)
		close(w.ready)
	}
}

func (g *weightedGate) leave(cost int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leaveLocked(cost)
}

func (g *weightedGate) leaveLocked(cost int64) {
	g.used -= cost
	g.running--
	g.wake()
}

// counts are the holders admitted and waiting now.
func (g *weightedGate) counts() (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, len(g.line)
}

// held is how many slots are taken now, size how many there are.
func (g *gate) held() int {
	running, _ := g.w.counts()
	return running
}

func (g *gate) size() int { return int(g.w.budget) }
