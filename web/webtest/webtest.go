// Package webtest has a fake recorder for tests of the web service: it
// builds synthetic captures with known stacks, so tests and the browser
// end-to-end run need neither root nor BPF.
package webtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web"
)

// Stack is one synthetic stack, root (process name) first, and how many
// events it gets per 100 ms of capture.
type Stack struct {
	Frames []string
	PID    uint32
	Per100 int
}

// DefaultStacks: app spends 3/4 of its samples in beta and 1/4 in gamma;
// "other" is a second process.
var DefaultStacks = []Stack{
	{Frames: []string{"app", "main", "alpha", "beta"}, PID: 100, Per100: 30},
	{Frames: []string{"app", "main", "alpha", "gamma"}, PID: 100, Per100: 10},
	{Frames: []string{"other", "run", "delta"}, PID: 200, Per100: 20},
}

// Recorder is a fake web.Recorder.
type Recorder struct {
	Stacks      []Stack
	Unavailable map[string]string // collector -> reason
	Err         error             // returned by Record when set
	// Speed scales time: the capture of a duration d lasts d/Speed (at
	// least 1).
	Speed float64

	mu        sync.Mutex
	cancelled int
	started   int
}

// Cancelled is how many captures ended because their context was cancelled.
func (r *Recorder) Cancelled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancelled
}

// Started is how many captures began.
func (r *Recorder) Started() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

// Capabilities reports every collector available but those in Unavailable.
func (r *Recorder) Capabilities(ctx context.Context) web.Capabilities {
	c := web.Capabilities{Kernel: "6.0.0-fake", BTF: true, Collectors: make(map[string]web.Collector)}
	for _, t := range capture.Types {
		if why, ok := r.Unavailable[string(t)]; ok {
			c.Collectors[string(t)] = web.Collector{Reason: why}
		} else {
			c.Collectors[string(t)] = web.Collector{Available: true}
		}
	}
	return c
}

// Record sleeps for the capture's duration in 100 ms ticks, adding each
// stack's events every tick and reporting progress, and returns early when
// ctx is cancelled with what it has.
func (r *Recorder) Record(ctx context.Context, p capture.Params, progress func(web.Progress)) (*capture.Capture, error) {
	r.mu.Lock()
	r.started++
	r.mu.Unlock()
	if r.Err != nil {
		return nil, r.Err
	}
	stacks := r.Stacks
	if stacks == nil {
		stacks = DefaultStacks
	}
	speed := r.Speed
	if speed < 1 {
		speed = 1
	}
	start := time.Now()
	b := capture.NewBuilder(capture.Meta{Type: p.Type, Event: p.Event, Params: p, Start: start, Timestamps: true, Source: "fake", Host: "test"})
	ids := make([]uint32, len(stacks))
	for i, s := range stacks {
		var frames []uint32
		for j, name := range s.Frames {
			kind := capture.KindUser
			if j == 0 {
				kind = capture.KindProcess
			}
			frames = append(frames, b.Frame(capture.Frame{Name: name, Kind: kind}))
		}
		ids[i] = b.Stack(frames)
	}
	ticks := int(time.Duration(p.Duration) / (100 * time.Millisecond))
	if ticks < 1 {
		ticks = 1
	}
	tick := time.Duration(float64(100*time.Millisecond) / speed)
	var events uint64
	cancelled := false
	for t := 0; t < ticks && !cancelled; t++ {
		select {
		case <-ctx.Done():
			cancelled = true
			continue
		case <-time.After(tick):
		}
		for i, s := range stacks {
			for k := 0; k < s.Per100; k++ {
				at := int64(t)*int64(100*time.Millisecond) + int64(k)*int64(100*time.Millisecond)/int64(s.Per100)
				b.Add(capture.Event{Time: at, Value: 1, Stack: ids[i], PID: s.PID, TID: s.PID, CPU: uint16(k % 2)})
				events++
			}
		}
		if progress != nil {
			progress(web.Progress{Elapsed: time.Duration(t+1) * 100 * time.Millisecond, Events: events})
		}
	}
	if cancelled {
		r.mu.Lock()
		r.cancelled++
		r.mu.Unlock()
	}
	c := b.Capture()
	// The length covers the ticks that ran, so from/to filters have a range.
	c.Meta.Duration = time.Duration(max(len(c.Events)/max(perTick(stacks), 1), 1)) * 100 * time.Millisecond
	return c, nil
}

func perTick(stacks []Stack) int {
	n := 0
	for _, s := range stacks {
		n += s.Per100
	}
	return n
}

// String describes the fake for logs.
func (r *Recorder) String() string { return fmt.Sprintf("fake recorder (%d stacks)", len(r.Stacks)) }
