package host

import (
	"testing"
	"time"
)

// BenchmarkTick is one sample of this host (scripts/bench-overview.sh
// measures the sampler over minutes).
func BenchmarkTick(b *testing.B) {
	s := NewSampler(Options{Kmsg: "-"})
	now := time.Now()
	s.Tick(now)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Second)
		s.Tick(now)
	}
}
