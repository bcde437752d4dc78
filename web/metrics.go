package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/scorch-dev/scorch/internal/cache"
	"github.com/scorch-dev/scorch/web/store"
)

// SymbolizerStats is implemented by recorders that can report their
// symbolizer's cache use (symbolizer.Symbolizer.CacheStats); /metrics then
// exports it.
type SymbolizerStats interface {
	SymbolizerCacheStats() cache.Stats
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
		}, func() float64 { n, _ := s.imports.counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scorch_renders_waiting", Help: "Renderings waiting for a slot (over 32, or after 750 ms: 503).",
		}, func() float64 { return float64(s.renders.queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scorch_imports_waiting", Help: "Imports waiting for a slot (over 16: 429).",
		}, func() float64 { _, n := s.imports.counts(); return float64(n) }),
	)
	if ss, ok := s.cfg.Recorder.(SymbolizerStats); ok {
		reg.MustRegister(symbolizerMetrics(ss)...)
	}
	// The registry may be shared (tests, embedding): only add the runtime
	// collectors when they are not there yet.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// symbolizerMetrics reads the symbolizer's cache counters at each scrape.
func symbolizerMetrics(ss SymbolizerStats) []prometheus.Collector {
	counter := func(name, help string, v func(cache.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(ss.SymbolizerCacheStats())) })
	}
	gauge := func(name, help string, v func(cache.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return v(ss.SymbolizerCacheStats()) })
	}
	return []prometheus.Collector{
		counter("scorch_symbolizer_cache_hits_total", "Symbol table lookups answered from the symbolizer's cache.",
			func(st cache.Stats) uint64 { return st.Hits }),
		counter("scorch_symbolizer_cache_misses_total", "Symbol tables the symbolizer had to load (files parsed).",
			func(st cache.Stats) uint64 { return st.Misses }),
		counter("scorch_symbolizer_cache_evictions_total", "Symbol tables dropped to stay within --symbol-cache.",
			func(st cache.Stats) uint64 { return st.Evictions }),
		gauge("scorch_symbolizer_cache_bytes", "Memory the cached symbol tables take (bounded by --symbol-cache).",
			func(st cache.Stats) float64 { return float64(st.Cost) }),
		gauge("scorch_symbolizer_cache_entries", "Symbol tables in the symbolizer's cache.",
			func(st cache.Stats) float64 { return float64(st.Entries) }),
	}
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
