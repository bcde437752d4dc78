// Package fleet is scorch's agent mode: continuous low-rate profiling of
// the host in windows, each window turned into one pprof profile per
// service and type and pushed to a profiling engine (Pyroscope, Parca or
// an OpenTelemetry Collector) through a bounded, retrying queue.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/scorch-dev/scorch/capture"
)

// Recorder runs one capture; the profiler's Record behind the command.
type Recorder interface {
	Record(ctx context.Context, p capture.Params) (*capture.Capture, error)
}

// Defaults of the agent.
const (
	DefaultEvery    = 15 * time.Second
	DefaultHz       = 19
	DefaultMinBlock = time.Millisecond
	DefaultFlush    = 10 * time.Second
)

// Config configures an agent.
type Config struct {
	Remote   Remote
	Recorder Recorder
	Kinds    []Kind        // default: cpu
	Every    time.Duration // window length (default 15s)
	Hz       int           // CPU sampling rate per CPU (default 19)
	MinBlock time.Duration // off-CPU intervals shorter than this are not recorded (default 1ms)
	Unwind   string        // the profiler's --unwind mode (default auto)
	Labels   []Label       // --label k=v, added to every series
	Host     string        // the host label (default os.Hostname)
	SeriesBy SeriesBy      // default service
	Limits   Limits        // default DefaultLimits
	Queue    QueueConfig
	Flush    time.Duration // how long the flush at exit may take (default 10s)
	ProcRoot string        // where /proc and the runtimes' files are (default "/")

	Registerer prometheus.Registerer // where the agent's metrics go; nil: none
	Logger     *slog.Logger
	// OnWindow, when set, sees every window's capture and batch before it
	// is queued (tests compare them with what the remote received).
	OnWindow func(k Kind, c *capture.Capture, b *Batch)
}

// labelNameRe is the label names Prometheus-style engines accept.
var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are set by the agent and cannot be given with --label.
var reservedLabels = []string{"__name__", "service_name", "container_id", "container", "pod", "namespace", "pid", "tid"}

// ParseLabel reads one --label k=v.
func ParseLabel(s string) (Label, error) {
	k, v, ok := cutEq(s)
	if !ok || k == "" || v == "" {
		return Label{}, fmt.Errorf("--label %q: give NAME=VALUE", s)
	}
	if !labelNameRe.MatchString(k) || len(k) >= 2 && k[:2] == "__" {
		return Label{}, fmt.Errorf("--label %q: the name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", s)
	}
	if slices.Contains(reservedLabels, k) {
		return Label{}, fmt.Errorf("--label %q: %s is set by the agent (reserved: %v)", s, k, reservedLabels)
	}
	return Label{k, v}, nil
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Agent profiles the host in windows and pushes them.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	q     *queue
	ident *identifier
	base  []Label

	mu      sync.Mutex
	summary windowSummary // what went wrong since the last log line
}

type windowSummary struct {
	trimmed, merged, lost int64
	dropped               int64
}

// New checks the configuration and makes an agent; the spool, if any, is
// read now.
func New(cfg Config) (*Agent, error) {
	if cfg.Remote == nil || cfg.Recorder == nil {
		return nil, errors.New("fleet: a remote and a recorder are needed")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = Kinds[:1]
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Every < 10*time.Millisecond || cfg.Every > 10*time.Minute {
		return nil, fmt.Errorf("--every %s is out of range: allowed 1s..10m", cfg.Every)
	}
	if cfg.Hz == 0 {
		cfg.Hz = DefaultHz
	}
	if cfg.Hz < capture.MinHz || cfg.Hz > capture.MaxHz {
		return nil, fmt.Errorf("--hz %d is out of range: allowed %d..%d", cfg.Hz, capture.MinHz, capture.MaxHz)
	}
	if cfg.MinBlock == 0 {
		cfg.MinBlock = DefaultMinBlock
	}
	if cfg.SeriesBy == "" {
		cfg.SeriesBy = BySevice
	}
	if !slices.Contains([]SeriesBy{BySevice, ByPID, ByTID}, cfg.SeriesBy) {
		return nil, fmt.Errorf("--series-by %q is not supported: allowed values are service, pid, tid", cfg.SeriesBy)
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.Flush <= 0 {
		cfg.Flush = DefaultFlush
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), ident: newIdentifier(cfg.ProcRoot)}
	var err error
	if a.q, err = newQueue(cfg.Queue, cfg.Remote, cfg.Logger, a.m); err != nil {
		return nil, err
	}
	if cfg.Host != "" {
		a.base = append(a.base, Label{"host", cfg.Host})
	}
	for _, l := range cfg.Labels {
		a.base = slices.DeleteFunc(a.base, func(b Label) bool { return b.Name == l.Name })
		a.base = append(a.base, l)
	}
	return a, nil
}

// Run profiles until ctx ends, then pushes the last, partial window and
// what is queued within the flush deadline. It fails at once when a
// collector cannot run on this host.
func (a *Agent) Run(ctx context.Context) error {
	// The sender runs until the capture loops are done and have queued
	// their last windows, then flushes until the queue is empty or the
	// flush deadline passes.
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSend()
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		a.q.run(sendCtx, flushCtx)
	}()

	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	errc := make(chan error, len(a.cfg.Kinds))
	var wg sync.WaitGroup
	for _, k := range a.cfg.Kinds {
		wg.Go(func() {
			if err := a.loop(capCtx, k); err != nil {
				errc <- err
				stopCapture()
			}
		})
	}
	wg.Go(func() { a.logLoop(capCtx) })
	loops := make(chan struct{})
	go func() { wg.Wait(); close(loops) }()
	var err error
	select {
	case <-loops:
	case <-ctx.Done():
	}
	// Stopping: the windows being captured end now and are pushed with
	// the queue, all within the flush deadline; a window whose
	// symbolization outlasts it is not waited for.
	start := time.Now()
	timer := time.AfterFunc(a.cfg.Flush, cancelFlush)
	defer timer.Stop()
	select {
	case <-loops:
	case <-flushCtx.Done():
		a.log.Warn("fleet: the last windows were still being symbolized at the flush deadline; not sent")
	}
	select {
	case err = <-errc:
	default:
	}
	stopSend()
	<-sent
	a.logSummary()
	a.log.Info("fleet: stopped", "flush", time.Since(start).Round(time.Millisecond))
	return err
}

