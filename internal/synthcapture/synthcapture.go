// Package synthcapture generates synthetic captures for benchmarks and
// browser tests of the time views: many threads in a few processes on a
// few CPUs, whose hot code changes half-way, sampled at a steady rate (cpu)
// or blocked and runnable in turn (offcpu). The same options give the same
// capture. `go run ./internal/synthcapture/gen -o FILE` writes one as a
// capture file (importable with POST /api/imports or scorch render).
package synthcapture

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// Options describe the capture. The zero value of a field takes the
// default of the time views' benchmark: 60 s, 999 Hz, 2 CPUs, 50 threads
// in 5 processes, cpu.
type Options struct {
	Type      capture.Type  // cpu (default) or offcpu
	Duration  time.Duration // 60 s
	Hz        int           // 999, samples per second per CPU (cpu)
	CPUs      int           // 2
	Threads   int           // 50
	Processes int           // 5; threads are dealt to them in turn
	Depth     int           // 12 frames below the thread's entry
	Seed      uint64        // 1
	// Lost events are spread over the middle tenth of the capture, and
	// counted in Stats.Lost, per CPU and per 250 ms (Stats.LostAt) as a
	// recording counts them.
	Lost uint64
}

func (o *Options) defaults() {
	if o.Type == "" {
		o.Type = capture.CPU
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.Hz == 0 {
		o.Hz = 999
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Threads == 0 {
		o.Threads = 50
	}
	if o.Processes == 0 {
		o.Processes = 5
	}
	if o.Depth == 0 {
		o.Depth = 12
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// Start is the wall clock of every synthetic capture's start.
var Start = time.Unix(1700000000, 0).UTC()

// thread is one synthetic thread: its ids, how busy it is, and the stack it
// is in, which changes every few samples.
type thread struct {
	pid, tid uint32
	proc     string
	weight   float64 // share of the CPUs it wants, in each phase
	weight2  float64
	path     []int // the current choice at each depth
	left     int   // samples until the path changes
}

// Generate builds the capture.
func Generate(o Options) (*capture.Capture, error) {
	o.defaults()
	if o.Type != capture.CPU && o.Type != capture.OffCPU {
		return nil, fmt.Errorf("type %q is not supported: allowed values are cpu, offcpu", o.Type)
	}
	if o.Duration < time.Millisecond || o.Hz < 1 || o.CPUs < 1 || o.Threads < 1 || o.Processes < 1 || o.Depth < 1 || o.Depth > 100 {
		return nil, fmt.Errorf("options out of range: %+v", o)
	}
	b := capture.NewBuilder(capture.Meta{
		Type: o.Type, Start: Start, Duration: o.Duration, Timestamps: true, Source: "bpf", Host: "synthetic",
		Params: capture.Params{Type: o.Type, Hz: o.Hz, Duration: capture.Duration(o.Duration)},
	})
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	threads := make([]*thread, o.Threads)
	for i := range threads {
		p := i % o.Processes
		pid := uint32(1000 + 100*p)
		threads[i] = &thread{
			pid: pid, tid: pid + uint32(i/o.Processes), proc: fmt.Sprintf("svc%d", p),
			// A few threads do most of the work: threads 0, 1, 2...
			// in the first half, threads N/2, N/2+1... in the second.
			weight:  1 / float64(1+i),
			weight2: 1 / float64(1+(i+o.Threads-o.Threads/2)%o.Threads),
			path:    make([]int, o.Depth),
		}
	}
	frames := newFrames(b, o.Depth)
	half := int64(o.Duration) / 2
	switch o.Type {
	case capture.CPU:
		period := int64(time.Second) / int64(o.Hz)
		idle := b.Stack([]uint32{b.Frame(capture.Frame{Name: capture.FrameIdle, Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: "cpu_idle", Kind: capture.KindKernel, Module: "[kernel.kallsyms]"})})
		var w1, w2 float64
		for _, t := range threads {
			w1, w2 = w1+t.weight, w2+t.weight2
		}
		busy := make([]bool, len(threads))
		for tm := int64(0); tm < int64(o.Duration); tm += period {
			clear(busy)
			for cpu := 0; cpu < o.CPUs; cpu++ {
				at := tm + int64(cpu)*period/int64(o.CPUs) // CPUs' clocks are not in step
				if at >= int64(o.Duration) {
					break
				}
				second := at >= half
				// The CPUs are 85% busy.
				if rng.Float64() < 0.15 {
					b.Add(capture.Event{Time: at, Value: 1, Stack: idle, CPU: uint16(cpu), Flags: capture.FlagIdle})
					continue
				}
				i := pick(rng, threads, second, w1, w2)
				if busy[i] {
					continue // that thread is on the other CPU: this one's sample is lost to nobody
				}
				busy[i] = true
				t := threads[i]
				t.step(rng)
				b.Add(capture.Event{Time: at, Value: 1, Stack: frames.stack(t, second, ""), PID: t.pid, TID: t.tid, CPU: uint16(cpu)})
			}
		}
	case capture.OffCPU:
		for _, t := range threads {
			at := int64(rng.IntN(int(time.Millisecond)))
			for at < int64(o.Duration) {
				second := at >= half
				busyness := t.weight
				if second {
					busyness = t.weight2
				}
				// Busier threads block for shorter.
				run := int64(float64(2*time.Millisecond) * (0.5 + rng.Float64()))
				blocked := int64(rng.ExpFloat64() * float64(2*time.Millisecond) / busyness)
				runq := int64(rng.ExpFloat64() * float64(200*time.Microsecond))
				at += run
				t.step(rng)
				cpu := uint16(rng.IntN(o.CPUs))
				b.Add(capture.Event{Time: at, Value: max(blocked, 1000), Stack: frames.stack(t, second, capture.FrameBlocked), PID: t.pid, TID: t.tid, CPU: cpu})
				at += max(blocked, 1000)
				b.Add(capture.Event{Time: at, Value: max(runq, 1000), Stack: frames.stack(t, second, capture.FrameRunqueue), PID: t.pid, TID: t.tid, CPU: cpu})
				at += max(runq, 1000)
			}
		}
	}
	c := b.Capture()
	c.SortEvents()
	c.Meta.Stats.Samples = uint64(len(c.Events))
	if o.Lost > 0 {
		// As the reader marks them: a span per 250 ms poll and CPU, over
		// the middle tenth of the capture.
		c.Meta.Stats.Lost = o.Lost
		const poll = int64(250 * time.Millisecond)
		from, to := int64(o.Duration)*9/20, int64(o.Duration)*11/20
		polls := max((to-from)/poll, 1)
		var left = o.Lost
		for p := int64(0); p < polls; p++ {
			for cpu := 0; cpu < o.CPUs; cpu++ {
				n := o.Lost / uint64(polls*int64(o.CPUs))
				if p == polls-1 && cpu == o.CPUs-1 {
					n = left
				}
				left -= n
				if n == 0 {
					continue
				}
				c.Meta.Stats.LostAt = append(c.Meta.Stats.LostAt, capture.LostSpan{From: from + p*poll, To: min(from+(p+1)*poll, to), CPU: cpu, Count: n})
				c.Meta.Stats.Counters.AddReason(capture.LostOnCPU, fmt.Sprint(cpu), n)
			}
		}
	}
	return c, nil
}

// pick chooses a thread by its weight in the phase.
func pick(rng *rand.Rand, threads []*thread, second bool, w1, w2 float64) int {
	total := w1
	if second {
		total = w2
	}
	x := rng.Float64() * total
	for i, t := range threads {
		w := t.weight
		if second {
			w = t.weight2
		}
		if x -= w; x < 0 {
			return i
		}
	}
	return len(threads) - 1
}

// step moves the thread along: every few samples it returns to some
// depth and calls something else from there.
func (t *thread) step(rng *rand.Rand) {
	if t.left > 0 {
		t.left--
		return
	}
	t.left = 2 + rng.IntN(30)
	from := rng.IntN(len(t.path))
	for d := from; d < len(t.path); d++ {
		t.path[d] = rng.IntN(3)
	}
}

// frames interns the synthetic frames.
type frames struct {
	b     *capture.Builder
	procs map[string]uint32
	fixed []uint32      // _start, main, worker_loop
	phase [2][]uint32   // the phase's entry: parse_request / compress_block
	deep  [][3][]uint32 // [depth][choice][phase]
	sleep []uint32      // off-CPU waits: futex_wait, read, epoll_wait
	synth map[string]uint32
	buf   []uint32
}

func newFrames(b *capture.Builder, depth int) *frames {
	user := func(name string) uint32 { return b.Frame(capture.Frame{Name: name, Module: "/usr/bin/svc"}) }
	f := &frames{b: b, procs: map[string]uint32{}, synth: map[string]uint32{}}
	f.fixed = []uint32{user("_start"), user("main"), user("worker_loop")}
	f.phase = [2][]uint32{{user("parse_request")}, {user("compress_block")}}
	names := [2][3]string{{"tokenize", "lookup", "validate"}, {"deflate", "crc32", "copy_out"}}
	for d := 0; d < depth; d++ {
		var level [3][]uint32
		for c := 0; c < 3; c++ {
			level[c] = []uint32{user(fmt.Sprintf("%s_%d", names[0][c], d)), user(fmt.Sprintf("%s_%d", names[1][c], d))}
		}
		f.deep = append(f.deep, level)
	}
	kernel := func(name string) uint32 {
		return b.Frame(capture.Frame{Name: name, Kind: capture.KindKernel, Module: "[kernel.kallsyms]"})
	}
	f.sleep = []uint32{kernel("futex_wait"), kernel("vfs_read"), kernel("ep_poll")}
	return f
}

// stack is the thread's current stack; leaf ends an off-CPU stack
// ([blocked] or [runqueue]) below a kernel wait chosen by the path.
func (f *frames) stack(t *thread, second bool, leaf string) uint32 {
	ph := 0
	if second {
		ph = 1
	}
	proc, ok := f.procs[t.proc]
	if !ok {
		proc = f.b.Frame(capture.Frame{Name: t.proc, Kind: capture.KindProcess})
		f.procs[t.proc] = proc
	}
	f.buf = append(f.buf[:0], proc)
	f.buf = append(f.buf, f.fixed...)
	f.buf = append(f.buf, f.phase[ph][0])
	// Off-CPU stacks are shallower: they wait from half-way down.
	depth := len(t.path)
	if leaf != "" {
		depth = len(t.path) / 2
	}
	for d := 0; d < depth; d++ {
		f.buf = append(f.buf, f.deep[d][t.path[d]][ph])
	}
	if leaf != "" {
		f.buf = append(f.buf, f.sleep[t.path[len(t.path)-1]])
		id, ok := f.synth[leaf]
		if !ok {
			id = f.b.Frame(capture.Frame{Name: leaf, Kind: capture.KindSynthetic})
			f.synth[leaf] = id
		}
		f.buf = append(f.buf, id)
	}
	return f.b.Stack(slices.Clone(f.buf))
}
