package profiler

import (
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
)

// samplerObjects are bpf/sampler.c's: a perf_event program for cpu-clock
// and the other perf events, and the fork hook of `-- CMD` targets.
type samplerObjects = objects[bpf.SamplerPrograms, *bpf.SamplerPrograms, struct{}]

// samplerSource samples stacks on a perf event on every CPU: cpu-clock for
// cpu captures, the event named for event captures, page faults for mem.
type samplerSource struct {
	samplerObjects
	ev     perfEventSpec
	hz     int
	value  uint64 // each sample's worth: 1, or the event's period
	loaded time.Time
	took   time.Duration // from load to attached
}

// loadCPU samples with cpu-clock.
func loadCPU(p *capture.Params, cfg loadConfig) (source, error) {
	return loadSampler(p, cfg, softwareEvents[0])
}

func loadSampler(p *capture.Params, cfg loadConfig, ev perfEventSpec) (source, error) {
	src := &samplerSource{ev: ev, hz: p.Hz, value: 1, loaded: time.Now()}
	if src.hz == 0 {
		src.hz = capture.DefaultHz
	}
	if !ev.freq {
		src.value = ev.period
	}
	spec, err := samplerSpec()
	if err != nil {
		return nil, err
	}
	if err := loadObjects(spec.Copy(), cfg, len(p.Command) > 0, 0, &src.samplerObjects); err != nil {
		return nil, err
	}
	return src, nil
}

func (src *samplerSource) attach(c *collection, l *links) error {
	fork, err := attachRawTp(src.Progs.OnFork)
	if err != nil {
		return err
	}
	l.add(fork)
	if src.ev.freq {
		c.meta.Params.Hz = src.hz
	}
	events, err := openSpec(src.Progs.SampleCpu, src.ev, src.hz)
	if err != nil {
		return err
	}
	for _, e := range events {
		l.add(e)
	}
	src.took = time.Since(src.loaded)
	c.opts.Logger.Info("perf event attached", "event", src.ev.name, "attach_ms", float64(src.took.Microseconds())/1000, "cpus", len(events))
	return nil
}

func (src *samplerSource) decode(s *session, e *stackEvent) {
	if e.Kind == bpf.SamplerRecordKindRECORD_SAMPLE {
		s.addSample(e, src.value)
	}
}

func (src *samplerSource) finish(c *collection) {
	c.s.stats.Counters.Add(capture.AttachMicros, uint64(src.took.Microseconds()))
	c.addProgStats(src.Progs.SampleCpu)
}

// parsedSampler is bpf/sampler.c's object parsed once per process: the
// unwind tables take their map specs from it and every cpu load a copy
// (parsing the embedded ELF and its BTF twice per capture was about 2 ms
// of CPU warm, more with the binary's pages still cold).
var parsedSampler = sync.OnceValues(bpf.LoadSampler)

// samplerSpec is the parsed sampler object, shared: callers that change it
// (constants, map sizes) copy it first.
func samplerSpec() (*ebpf.CollectionSpec, error) {
	spec, err := parsedSampler()
	if err != nil {
		return nil, fmt.Errorf("loading sampler spec: %w", err)
	}
	return spec, nil
}
