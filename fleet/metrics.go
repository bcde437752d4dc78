package fleet

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's counters on /metrics.
type metrics struct {
	windows       *prometheus.CounterVec   // profile
	loads         *prometheus.CounterVec   // profile
	windowErrors  *prometheus.CounterVec   // profile
	windowSeconds *prometheus.HistogramVec // profile
	lostEvents    *prometheus.CounterVec   // profile
	pushed        *prometheus.CounterVec   // profile
	pushedBytes   prometheus.Counter
	pushErrors    *prometheus.CounterVec // reason
	pushSeconds   prometheus.Histogram
	dropped       *prometheus.CounterVec // profile, reason
	trimmed       *prometheus.CounterVec // profile
	otherSeries   *prometheus.CounterVec // profile
	queueBytes    prometheus.Gauge
	queueBatches  prometheus.Gauge
	spoolBytes    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_windows_total", Help: "Profiling windows captured, by profile name.",
		}, []string{"profile"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_collector_loads_total", Help: "BPF collectors loaded and attached, by profile name: once per type while the agent runs.",
		}, []string{"profile"}),
		windowErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_window_errors_total", Help: "Windows whose capture or encoding failed, by profile name.",
		}, []string{"profile"}),
		windowSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scorch_agent_window_seconds", Help: "Time from a window's start to its capture being symbolized (--every plus the symbolization), by profile name.",
			Buckets: []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300},
		}, []string{"profile"}),
		lostEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_lost_events_total", Help: "Events the BPF collectors lost (ring buffer or map full), by profile name.",
		}, []string{"profile"}),
		pushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_pushed_profiles_total", Help: "Profiles (one per series and window) the remote accepted, by profile name.",
		}, []string{"profile"}),
		pushedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scorch_agent_pushed_bytes_total", Help: "Gzipped pprof bytes the remote accepted.",
		}),
		pushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_push_errors_total", Help: "Failed push attempts, by reason (unavailable, timeout: retried; rejected: dropped).",
		}, []string{"reason"}),
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scorch_agent_push_seconds", Help: "Time of one push attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_dropped_profiles_total", Help: "Profiles never delivered, by profile name and reason (queue_full, rejected, expired, shutdown, spool_error).",
		}, []string{"profile", "reason"}),
		trimmed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_trimmed_samples_total", Help: "Samples merged into one [trimmed] sample to fit the engine's limits, by profile name.",
		}, []string{"profile"}),
		otherSeries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scorch_agent_merged_series_total", Help: "Series merged into service_name=\"other\" to bound cardinality, by profile name.",
		}, []string{"profile"}),
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scorch_agent_queue_bytes", Help: "Bytes of profiles waiting in memory for the remote.",
		}),
		queueBatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scorch_agent_queue_batches", Help: "Batches waiting in memory for the remote.",
		}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scorch_agent_spool_bytes", Help: "Bytes of batches waiting in the spool directory.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.windows, m.loads, m.windowErrors, m.windowSeconds, m.lostEvents, m.pushed, m.pushedBytes, m.pushErrors, m.pushSeconds,
			m.dropped, m.trimmed, m.otherSeries, m.queueBytes, m.queueBatches, m.spoolBytes)
	}
	return m
}
