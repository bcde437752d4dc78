package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/heatmap"
)

// outputFormats are the values of --format.
var outputFormats = []string{"svg", "folded", "pprof", "speedscope", "heatmap-json", "capture"}

// writeOutput writes the capture in one of the output formats.
func writeOutput(w io.Writer, c *capture.Capture, format string, q capture.Query, opts flamegraph.Options) error {
	switch format {
	case "svg":
		return flamegraph.Render(w, c, q, opts)
	case "folded":
		return formats.WriteFolded(w, c, q)
	case "pprof":
		return formats.WritePprof(w, c, q)
	case "speedscope":
		return formats.WriteSpeedscope(w, c, q)
	case "heatmap-json":
		return heatmap.WriteJSON(w, c, q, heatmap.DefaultRows)
	case "capture":
		return capture.Write(w, c)
	}
	return fmt.Errorf("format %q is not supported: allowed values are %s", format, strings.Join(outputFormats, ", "))
}
