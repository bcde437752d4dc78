package profiler

import "github.com/scorch-dev/scorch/capture"

// lostTimes marks when events were lost: each time the reader looks at the
// BPF counters (about every 250 ms), what each CPU lost since the last look
// becomes a span of capture.Stats.LostAt, and so do the records that
// reached user space but could not be decoded (CPU unknown). The time
// views draw them on the tracks.
type lostTimes struct {
	prev    []uint64 // per CPU, at the last look
	decoded uint64   // undecodable records at the last look
	last    int64    // ns since the capture start of the last look
}

// mark records the losses since the last look: perCPU are the BPF
// counters' totals by CPU, decodeLost the undecodable records so far, now
// the time of this look (ns since the capture start).
func (l *lostTimes) mark(st *capture.Stats, perCPU []uint64, decodeLost uint64, now int64) {
	if now <= l.last || perCPU == nil {
		return // no time passed, or the counters could not be read: the next look tells
	}
	for cpu, n := range perCPU {
		var before uint64
		if cpu < len(l.prev) {
			before = l.prev[cpu]
		}
		if n > before {
			st.LostAt = append(st.LostAt, capture.LostSpan{From: l.last, To: now, CPU: cpu, Count: n - before})
		}
	}
	if decodeLost > l.decoded {
		st.LostAt = append(st.LostAt, capture.LostSpan{From: l.last, To: now, CPU: -1, Count: decodeLost - l.decoded})
	}
	l.prev = append(l.prev[:0], perCPU...)
	l.decoded = decodeLost
	l.last = now
}
