package flamegraph

import (
	"math"
	"strconv"

	"github.com/scorch-dev/scorch/capture"
)

// hueRange is a band of hues (degrees) with a saturation and lightness
// range: every name gets a stable point inside the band of its frame kind.
type hueRange struct {
	h0, h1 float64
	s      float64
	l0, l1 float64
}

// palette gives each frame kind its own band, so kernel, user, JIT and
// inlined frames stay distinguishable within one graph type.
type palette struct {
	user, kernel, jit, inlined, process hueRange
	bgTop, bgBottom                     string
}

var palettes = map[string]palette{
	// on-CPU: warm. User red to orange, kernel gold, JIT green, inlined aqua.
	"hot": {
		user: hueRange{0, 28, 0.85, 0.52, 0.62}, kernel: hueRange{36, 50, 0.9, 0.5, 0.6},
		jit: hueRange{95, 125, 0.6, 0.45, 0.55}, inlined: hueRange{175, 190, 0.6, 0.5, 0.6},
		process: hueRange{10, 30, 0.6, 0.7, 0.78}, bgTop: "#eeeeee", bgBottom: "#eeeeb0",
	},
	// off-CPU: blue. Kernel violet.
	"io": {
		user: hueRange{205, 230, 0.7, 0.55, 0.68}, kernel: hueRange{245, 270, 0.55, 0.6, 0.72},
		jit: hueRange{150, 165, 0.5, 0.5, 0.6}, inlined: hueRange{185, 195, 0.6, 0.6, 0.7},
		process: hueRange{210, 225, 0.4, 0.75, 0.82}, bgTop: "#eeeeee", bgBottom: "#e0e0ff",
	},
	// wakeup: aqua. Kernel a deeper teal.
	"wakeup": {
		user: hueRange{172, 186, 0.6, 0.55, 0.65}, kernel: hueRange{188, 198, 0.65, 0.42, 0.52},
		jit: hueRange{140, 155, 0.5, 0.5, 0.6}, inlined: hueRange{160, 170, 0.5, 0.65, 0.72},
		process: hueRange{175, 185, 0.35, 0.72, 0.8}, bgTop: "#eeeeee", bgBottom: "#e0e0ff",
	},
	// memory: green. Kernel yellow-green.
	"mem": {
		user: hueRange{100, 135, 0.55, 0.5, 0.62}, kernel: hueRange{62, 78, 0.6, 0.48, 0.58},
		jit: hueRange{150, 160, 0.5, 0.45, 0.55}, inlined: hueRange{168, 178, 0.55, 0.55, 0.65},
		process: hueRange{110, 130, 0.35, 0.72, 0.8}, bgTop: "#eef2ee", bgBottom: "#e0ffe0",
	},
}

// nameHash gives three stable values in [0,1) for a name, so a function
// keeps its colour across graphs.
func nameHash(name string) (v1, v2, v3 float64) {
	// FNV-1a 64 (hash/fnv's), inline: no hasher or byte copy per name.
	x := uint64(fnvOffset64)
	for i := 0; i < len(name); i++ {
		x ^= uint64(name[i])
		x *= fnvPrime64
	}
	return float64(x&0xffff) / 65536, float64(x>>16&0xffff) / 65536, float64(x>>32&0xffff) / 65536
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// frameColor is the fill of a frame in a normal (not differential) graph.
func frameColor(pal string, n nameInfo) string {
	switch {
	case n.label == capture.FrameSeparator:
		return "rgb(160,160,160)"
	case n.label == "-":
		return "rgb(200,200,200)"
	case n.kind == capture.KindSynthetic:
		return "rgb(190,190,190)"
	}
	name := pal
	if pal == "chain" {
		// off-wake: the blocked part blue, the waker part aqua.
		name = "io"
		if n.waker {
			name = "wakeup"
		}
	}
	p := palettePtr(name)
	r := p.user
	switch n.kind {
	case capture.KindKernel:
		r = p.kernel
	case capture.KindJIT:
		r = p.jit
	case capture.KindInlined:
		r = p.inlined
	case capture.KindProcess:
		r = p.process
	}
	v1, v2, _ := nameHash(n.label)
	return hsl(r.h0+(r.h1-r.h0)*v1, r.s, r.l0+(r.l1-r.l0)*v2)
}

// palettePtr is the named palette, "hot" for an unknown name, without
// copying it (frameColor runs once per name of a graph).
func palettePtr(name string) *palette {
	switch name {
	case "hot":
		return &hotPalette
	case "io":
		return &ioPalette
	}
	if p, ok := palettes[name]; ok {
		return &p
	}
	return &hotPalette
}

var hotPalette, ioPalette = palettes["hot"], palettes["io"]

// background returns the gradient stops of a palette.
func background(pal string) (string, string) {
	if pal == "diff" {
		return "#f8f8f8", "#e8e8e8"
	}
	if pal == "chain" {
		pal = "io"
	}
	p, ok := palettes[pal]
	if !ok {
		p = palettes["hot"]
	}
	return p.bgTop, p.bgBottom
}

// diffColor colours a normalised delta: red grew, blue shrank, white no
// change, saturation by the delta's share of the largest one.
func diffColor(delta, maxDelta float64) string {
	if maxDelta <= 0 || delta == 0 {
		return "rgb(250,250,250)"
	}
	// The strongest colour stops at 70 so that black labels stay readable.
	f := math.Min(math.Abs(delta)/maxDelta, 1)
	x := strconv.Itoa(int(math.Round(70 + 165*(1-f))))
	if delta > 0 {
		return "rgb(255," + x + "," + x + ")"
	}
	return "rgb(" + x + "," + x + ",255)"
}

func hsl(h, s, l float64) string {
	c := (1 - math.Abs(2*l-1)) * s
	hp := math.Mod(h, 360) / 60
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g = c, x
	case hp < 2:
		r, g = x, c
	case hp < 3:
		g, b = c, x
	case hp < 4:
		g, b = x, c
	case hp < 5:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := l - c/2
	var buf [24]byte
	out := append(buf[:0], "rgb("...)
	out = strconv.AppendInt(out, int64(math.Round((r+m)*255)), 10)
	out = append(out, ',')
	out = strconv.AppendInt(out, int64(math.Round((g+m)*255)), 10)
	out = append(out, ',')
	out = strconv.AppendInt(out, int64(math.Round((b+m)*255)), 10)
	return string(append(out, ')'))
}
