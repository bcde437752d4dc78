package flamegraph

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scorch-dev/scorch/capture"
)

//go:embed script.js
var script string

// Geometry, as FlameGraph draws it.
const (
	frameHeight = 16
	fontSize    = 12
	fontWidth   = 0.59 // average character width relative to the font size
	xPad        = 10
)

// graph is one rendering: a laid-out tree and what the header says.
type graph struct {
	t        *tree
	opts     Options
	unit     string
	palette  string
	useBase  bool // widths from the base side (differential graphs)
	diff     bool
	baseTot  int64
	cmpTot   int64
	title    string
	subtitle string
	notes    []string
	cpi      bool // fill by cycles per instruction (cpi.go)
}

// Render writes the capture's selected events as an interactive SVG flame graph.
func Render(w io.Writer, c *capture.Capture, q capture.Query, opts Options) error {
	if c == nil {
		return fmt.Errorf("render flame graph: no capture")
	}
	if err := opts.validate(); err != nil {
		return err
	}
	t := newTree()
	g := &graph{t: t, opts: opts, unit: c.Meta.Unit, palette: opts.Palette, cpi: c.Meta.Type.Info().CyclesPerInstruction}
	t.addCapture(c, q, opts.Reverse, false, g.cpi)
	g.build()
	if g.palette == "" {
		g.palette = c.Meta.Type.Info().Palette
	}
	g.title = opts.Title
	if g.title == "" {
		g.title = defaultTitle(c, opts)
	}
	g.subtitle = opts.Subtitle
	if g.subtitle == "" {
		g.subtitle = describe(c, q, t.total)
	}
	return g.write(w)
}

func defaultTitle(c *capture.Capture, opts Options) string {
	s := c.Meta.Type.Info().Title
	if c.Meta.Event != "" {
		s += ": " + c.Meta.Event
	}
	if opts.Layout == "icicle" {
		s = strings.Replace(s, "Flame Graph", "Icicle Graph", 1)
	}
	if opts.Reverse {
		s += " (reversed, merged by leaf)"
	}
	return s
}

// describe is the subtitle: the facts a reader needs to trust the graph.
func describe(c *capture.Capture, q capture.Query, total int64) string {
	m := &c.Meta
	parts := []string{string(m.Type)}
	if m.Host != "" {
		parts = append(parts, "host "+m.Host)
	}
	if m.Duration > 0 {
		parts = append(parts, m.Duration.Round(time.Millisecond).String())
	}
	if m.Params.Hz > 0 && (m.Type == "" || m.Type.Info().Sampled) {
		parts = append(parts, strconv.Itoa(m.Params.Hz)+" Hz")
	}
	parts = append(parts, thousands(int64(m.Stats.Samples))+" samples", thousands(int64(m.Stats.Lost))+" lost")
	if r := rangeText(q); r != "" {
		parts = append(parts, "range "+r)
	}
	parts = append(parts, "total "+formatValue(total, m.Unit))
	if m.Source != "" && m.Source != "bpf" {
		parts = append(parts, "from "+m.Source)
	}
	return strings.Join(parts, " · ")
}

// rangeText is the query's time ranges, "1.5 s to end" or "1 s to 2 s,
// 5 s to 6 s", or "" without one.
func rangeText(q capture.Query) string {
	var parts []string
	for _, r := range q.QueryRanges() {
		to := "end"
		if r.To != 0 {
			to = strconv.FormatFloat(r.To, 'f', -1, 64) + " s"
		}
		parts = append(parts, strconv.FormatFloat(r.From, 'f', -1, 64)+" s to "+to)
	}
	return strings.Join(parts, ", ")
}

// build merges the stacks and keeps the frames at least minwidth wide.
func (g *graph) build() {
	o := g.opts
	width := o.width()
	mw, pct, _ := parseMinWidth(o.MinWidth)
	g.t.build(func(total int64) float64 {
		if pct {
			return mw / 100 * float64(total)
		}
		if total == 0 {
			return 0
		}
		return mw * float64(total) / float64(width-2*xPad)
	}, o.Sort == "size", g.useBase)
	g.baseTot, g.cmpTot = g.t.baseTot, g.t.cmpTotal
}

