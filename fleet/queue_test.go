package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/fleet"
)

// synthRecorder makes one small CPU capture per window without BPF: a few
// hundred samples of processes that do not exist (so service_name is the
// process name), with distinct stacks.
type synthRecorder struct {
	windows atomic.Int64
	stacks  int // distinct stacks per window
}

func (r *synthRecorder) Record(ctx context.Context, p capture.Params) (*capture.Capture, error) {
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(p.Duration)):
	}
	r.windows.Add(1)
	b := capture.NewBuilder(capture.Meta{Type: p.Type, Params: p, Start: start, Duration: time.Since(start)})
	n := max(r.stacks, 3)
	for i := range n {
		st := b.Stack([]uint32{
			b.Frame(capture.Frame{Name: "synth", Kind: capture.KindProcess}),
			b.Frame(capture.Frame{Name: "main"}),
			b.Frame(capture.Frame{Name: fmt.Sprintf("work%d", i)}),
		})
		b.Add(capture.Event{Stack: st, Value: int64(1 + i%7), PID: 4000000 + uint32(i%2), TID: 4000000})
	}
	return b.Capture(), nil
}

// metric sums the series of a metric whose labels include want.
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for k, v := range want {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// TestQueueOutageAndRecovery: the remote refuses connections, then times
// out, then answers 503, then comes back. The queue stays within its
// bytes, drops the oldest profiles and counts them, retries the rest, and
// every window is either delivered or counted as dropped.
func TestQueueOutageAndRecovery(t *testing.T) {
	// A port with nothing listening: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	fake := &fakePyroscope{}
	var phase atomic.Int32 // 1 timeout, 2 503, 3 ok
	fake.fail = func() error {
		switch phase.Load() {
		case 1:
			time.Sleep(400 * time.Millisecond) // past the push timeout
			return connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow"))
		case 2:
			return connect.NewError(connect.CodeUnavailable, errors.New("overloaded"))
		}
		return nil
	}
	r, err := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	rec := &synthRecorder{stacks: 50}
	reg := prometheus.NewRegistry()
	const queueBytes = 16 << 10
	a, err := fleet.New(fleet.Config{Remote: r, Recorder: rec, Every: 50 * time.Millisecond, Registerer: reg,
		Queue: fleet.QueueConfig{MaxBytes: queueBytes, Timeout: 150 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var maxQueued float64
	watch := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			maxQueued = max(maxQueued, metric(t, reg, "scorch_agent_queue_bytes", nil))
			time.Sleep(5 * time.Millisecond)
		}
	}
	watch(1500 * time.Millisecond) // refused
	refused := metric(t, reg, "scorch_agent_push_errors_total", map[string]string{"reason": "unavailable"})
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen again on %s for the recovery: %v", addr, err)
	}
	path, h := pushv1connectHandler(fake)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := &httptest.Server{Listener: ln2, Config: &http.Server{Handler: mux}}
	phase.Store(1)
	srv.Start()
	defer srv.Close()
	watch(1200 * time.Millisecond) // timeouts
	phase.Store(2)
	watch(600 * time.Millisecond) // 503
	phase.Store(3)
	watch(1500 * time.Millisecond) // back
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	windows := float64(rec.windows.Load())
	pushed := metric(t, reg, "scorch_agent_pushed_profiles_total", nil)
	dropped := metric(t, reg, "scorch_agent_dropped_profiles_total", nil)
	full := metric(t, reg, "scorch_agent_dropped_profiles_total", map[string]string{"reason": "queue_full"})
	timeouts := metric(t, reg, "scorch_agent_push_errors_total", map[string]string{"reason": "timeout"})
	unavailable := metric(t, reg, "scorch_agent_push_errors_total", map[string]string{"reason": "unavailable"})
	t.Logf("windows %.0f, pushed %.0f, dropped %.0f (queue full %.0f); errors: refused %.0f, timeouts %.0f, unavailable %.0f; max queued %.0f bytes",
		windows, pushed, dropped, full, refused, timeouts, unavailable, maxQueued)
	if refused == 0 || timeouts == 0 || unavailable <= refused {
		t.Errorf("push errors not counted: refused %v, timeouts %v, unavailable %v", refused, timeouts, unavailable)
	}
	if full == 0 {
		t.Errorf("no drops counted while the remote was down for 3 s with a %d-byte queue", queueBytes)
	}
	if maxQueued > queueBytes {
		t.Errorf("queue held %v bytes, over its %d", maxQueued, queueBytes)
	}
	// Each window is one batch of one series (one service): delivered or
	// counted. A push whose answer was lost to the timeout is sent again
	// (at least once), so the server counts distinct windows.
	seen := map[int64]bool{}
	for _, s := range fake.received() {
		if s.labels["service_name"] != "synth" {
			t.Errorf("service_name %q, want synth", s.labels["service_name"])
		}
		seen[s.profile.TimeNanos] = true
	}
	series := float64(len(seen))
	if series != pushed || pushed+dropped != windows {
		t.Errorf("windows %v != pushed %v + dropped %v (server got %v)", windows, pushed, dropped, series)
	}
	if pushed == 0 {
		t.Error("nothing delivered after the remote came back")
	}
}

// TestQueueRejectedNotRetried: an engine's 400 drops the batch at once.
func TestQueueRejectedNotRetried(t *testing.T) {
	fake, srv := newFakePyroscope(t)
	var calls atomic.Int64
	fake.fail = func() error {
		calls.Add(1)
		return connect.NewError(connect.CodeInvalidArgument, errors.New("bad profile"))
	}
	r, _ := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: srv.URL})
	rec := &synthRecorder{}
	reg := prometheus.NewRegistry()
	a, err := fleet.New(fleet.Config{Remote: r, Recorder: rec, Every: 50 * time.Millisecond, Registerer: reg,
		Queue: fleet.QueueConfig{MinBackoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rejected := metric(t, reg, "scorch_agent_dropped_profiles_total", map[string]string{"reason": "rejected"})
	if n := float64(calls.Load()); n != rejected || n != float64(rec.windows.Load()) || n == 0 {
		t.Errorf("%v windows, %v push calls, %v rejected: want one call per window, never retried", rec.windows.Load(), n, rejected)
	}
}

// TestFlushSpoolsAndResends: at SIGTERM with the remote hanging, Run returns
// within the flush deadline and keeps the queue in the spool; the next
// start sends it.
func TestFlushSpoolsAndResends(t *testing.T) {
	fake, srv := newFakePyroscope(t)
	var hang atomic.Bool
	hang.Store(true)
	release := make(chan struct{})
	fake.fail = func() error {
		if hang.Load() {
			<-release
			return connect.NewError(connect.CodeUnavailable, errors.New("hung"))
		}
		return nil
	}
	defer close(release)
	spool := t.TempDir()
	r, _ := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: srv.URL})
	rec := &synthRecorder{}
	reg := prometheus.NewRegistry()
	const flush = 300 * time.Millisecond
	a, err := fleet.New(fleet.Config{Remote: r, Recorder: rec, Every: 50 * time.Millisecond, Registerer: reg, Flush: flush,
		Queue: fleet.QueueConfig{SpoolDir: spool, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(500 * time.Millisecond)
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(flush + 2*time.Second):
		t.Fatalf("Run still flushing %v after the stop; the deadline is %v", time.Since(stopped), flush)
	}
	took := time.Since(stopped)
	files, _ := filepath.Glob(filepath.Join(spool, "*.batch"))
	windows := rec.windows.Load()
	t.Logf("stopped in %v; %d windows, %d spooled", took, windows, len(files))
	if len(files) == 0 || int64(len(files)) > windows {
		t.Fatalf("%d spool files for %d windows", len(files), windows)
	}
	if d := metric(t, reg, "scorch_agent_dropped_profiles_total", nil); d != 0 {
		t.Errorf("%v profiles dropped; with a spool they are kept", d)
	}

	// The next start sends what was spooled, then empties the spool.
	hang.Store(false)
	r2, _ := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: srv.URL})
	reg2 := prometheus.NewRegistry()
	a2, err := fleet.New(fleet.Config{Remote: r2, Recorder: &synthRecorder{}, Every: time.Hour / 10, Registerer: reg2,
		Queue: fleet.QueueConfig{SpoolDir: spool}})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- a2.Run(ctx2) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && metric(t, reg2, "scorch_agent_pushed_profiles_total", nil) < float64(len(files)) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	<-done2
	if got := metric(t, reg2, "scorch_agent_pushed_profiles_total", nil); got < float64(len(files)) {
		t.Errorf("resent %v of %d spooled profiles", got, len(files))
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "*.batch")); len(left) != 0 {
		t.Errorf("%d files left in the spool after resending", len(left))
	}
}

type failingRecorder struct{ err error }

func (r failingRecorder) Record(context.Context, capture.Params) (*capture.Capture, error) {
	return nil, r.err
}

// TestCollectorUnavailableFailsAtStart: a collector the host cannot run
// ends the agent at once with the reason (the command exits 1).
func TestCollectorUnavailableFailsAtStart(t *testing.T) {
	r, _ := fleet.NewRemote(fleet.RemoteConfig{Kind: "pyroscope", URL: "http://127.0.0.1:1"})
	kinds, _ := fleet.ParseTypes("cpu,mem")
	a, err := fleet.New(fleet.Config{Remote: r, Recorder: failingRecorder{errors.New("no perf events here")}, Kinds: kinds, Every: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no perf events here") {
		t.Fatalf("Run: %v, want the collector's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v to fail", d)
	}
}
