package fleet

import (
	"context"
	"log/slog"
	"sync"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// ProfilerRecorder records windows with scorch's BPF profiler, sharing the
// symbolizer and unwinder across windows so each binary's symbols and CFI
// are parsed once, not every window.
type ProfilerRecorder struct {
	Symbolizer *symbolizer.Symbolizer
	Unwinder   *unwind.Unwinder
	Logger     *slog.Logger
	RingBytes  int // per collector; small at the agent's low rates
	// tables are the BPF unwinder's, kept across windows.
	tables profiler.LazyUnwindTables
	once   sync.Once
}

// Record runs one window.
func (r *ProfilerRecorder) Record(ctx context.Context, p capture.Params) (*capture.Capture, error) {
	return profiler.Record(ctx, p, r.options(p))
}

// options are every capture's: the shared symbolizer, unwinder and, in
// the default unwind mode, the BPF unwinder's tables kept across captures.
func (r *ProfilerRecorder) options(p capture.Params) profiler.Options {
	var tables *profiler.UnwindTables
	if p.Unwind == "" || p.Unwind == "auto" {
		// At 19 Hz most of a busy host's processes are never sampled:
		// their tables are built once a sample waits for them.
		r.once.Do(func() {
			r.tables.SampledOnly = true
			if r.Unwinder != nil {
				r.tables.Store = r.Unwinder.Store() // one build of a file's table for both unwinders
			}
		})
		tables = r.tables.Get(r.Logger)
	}
	return profiler.Options{Symbolizer: r.Symbolizer, Unwinder: r.Unwinder, UnwindTables: tables, Logger: r.Logger, RingBytes: r.RingBytes}
}

// Start loads the collector of p.Type once; its windows are cut from the
// running capture (see profiler.Continuous), so an agent does not load,
// verify and attach the programs every window.
func (r *ProfilerRecorder) Start(ctx context.Context, p capture.Params) (Stream, error) {
	return profiler.StartContinuous(ctx, p, r.options(p))
}

// Streamer is a Recorder whose windows are cut from one running capture.
type Streamer interface {
	Start(ctx context.Context, p capture.Params) (Stream, error)
}

// Stream is a running capture: Cut ends a window, Close the last one.
type Stream interface {
	Cut() (*capture.Capture, error)
	Close() (*capture.Capture, error)
}