// write writes the built graph as SVG.
func (g *graph) write(w io.Writer) error {
	o := g.opts
	width := o.width()
	t := g.t
	total := t.total
	scale := 0.0
	if total > 0 {
		scale = float64(width-2*xPad) / float64(total)
	}
	if total == 0 {
		g.notes = append(g.notes, "no samples match the query")
	}
	if t.prunedFrames > 0 {
		g.notes = append(g.notes, fmt.Sprintf("%s %s narrower than %s not drawn (%s, %.2f%%, counted in their parents)",
			thousands(t.prunedFrames), plural(t.prunedFrames, "frame", "frames"), minWidthText(o.MinWidth), formatValue(t.prunedVal, g.unit), percent(t.prunedVal, total)))
	}
	if t.truncStacks > 0 {
		g.notes = append(g.notes, fmt.Sprintf("stacks deeper than %d frames end in [truncated]: %s %s not drawn",
			MaxDepth, thousands(t.truncFrames), plural(t.truncFrames, "frame", "frames")))
	}
	if g.diff && t.onlyBase > 0 {
		side, view := "base", "widths=base (scorch diff --widths base)"
		if g.useBase {
			side, view = "compare", "widths=compare (the default)"
		}
		g.notes = append(g.notes, fmt.Sprintf("%s %s only in the %s and have no width here: view them with %s", thousands(t.onlyBase), plural(t.onlyBase, "frame exists", "frames exist"), side, view))
	}
	maxDepth := t.maxDepth

	header := 3 * fontSize
	if g.subtitle != "" {
		header += 2 * fontSize
	}
	header += len(g.notes) * (fontSize + 4)
	footer := 2*fontSize + 10
	height := header + int(maxDepth+1)*frameHeight + footer
	icicle := o.Layout == "icicle"

	bw := bufio.NewWriterSize(w, 256<<10)
	b := make([]byte, 0, 4096)
	bgTop, bgBottom := background(g.palette)
	b = fmt.Appendf(b, `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" data-unit="`, width, height, width, height)
	b = escape(b, g.unit)
	b = fmt.Appendf(b, `" data-total="%d" data-layout="%s" data-search="`, total, layoutName(o.Layout))
	b = escape(b, o.Search)
	b = append(b, `">
<style`...)
	b = nonceAttr(b, o.ScriptNonce)
	b = append(b, `>
text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}
#title{font-size:17px;text-anchor:middle}#subtitle,.note{fill:#444;text-anchor:middle}
#frames text{pointer-events:none}
#frames rect{stroke-width:0;rx:2px;ry:2px}
#frames g:hover rect{stroke:#000;stroke-width:0.5;cursor:pointer}
.hide{display:none}.parent{opacity:0.5}
#frames g.m rect{fill:rgb(230,0,230)}
#unzoom,#search,#ignorecase{cursor:pointer}#search,#ignorecase{opacity:0.4}#search:hover,#ignorecase:hover,.on{opacity:1}
#matched{text-anchor:end}
</style>
<defs><linearGradient id="background" y1="0" y2="1" x1="0" x2="0"><stop stop-color="`...)
	b = append(b, bgTop...)
	b = append(b, `" offset="5%"/><stop stop-color="`...)
	b = append(b, bgBottom...)
	b = append(b, `" offset="95%"/></linearGradient></defs>
<rect x="0" y="0" width="100%" height="100%" fill="url(#background)"/>
`...)
	b = fmt.Appendf(b, `<text id="title" x="%d" y="24">`, width/2)
	b = escape(b, g.title)
	b = append(b, "</text>\n"...)
	y := 24
	if g.subtitle != "" {
		y += 2 * fontSize
		b = fmt.Appendf(b, `<text id="subtitle" x="%d" y="%d">`, width/2, y)
		b = escape(b, g.subtitle)
		b = append(b, "</text>\n"...)
	}
	for _, n := range g.notes {
		y += fontSize + 4
		b = fmt.Appendf(b, `<text class="note" x="%d" y="%d">`, width/2, y)
		b = escape(b, n)
		b = append(b, "</text>\n"...)
	}
	b = fmt.Appendf(b, `<text id="details" x="%d" y="%d"> </text>
<text id="unzoom" class="hide" x="%d" y="24">Reset Zoom</text>
<text id="search" x="%d" y="24">Search</text>
<text id="ignorecase" x="%d" y="24">ic</text>
<text id="matched" x="%d" y="%d"></text>
<g id="frames">
`, xPad, height-17, xPad, width-110, width-20, width-xPad, height-17)
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}

	// Delta colours need the largest change first.
	maxDelta := 0.0
	if g.diff {
		for i := range t.nodes {
			if d := math.Abs(g.delta(int32(i))); d > maxDelta {
				maxDelta = d
			}
		}
	}
	// A name is drawn by many frames: escape it, count its characters and
	// colour it once.
	labels := make([]label, len(t.names))
	for i := range t.nodes {
		i := int32(i)
		n := &t.nodes[i]
		ni := &t.names[n.name]
		wv := t.width(i, g.useBase)
		x := float64(xPad) + float64(n.start)*scale
		fw := float64(wv) * scale
		var fy int
		if icicle {
			fy = header + int(n.depth)*frameHeight
		} else {
			fy = height - footer - int(n.depth+1)*frameHeight
		}
		b = b[:0]
		b = append(b, `<g class="f" data-x="`...)
		b = strconv.AppendInt(b, n.start, 10)
		b = append(b, `" data-v="`...)
		b = strconv.AppendInt(b, wv, 10)
		b = append(b, `" data-d="`...)
		b = strconv.AppendInt(b, int64(n.depth), 10)
		b = append(b, `"><title>`...)
		lb := &labels[n.name]
		if lb.esc == nil { // make gives a non-nil slice even for an empty name
			lb.esc = escape(make([]byte, 0, len(ni.label)), ni.label)
			lb.runes = utf8.RuneCountInString(ni.label)
		}
		b = append(b, lb.esc...)
		b = append(b, '\n')
		b = g.info(b, i, total)
		if n.cut > 0 {
			b = fmt.Appendf(b, "\nstands for %s %s not drawn (depths %d to %s)", thousands(int64(n.cut)), plural(int64(n.cut), "frame", "frames"), MaxDepth, thousands(int64(MaxDepth-1+int(n.cut))))
		}
		b = append(b, `</title><rect x="`...)
		b = appendFixed(b, x, 1)
		b = append(b, `" y="`...)
		b = strconv.AppendInt(b, int64(fy), 10)
		b = append(b, `" width="`...)
		b = appendFixed(b, fw, 1)
		b = append(b, `" height="15" fill="`...)
		var fill string
		if g.diff {
			fill = diffColor(g.delta(i), maxDelta)
		} else if g.cpi {
			fill = cpiColor(n.value, n.base)
		} else if i == 0 {
			fill = "rgb(210,210,210)"
		} else {
			if lb.fill == "" {
				lb.fill = frameColor(g.palette, *ni)
			}
			fill = lb.fill
		}
		b = append(b, fill...)
		b = append(b, `"/><text x="`...)
		b = appendFixed(b, x+3, 1)
		b = append(b, `" y="`...)
		b = appendFixed(b, float64(fy)+10.5, 1)
		b = append(b, `">`...)
		if chars := fitChars(fw); chars >= 3 && lb.runes <= chars {
			b = append(b, lb.esc...)
		} else {
			b = escape(b, truncate(ni.label, fw))
		}
		b = append(b, "</text></g>\n"...)
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("write svg: %w", err)
		}
	}
	b = append(b[:0], "</g>\n<script"...)
	b = nonceAttr(b, o.ScriptNonce)
	b = append(b, "><![CDATA[\n"...)
	b = append(b, script...)
	b = append(b, "]]></script>\n</svg>\n"...)
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// delta is a frame's change as a share of each side's total: positive grew.
func (g *graph) delta(i int32) float64 {
	n := &g.t.nodes[i]
	var b, c float64
	if g.baseTot > 0 {
		b = float64(n.base) / float64(g.baseTot)
	}
	if g.cmpTot > 0 {
		c = float64(n.value) / float64(g.cmpTot)
	}
	return c - b
}

