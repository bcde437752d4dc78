package flamegraph

import (
	"math"
	"strconv"
)

// CPI flame graphs: widths are cycles (Event.Value) and the fill is cycles
// per instruction (cycles / Event.Value2), blue for instruction-heavy code
// and red for stall-heavy code. The instructions ride on the tree's base
// side, which plain graphs leave empty, so every node has both sums
// (tree.addCapture puts them there).

// CPI scale of the colours: at or below cpiBlue fully blue, at or above
// cpiRed fully red, log-scaled in between (CPI 1 is the middle).
const (
	cpiBlue = 0.25
	cpiRed  = 4.0
)

// cpi is cycles per instruction; ok is false without instructions.
func cpi(cycles, instructions int64) (float64, bool) {
	if instructions <= 0 {
		return 0, false
	}
	return float64(cycles) / float64(instructions), true
}

// cpiColor is the fill of a frame with the given cycles and instructions.
func cpiColor(cycles, instructions int64) string {
	v, ok := cpi(cycles, instructions)
	if !ok {
		return "rgb(190,190,190)"
	}
	f := (math.Log2(v) - math.Log2(cpiBlue)) / (math.Log2(cpiRed) - math.Log2(cpiBlue))
	f = math.Min(math.Max(f, 0), 1)
	// From blue (50,90,230) to red (230,40,30).
	mix := func(a, b float64) string { return strconv.Itoa(int(math.Round(a + (b-a)*f))) }
	return "rgb(" + mix(50, 230) + "," + mix(90, 40) + "," + mix(230, 30) + ")"
}

// cpiInfo is the tooltip line of a CPI graph: cycles, share, instructions
// and CPI.
func (g *graph) cpiInfo(b []byte, i int32, total int64) []byte {
	n := &g.t.nodes[i]
	b = appendThousands(b, n.value)
	b = append(b, " cycles ("...)
	b = appendFixed(b, percent(n.value, total), 2)
	b = append(b, "%), "...)
	b = appendThousands(b, n.base)
	b = append(b, " instructions, CPI "...)
	if v, ok := cpi(n.value, n.base); ok {
		return strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	return append(b, "n/a"...)
}