// loop starts a window of one kind every Every. A window's capture ends
// after Every; its symbolization then overlaps the next window's capture,
// so windows follow each other without a gap while symbolizing takes less
// than a window. At most two are in flight: when symbolizing falls behind,
// the next window starts late instead of piling up.
func (a *Agent) loop(ctx context.Context, k Kind) error {
	p := capture.Params{Type: k.Type, Event: k.Event, Duration: capture.Duration(a.cfg.Every), Unwind: a.cfg.Unwind}
	if info := k.Type.Info(); info.Sampled {
		p.Hz = a.cfg.Hz
	} else if info.Interval {
		p.MinBlock = capture.Duration(a.cfg.MinBlock)
	}
	if st, ok := a.cfg.Recorder.(Streamer); ok {
		return a.streamLoop(ctx, k, p, st)
	}
	inFlight := make(chan struct{}, 2)
	firstErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case inFlight <- struct{}{}:
		case <-ctx.Done():
			return nil
		case err := <-firstErr:
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		started := time.Now()
		wg.Go(func() {
			defer func() { <-inFlight }()
			c, err := a.cfg.Recorder.Record(ctx, p)
			a.m.windowSeconds.WithLabelValues(k.Name).Observe(time.Since(started).Seconds())
			switch {
			case err != nil && i == 0:
				firstErr <- fmt.Errorf("%s: %w", k.Flag, err)
			case err != nil:
				// A later failure (a full map, a process race) costs one
				// window, not the agent.
				a.m.windowErrors.WithLabelValues(k.Name).Inc()
				a.log.Warn("fleet: window failed", "type", k.Flag, "err", err)
			default:
				a.window(k, c)
			}
		})
		t := time.NewTimer(time.Until(started.Add(a.cfg.Every)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		case err := <-firstErr:
			t.Stop()
			return err
		}
	}
}

// streamLoop cuts a window of one kind every Every from one running
// capture: the programs are loaded once, not every window.
func (a *Agent) streamLoop(ctx context.Context, k Kind, p capture.Params, st Streamer) error {
	s, err := st.Start(ctx, p)
	if err != nil {
		return fmt.Errorf("%s: %w", k.Flag, err)
	}
	a.m.loads.WithLabelValues(k.Name).Inc()
	next := time.Now()
	for {
		next = next.Add(a.cfg.Every)
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			c, err := s.Close()
			if err == nil && c != nil {
				a.window(k, c)
			}
			return nil
		}
		started := time.Now()
		c, err := s.Cut()
		a.m.windowSeconds.WithLabelValues(k.Name).Observe(a.cfg.Every.Seconds() + time.Since(started).Seconds())
		if err != nil {
			a.m.windowErrors.WithLabelValues(k.Name).Inc()
			a.log.Warn("fleet: window failed", "type", k.Flag, "err", err)
			s.Close()
			return fmt.Errorf("%s: %w", k.Flag, err)
		}
		a.window(k, c)
	}
}

// window turns one capture into a batch and queues it.
func (a *Agent) window(k Kind, c *capture.Capture) {
	a.m.windows.WithLabelValues(k.Name).Inc()
	a.m.lostEvents.WithLabelValues(k.Name).Add(float64(c.Meta.Stats.Lost))
	b, ts, err := buildBatch(k, c, a.base, a.cfg.SeriesBy, a.cfg.Limits, a.ident)
	if k.Flag == a.cfg.Kinds[0].Flag {
		a.ident.sweep()
	}
	if err != nil {
		a.m.windowErrors.WithLabelValues(k.Name).Inc()
		a.log.Warn("fleet: window not encoded", "type", k.Flag, "err", err)
		return
	}
	a.m.trimmed.WithLabelValues(k.Name).Add(float64(ts.samples))
	a.m.otherSeries.WithLabelValues(k.Name).Add(float64(ts.series))
	a.mu.Lock()
	a.summary.trimmed += ts.samples
	a.summary.merged += ts.series
	a.summary.lost += int64(c.Meta.Stats.Lost)
	a.mu.Unlock()
	if a.cfg.OnWindow != nil {
		a.cfg.OnWindow(k, c, b)
	}
	if len(b.Series) == 0 {
		return
	}
	a.q.add(b)
}

// logLoop writes at most one line per window about what was dropped,
// trimmed or lost, so an unreachable remote does not flood the log.
func (a *Agent) logLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.logSummary()
		}
	}
}

func (a *Agent) logSummary() {
	dropped := a.q.droppedTotal()
	a.mu.Lock()
	s := a.summary
	newDrops := dropped - s.dropped
	a.summary = windowSummary{dropped: dropped}
	a.mu.Unlock()
	if newDrops > 0 || s.trimmed > 0 || s.merged > 0 || s.lost > 0 {
		a.log.Warn("fleet: since the last window", "dropped_profiles", newDrops, "trimmed_samples", s.trimmed,
			"merged_series", s.merged, "lost_events", s.lost, "queued_bytes", a.q.queuedBytes())
	}
}

func (q *queue) droppedTotal() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropCount
}

func (q *queue) queuedBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
