package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Remote is an engine that stores profiles. Push sends one batch; an error
// wrapping ErrRejected is the engine refusing the data (a 4xx), which a
// retry cannot fix; any other error is retried.
type Remote interface {
	Push(ctx context.Context, b *Batch) error
	Close() error
}

// ErrRejected marks a push the engine refused for good.
var ErrRejected = errors.New("rejected by the remote")

// QueueConfig bounds what waits for the remote.
type QueueConfig struct {
	MaxBytes   int           // memory for batches waiting (default 16 MiB)
	SpoolDir   string        // optional: batches that do not fit in memory, and at exit, are kept here
	SpoolBytes int64         // the spool's limit (default 256 MiB)
	MaxAge     time.Duration // older batches are dropped (default 1h: Pyroscope refuses older)
	Timeout    time.Duration // one push attempt (default 10s)
	MinBackoff time.Duration // first retry delay (default 500ms), doubled up to MaxBackoff
	MaxBackoff time.Duration // default 1m
}

func (c *QueueConfig) defaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 16 << 20
	}
	if c.SpoolBytes <= 0 {
		c.SpoolBytes = 256 << 20
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
}

// Drop reasons, the values of the reason label of the drop counter.
const (
	dropQueueFull = "queue_full" // the queue (and spool) were full: the oldest went
	dropRejected  = "rejected"   // the remote refused the batch (4xx)
	dropExpired   = "expired"    // older than MaxAge before it could be sent
	dropShutdown  = "shutdown"   // still queued when the flush deadline passed
	dropSpool     = "spool_error"
)

// queue holds batches for the remote, oldest first, bounded in memory; a
// sender goroutine pushes them with retries.
type queue struct {
	cfg    QueueConfig
	remote Remote
	log    *slog.Logger
	m      *metrics
	now    func() time.Time

	mu        sync.Mutex
	items     []*Batch
	bytes     int
	spool     []spoolFile // oldest first
	spoolSize int64
	seq       int
	dropCount int64 // profiles dropped, for the log line
	wake      chan struct{}
}

type spoolFile struct {
	path  string
	size  int64
	start time.Time
}

func newQueue(cfg QueueConfig, r Remote, log *slog.Logger, m *metrics) (*queue, error) {
	cfg.defaults()
	q := &queue{cfg: cfg, remote: r, log: log, m: m, now: time.Now, wake: make(chan struct{}, 1)}
	if cfg.SpoolDir != "" {
		if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
			return nil, fmt.Errorf("spool directory: %w", err)
		}
		if err := q.loadSpool(); err != nil {
			return nil, err
		}
	}
	q.gauges()
	return q, nil
}

// add queues a batch; when memory is full the batch goes to the spool, or,
// without one, the oldest batches are dropped to make room.
func (q *queue) add(b *Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := b.Bytes()
	if q.bytes+n > q.cfg.MaxBytes {
		if q.cfg.SpoolDir != "" && q.spoolLocked(b) {
			q.gauges()
			q.signal()
			return
		}
		for len(q.items) > 0 && q.bytes+n > q.cfg.MaxBytes {
			q.dropLocked(q.items[0], dropQueueFull)
			q.bytes -= q.items[0].Bytes()
			q.items = q.items[1:]
		}
		if n > q.cfg.MaxBytes {
			q.dropLocked(b, dropQueueFull)
			q.gauges()
			return
		}
	}
	q.items = append(q.items, b)
	q.bytes += n
	q.gauges()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) dropLocked(b *Batch, reason string) {
	q.dropN(b.Name, reason, len(b.Series))
}

func (q *queue) dropN(name, reason string, n int) {
	q.dropCount += int64(n)
	q.m.dropped.WithLabelValues(name, reason).Add(float64(n))
}

func (q *queue) gauges() {
	q.m.queueBytes.Set(float64(q.bytes))
	q.m.queueBatches.Set(float64(len(q.items)))
	q.m.spoolBytes.Set(float64(q.spoolSize))
}

// next takes the oldest batch: memory first (what this process made),
// then the spool. Expired batches are dropped on the way.
func (q *queue) next() *Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.gauges()
	for len(q.items) > 0 {
		b := q.items[0]
		q.items = q.items[1:]
		q.bytes -= b.Bytes()
		if q.now().Sub(b.End) > q.cfg.MaxAge {
			q.dropLocked(b, dropExpired)
			continue
		}
		return b
	}
	for len(q.spool) > 0 {
		f := q.spool[0]
		q.spool = q.spool[1:]
		q.spoolSize -= f.size
		b, err := readSpool(f.path)
		os.Remove(f.path)
		if err != nil {
			q.log.Warn("fleet: unreadable spool file dropped", "file", f.path, "err", err)
			q.dropN("", dropSpool, 1)
			continue
		}
		if q.now().Sub(b.End) > q.cfg.MaxAge {
			q.dropLocked(b, dropExpired)
			continue
		}
		return b
	}
	return nil
}