// info is the second line of a frame's tooltip: value with its unit, share
// of the total, self value; in differential graphs both sides and the delta.
func (g *graph) info(b []byte, i int32, total int64) []byte {
	n := &g.t.nodes[i]
	if g.cpi {
		return g.cpiInfo(b, i, total)
	}
	if !g.diff {
		b = appendValue(b, n.value, g.unit)
		b = append(b, " ("...)
		b = appendFixed(b, percent(n.value, total), 2)
		b = append(b, "%), self "...)
		b = appendValue(b, n.self, g.unit)
		b = append(b, " ("...)
		b = appendFixed(b, percent(n.self, total), 2)
		return append(b, "%)"...)
	}
	b = append(b, "base "...)
	b = appendValue(b, n.base, g.unit)
	b = append(b, " ("...)
	b = appendFixed(b, percent(n.base, g.baseTot), 2)
	b = append(b, "%), compare "...)
	b = appendValue(b, n.value, g.unit)
	b = fmt.Appendf(b, " (%.2f%%), delta %+.2f%%; self base ", percent(n.value, g.cmpTot), 100*g.delta(i))
	b = appendValue(b, n.baseSelf, g.unit)
	b = append(b, ", compare "...)
	return appendValue(b, n.self, g.unit)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func percent(v, total int64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(v) / float64(total)
}

func layoutName(l string) string {
	if l == "" {
		return "flame"
	}
	return l
}

func minWidthText(s string) string {
	if s == "" {
		s = "0.1"
	}
	if strings.HasSuffix(s, "%") {
		return s
	}
	return s + " px"
}

func nonceAttr(b []byte, nonce string) []byte {
	if nonce == "" {
		return b
	}
	b = append(b, ` nonce="`...)
	b = escape(b, nonce)
	return append(b, '"')
}

// label is a name as frames draw it: escaped, its length in characters
// and its colour.
type label struct {
	esc   []byte
	runes int
	fill  string // of a normal graph, set when first drawn
}

// fitChars is how many characters fit in w pixels.
func fitChars(w float64) int { return int(w / (fontSize * fontWidth)) }

// truncate cuts a label to the characters that fit in w pixels, ending in
// "..", or drops it when fewer than three characters fit.
func truncate(s string, w float64) string {
	chars := fitChars(w)
	if chars < 3 {
		return ""
	}
	if utf8.RuneCountInString(s) <= chars {
		return s
	}
	n := 0
	for i := range s {
		if n == chars-2 {
			return s[:i] + ".."
		}
		n++
	}
	return s
}

// escape appends s as XML text or attribute content: markup characters as
// entities, invalid UTF-8, NUL and other characters XML forbids as U+FFFD.
// Runs of characters kept as they are are appended at once.
func escape(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiKept[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '<':
				b = append(b, "&lt;"...)
			case '>':
				b = append(b, "&gt;"...)
			case '&':
				b = append(b, "&amp;"...)
			case '"':
				b = append(b, "&quot;"...)
			case '\'':
				b = append(b, "&#39;"...)
			default: // other control characters
				b = append(b, "\uFFFD"...)
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || (r >= 0x80 && r <= 0x9f) || r == 0xFFFE || r == 0xFFFF {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			start = i + size
		}
		i += size
	}
	return append(b, s[start:]...)
}

// asciiKept are the ASCII characters escape appends unchanged: printable
// ones but markup, and newline and tab.
var asciiKept = func() (k [utf8.RuneSelf]bool) {
	for c := 0x20; c < 0x7f; c++ {
		k[c] = true
	}
	for _, c := range "<>&\"'" {
		k[c] = false
	}
	k['\n'], k['\t'] = true, true
	return k
}()
