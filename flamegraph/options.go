// Package flamegraph renders captures as interactive SVG flame graphs and
// differential flame graphs that work as standalone files.
package flamegraph

import (
	"errors"
	"io"
	"net/url"

	"github.com/scorch-dev/scorch/capture"
)

// Options controls a rendering. The zero value gives FlameGraph's defaults.
type Options struct {
	Title, Subtitle string // defaults built from capture metadata
	Width           int    // default 1200
	Layout          string // "flame" (default) or "icicle"
	Sort            string // "alpha" (default) or "size"
	MinWidth        string // pixels ("0.1", default) or a percentage ("0.5%")
	Reverse         bool   // merge by leaf: bottom-up graph
	Search          string // initial search regex (URL ?s=)
	Palette         string // default by capture type
	ScriptNonce     string // when set, the <script> element carries nonce="..."
}

// ParseOptions reads layout, sort, minwidth, reverse, title and s.
func ParseOptions(v url.Values) (Options, error) {
	return Options{}, nil
}

var errNotImplemented = errors.New("not implemented")

// Render writes the capture's selected events as an SVG flame graph.
func Render(w io.Writer, c *capture.Capture, q capture.Query, opts Options) error {
	return errNotImplemented
}

// RenderDiff writes a differential flame graph: widths from compare, colours
// by the change from base.
func RenderDiff(w io.Writer, base, compare *capture.Capture, qBase, qCompare capture.Query, opts Options) error {
	return errNotImplemented
}
