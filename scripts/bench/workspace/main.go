// Command workspace writes the synthetic capture of the workspace
// benchmark (scripts/bench-workspace.sh) to stdout in scorch's capture
// format: -samples events over -stacks distinct stacks, -depth frames deep
// on average, spread over -seconds. Stacks share prefixes the way call
// trees do (each level picks among a few callees, skewed to the first), and
// samples favour some stacks, so the profile has hot paths and a long tail.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

func main() {
	samples := flag.Int("samples", 1000000, "events")
	stacks := flag.Int("stacks", 100000, "distinct stacks")
	depth := flag.Int("depth", 60, "average frames per stack")
	seconds := flag.Int("seconds", 10, "capture length")
	flag.Parse()
	rng := rand.New(rand.NewPCG(1, 2))
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: time.Duration(*seconds) * time.Second,
		Timestamps: true, Source: "bpf", Host: "bench", Params: capture.Params{Type: capture.CPU, Hz: 999}})
	frames := map[string]uint32{}
	frame := func(name, module string, kind capture.FrameKind) uint32 {
		if id, ok := frames[name]; ok {
			return id
		}
		id := b.Frame(capture.Frame{Name: name, Module: module, Kind: kind})
		frames[name] = id
		return id
	}
	ids := make([]uint32, 0, 2**depth)
	seen := map[uint32]bool{}
	var list []uint32
	for len(list) < *stacks {
		ids = ids[:0]
		ids = append(ids, frame(fmt.Sprintf("app%d", rng.IntN(4)), "", capture.KindProcess))
		d := *depth/2 + rng.IntN(*depth+1)
		for i := 0; i < d; i++ {
			// A few callees per level, skewed: hot paths and a long tail.
			choice := int(float64(3+i/4) * rng.Float64() * rng.Float64())
			kind, module, suffix := capture.KindUser, "/usr/bin/app", ""
			switch {
			case i > d-4 && rng.IntN(3) == 0:
				kind, module, suffix = capture.KindKernel, "[kernel.kallsyms]", "_k"
			case i%7 == 3:
				module = "/usr/lib/x86_64-linux-gnu/libc.so.6"
			}
			ids = append(ids, frame(fmt.Sprintf("fn_%d_%d%s", i, choice, suffix), module, kind))
		}
		st := b.Stack(ids)
		if !seen[st] {
			seen[st] = true
			list = append(list, st)
		}
	}
	span := int64(*seconds) * int64(time.Second)
	for i := 0; i < *samples; i++ {
		r := rng.Float64()
		st := list[int(float64(len(list))*r*r)]
		at := int64(i) * span / int64(*samples)
		b.Add(capture.Event{Time: at, Value: 1, Stack: st, PID: 1000 + uint32(st%8), TID: 1000 + uint32(st%16), CPU: uint16(i % 4)})
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if err := capture.Write(w, b.Capture()); err != nil {
		fmt.Fprintln(os.Stderr, "workspace:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "workspace:", err)
		os.Exit(1)
	}
}
