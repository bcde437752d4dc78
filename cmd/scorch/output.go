package main

import (
	"io"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/output"
)

// writeOutput writes the capture in one of the output formats (output.Formats).
func writeOutput(w io.Writer, c *capture.Capture, format string, q capture.Query, opts flamegraph.Options) error {
	out, err := output.Lookup(format)
	if err != nil {
		return err
	}
	return out.Write(w, c, output.View{Query: q, Graph: opts})
}
