package flamegraph

import (
	"fmt"
	"io"

	"github.com/scorch-dev/scorch/capture"
)

// RenderDiff writes a differential flame graph. Frames are merged by name
// from both sides; widths come from compare (or from base with
// Options.BaseWidths, which shows frames that exist only in the base), and
// the fill says how each frame's share of its side's total changed: red
// grew, blue shrank, saturation by the size of the change.
func RenderDiff(w io.Writer, base, compare *capture.Capture, qBase, qCompare capture.Query, opts Options) error {
	if base == nil || compare == nil {
		return fmt.Errorf("render differential flame graph: need a base and a compare capture")
	}
	if err := opts.validate(); err != nil {
		return err
	}
	if base.Meta.Unit != compare.Meta.Unit {
		return fmt.Errorf("render differential flame graph: base is in %s and compare in %s: compare captures of the same unit", base.Meta.Unit, compare.Meta.Unit)
	}
	t := newTree()
	t.addCapture(base, qBase, opts.Reverse, true, false)
	t.addCapture(compare, qCompare, opts.Reverse, false, false)
	g := &graph{t: t, opts: opts, unit: compare.Meta.Unit, diff: true, useBase: opts.BaseWidths}
	g.build()
	g.palette = "diff"
	g.title = opts.Title
	if g.title == "" {
		g.title = "Differential Flame Graph"
		if opts.BaseWidths {
			g.title += " (widths from base)"
		}
		if opts.Reverse {
			g.title += " (reversed, merged by leaf)"
		}
	}
	g.subtitle = opts.Subtitle
	if g.subtitle == "" {
		g.subtitle = fmt.Sprintf("base %s (%s) vs compare %s (%s) · red grew, blue shrank (share of each side's total)",
			sideName(base, qBase), formatValue(g.baseTot, g.unit), sideName(compare, qCompare), formatValue(g.cmpTot, g.unit))
	}
	return g.write(w)
}

// sideName names one side: the capture and, when set, its time range.
func sideName(c *capture.Capture, q capture.Query) string {
	s := c.Meta.ID
	if s == "" {
		s = string(c.Meta.Type)
		if c.Meta.Host != "" {
			s += " on " + c.Meta.Host
		}
	}
	if r := rangeText(q); r != "" {
		s += " " + r
	}
	return s
}