// putBack returns a batch that could not be sent yet to the head of the queue.
func (q *queue) putBack(b *Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append([]*Batch{b}, q.items...)
	q.bytes += b.Bytes()
	q.gauges()
}

// run pushes batches until ctx ends, then flushes until flushCtx ends;
// what is left is spooled, or counted as dropped.
func (q *queue) run(ctx, flushCtx context.Context) {
	active := ctx
	for {
		b := q.next()
		if b == nil {
			if active != ctx { // flushing and nothing left
				return
			}
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				active = flushCtx
				continue
			}
		}
		if !q.send(active, flushCtx, b) {
			if active == ctx && ctx.Err() != nil {
				// Stopping while this one waited for a retry: flush.
				active = flushCtx
				q.putBack(b)
				continue
			}
			q.putBack(b)
			q.shutdown()
			return
		}
	}
}

// send pushes one batch, retrying with backoff and jitter; false when ctx
// ended first (the batch is still to send). Attempts run under flushCtx,
// so stopping does not cut a push in flight; only the flush deadline does.
func (q *queue) send(ctx, flushCtx context.Context, b *Batch) bool {
	delay := q.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		start := time.Now()
		actx, cancel := context.WithTimeout(flushCtx, q.cfg.Timeout)
		err := q.remote.Push(actx, b)
		cancel()
		q.m.pushSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			q.m.pushed.WithLabelValues(b.Name).Add(float64(len(b.Series)))
			q.m.pushedBytes.Add(float64(b.Bytes()))
			return true
		}
		if errors.Is(err, ErrRejected) {
			q.m.pushErrors.WithLabelValues("rejected").Inc()
			q.mu.Lock()
			q.dropLocked(b, dropRejected)
			q.mu.Unlock()
			q.log.Warn("fleet: the remote rejected a batch; not retried", "profile", b.Name, "series", len(b.Series), "err", err)
			return true
		}
		reason := "unavailable"
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline") {
			reason = "timeout"
		}
		q.m.pushErrors.WithLabelValues(reason).Inc()
		q.log.Debug("fleet: push failed, retrying", "attempt", attempt, "in", delay, "err", err)
		if q.now().Sub(b.End) > q.cfg.MaxAge {
			q.mu.Lock()
			q.dropLocked(b, dropExpired)
			q.mu.Unlock()
			return true
		}
		// Equal jitter: half the delay fixed, half random, so agents that
		// lost the same remote do not come back in step.
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		delay = min(delay*2, q.cfg.MaxBackoff)
	}
}

// shutdown spools what is left, or counts it as dropped.
func (q *queue) shutdown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range q.items {
		if q.cfg.SpoolDir != "" && q.spoolLocked(b) {
			continue
		}
		q.dropLocked(b, dropShutdown)
	}
	q.items, q.bytes = nil, 0
	q.gauges()
}

// spoolLocked writes a batch to the spool, removing the oldest files to
// stay under SpoolBytes; false when it could not be written.
func (q *queue) spoolLocked(b *Batch) bool {
	data, err := json.Marshal(b)
	if err != nil {
		return false
	}
	size := int64(len(data))
	if size > q.cfg.SpoolBytes {
		return false
	}
	for len(q.spool) > 0 && q.spoolSize+size > q.cfg.SpoolBytes {
		f := q.spool[0]
		q.spool = q.spool[1:]
		q.spoolSize -= f.size
		os.Remove(f.path)
		q.dropN("", dropQueueFull, 1)
	}
	q.seq++
	name := fmt.Sprintf("%020d-%06d.batch", b.Start.UnixNano(), q.seq%1000000)
	path := filepath.Join(q.cfg.SpoolDir, name)
	// Written under a temporary name and renamed: a crash leaves no half file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		q.log.Warn("fleet: spool write failed", "err", err)
		q.dropLocked(b, dropSpool)
		return true // counted; do not also drop it as queue_full
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		q.dropLocked(b, dropSpool)
		return true
	}
	q.spool = append(q.spool, spoolFile{path: path, size: size, start: b.Start})
	q.spoolSize += size
	return true
}

// loadSpool lists what an earlier run left, oldest first, and removes
// temporary files of interrupted writes.
func (q *queue) loadSpool() error {
	entries, err := os.ReadDir(q.cfg.SpoolDir)
	if err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(q.cfg.SpoolDir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".tmp"):
			os.Remove(path)
		case strings.HasSuffix(e.Name(), ".batch"):
			info, err := e.Info()
			if err != nil {
				continue
			}
			q.spool = append(q.spool, spoolFile{path: path, size: info.Size()})
			q.spoolSize += info.Size()
		}
	}
	slices.SortFunc(q.spool, func(a, b spoolFile) int { return strings.Compare(a.path, b.path) })
	for len(q.spool) > 0 && q.spoolSize > q.cfg.SpoolBytes {
		os.Remove(q.spool[0].path)
		q.spoolSize -= q.spool[0].size
		q.spool = q.spool[1:]
	}
	return nil
}

func readSpool(path string) (*Batch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
