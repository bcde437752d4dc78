package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/scorch-dev/scorch/web/store"
)

// SymbolizerStats is implemented by recorders that can report their
// symbolizer's cache use; /metrics then exports it.
type SymbolizerStats interface {
	SymbolizerCacheStats() (hits, misses uint64)
}

type metrics struct {
	captures    *prometheus.CounterVec
	events      *prometheus.CounterVec
	lost        *prometheus.CounterVec
	running     prometheus.Gauge
	render      *prometheus.HistogramVec
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	requests    *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	m := &metrics{
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_captures_total", Help: "Captures finished, by type and final status.",
		}, []string{"type", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_capture_events_total", Help: "Events kept by finished captures.",
		}, []string{"type"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_capture_lost_events_total", Help: "Events lost (ring buffer or map full) by finished captures.",
		}, []string{"type"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scorch_captures_running", Help: "Captures running now.",
		}),
		render: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scorch_render_seconds", Help: "Time to render an answer that was not cached, by format.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"format"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scorch_render_cache_hits_total", Help: "Rendered answers served from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scorch_render_cache_misses_total", Help: "Rendered answers that had to be rendered.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.captures, m.events, m.lost, m.running, m.render, m.cacheHits, m.cacheMisses, m.requests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scorch_captures_stored", Help: "Captures in the store.",
		}, func() float64 { return float64(s.store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scorch_imports_running", Help: "Imports being decoded now.",
		}, func() float64 { return float64(len(s.imports.slots)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scorch_imports_waiting", Help: "Imports waiting for a slot (over 16: 429).",
		}, func() float64 { return float64(s.imports.queued()) }),
	)
	if ss, ok := s.cfg.Recorder.(SymbolizerStats); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "scorch_symbolizer_cache_hits_total", Help: "Symbolizer cache hits.",
			}, func() float64 { h, _ := ss.SymbolizerCacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "scorch_symbolizer_cache_misses_total", Help: "Symbolizer cache misses.",
			}, func() float64 { _, m := ss.SymbolizerCacheStats(); return float64(m) }),
		)
	}
	// The registry may be shared (tests, embedding): only add the runtime
	// collectors when they are not there yet.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) finished(r store.Record) {
	t := string(r.Type)
	m.captures.WithLabelValues(t, r.Status).Inc()
	m.events.WithLabelValues(t).Add(float64(r.Samples))
	m.lost.WithLabelValues(t).Add(float64(r.Lost))
}

func (m *metrics) observeRender(format string, start time.Time) {
	m.render.WithLabelValues(format).Observe(time.Since(start).Seconds())
}
