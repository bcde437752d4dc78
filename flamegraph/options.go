// Package flamegraph renders captures as interactive SVG flame graphs and
// differential flame graphs. The SVG is standalone: it works when opened from
// disk, and its script runs under a Content-Security-Policy that allows only
// that script (by nonce).
//
// In the browser: hover shows a frame's value with its unit, its share and
// its self value; a click zooms (ancestors dimmed), a click on the root,
// "Reset Zoom" or Escape resets; Search, Ctrl-F or F3 asks for a regular
// expression, "ic" or Ctrl-I toggles case, and "Matched" is the share of
// the zoomed frame covered by matches. The URL keeps the state (?x=&d= for
// the zoom, ?s= for the search, ?i=1 for ignore case) in the history, so
// Back undoes.
//
// Differential graphs take their widths from the compare side, so frames
// that exist only in the base have no width; Options.BaseWidths (widths=base,
// `scorch diff --widths base`) draws the base side's widths with the same
// colours, which shows them.
package flamegraph

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Options controls a rendering. The zero value gives FlameGraph's defaults.
type Options struct {
	Title, Subtitle string // defaults built from capture metadata (type, host, duration, hz, samples, lost)
	Width           int    // default 1200
	Layout          string // "flame" (default) or "icicle"
	Sort            string // "alpha" (default) or "size"
	MinWidth        string // pixels ("0.1", default) or a percentage ("0.5%")
	Reverse         bool   // merge by leaf: bottom-up graph
	Search          string // initial search regex (URL ?s=)
	Palette         string // default by capture type
	ScriptNonce     string // when set, the <script> element carries nonce="..." (the web service sends a CSP)

	// BaseWidths draws a differential graph with the widths of the base
	// side (colours still say how compare differs), so that frames which
	// exist only in the base are visible.
	BaseWidths bool
}

// Allowed option values, in the order error messages list them.
var (
	Layouts  = []string{"flame", "icicle"}
	Sorts    = []string{"alpha", "size"}
	Palettes = []string{"hot", "io", "wakeup", "chain", "mem"}
)

// Width limits.
const (
	DefaultWidth = 1200
	MinWidthPx   = 200
	MaxWidthPx   = 20000
)

// OptionParams are the names ParseOptions reads; DiffParams adds widths,
// which only differential graphs take.
var (
	OptionParams = []string{"layout", "reverse", "sort", "minwidth", "title", "s", "width", "palette"}
	DiffParams   = append(slices.Clone(OptionParams), "widths")
)

// ParseOptions reads the flame graph parameters of the HTTP API and of
// `scorch render`: layout, sort, minwidth, reverse, title, s (search), and
// width, palette and widths (base or compare, for differential graphs).
func ParseOptions(v url.Values) (Options, error) {
	var o Options
	o.Layout = v.Get("layout")
	o.Sort = v.Get("sort")
	o.MinWidth = v.Get("minwidth")
	o.Title = v.Get("title")
	o.Search = v.Get("s")
	o.Palette = v.Get("palette")
	if s := v.Get("reverse"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return o, fmt.Errorf("reverse %q is not valid: allowed values are true, false", s)
		}
		o.Reverse = b
	}
	if s := v.Get("width"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return o, fmt.Errorf("width %q is not valid: give a number of pixels %d..%d", s, MinWidthPx, MaxWidthPx)
		}
		o.Width = n
	}
	switch s := v.Get("widths"); s {
	case "", "compare":
	case "base":
		o.BaseWidths = true
	default:
		return o, fmt.Errorf("widths %q is not supported: allowed values are base, compare", s)
	}
	if err := o.validate(); err != nil {
		return o, err
	}
	return o, nil
}

// validate checks every field and names the allowed values.
func (o *Options) validate() error {
	if o.Layout != "" && !slices.Contains(Layouts, o.Layout) {
		return fmt.Errorf("layout %q is not supported: allowed values are %s", o.Layout, strings.Join(Layouts, ", "))
	}
	if o.Sort != "" && !slices.Contains(Sorts, o.Sort) {
		return fmt.Errorf("sort %q is not supported: allowed values are %s", o.Sort, strings.Join(Sorts, ", "))
	}
	if o.Palette != "" && !slices.Contains(Palettes, o.Palette) {
		return fmt.Errorf("palette %q is not supported: allowed values are %s", o.Palette, strings.Join(Palettes, ", "))
	}
	if o.Width != 0 && (o.Width < MinWidthPx || o.Width > MaxWidthPx) {
		return fmt.Errorf("width %d is out of range: allowed %d..%d pixels", o.Width, MinWidthPx, MaxWidthPx)
	}
	if _, _, err := parseMinWidth(o.MinWidth); err != nil {
		return err
	}
	return nil
}

// width is the SVG width in pixels: Width, or DefaultWidth when unset.
func (o *Options) width() int {
	if o.Width == 0 {
		return DefaultWidth
	}
	return o.Width
}

// parseMinWidth reads "0.1" (pixels) or "0.5%" (of the total).
func parseMinWidth(s string) (v float64, percent bool, err error) {
	if s == "" {
		return 0.1, false, nil
	}
	num := s
	if strings.HasSuffix(s, "%") {
		num, percent = strings.TrimSuffix(s, "%"), true
	}
	v, err = strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v != v || (percent && v > 100) || (!percent && v > MaxWidthPx) {
		return 0, false, fmt.Errorf("minwidth %q is not valid: give pixels such as 0.1 (0..%d) or a percentage such as 0.5%% (0..100%%)", s, MaxWidthPx)
	}
	return v, percent, nil
}
