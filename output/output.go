// Package output is the table of output formats: what `--format` and the
// web's rendered routes name, with the content type, download name and
// writer of each. It sits above the views (flamegraph, heatmap) and the
// file formats, which know nothing of one another.
package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/heatmap"
)

// View is what an output shows of a capture: the selected events and how
// they are drawn.
type View struct {
	Query capture.Query
	Graph flamegraph.Options // svg
	Rows  int                // heatmap-json; 0: heatmap.DefaultRows
}

// Format is one output format, as `--format` and the web routes name it.
type Format struct {
	Name        string
	ContentType string
	File        string // download name (the web prefixes the capture id)
	Gzipped     bool   // the writer compresses already: do not gzip again
	Write       func(w io.Writer, c *capture.Capture, v View) error
}

// Formats are the output formats, in the order help texts list them.
var Formats = []Format{
	{Name: "svg", ContentType: "image/svg+xml", File: "flamegraph.svg", Write: func(w io.Writer, c *capture.Capture, v View) error {
		return flamegraph.Render(w, c, v.Query, v.Graph)
	}},
	{Name: "folded", ContentType: "text/plain; charset=utf-8", File: "folded.txt", Write: func(w io.Writer, c *capture.Capture, v View) error {
		return formats.WriteFolded(w, c, v.Query)
	}},
	{Name: "pprof", ContentType: "application/octet-stream", File: "profile.pb.gz", Gzipped: true, Write: func(w io.Writer, c *capture.Capture, v View) error {
		return formats.WritePprof(w, c, v.Query)
	}},
	{Name: "speedscope", ContentType: "application/json", File: "speedscope.json", Write: func(w io.Writer, c *capture.Capture, v View) error {
		return formats.WriteSpeedscope(w, c, v.Query)
	}},
	{Name: "heatmap-json", ContentType: "application/json", File: "heatmap.json", Write: func(w io.Writer, c *capture.Capture, v View) error {
		rows := v.Rows
		if rows == 0 {
			rows = heatmap.DefaultRows
		}
		return heatmap.WriteJSON(w, c, v.Query, rows)
	}},
	{Name: "capture", ContentType: "application/octet-stream", File: "capture.scorch", Write: func(w io.Writer, c *capture.Capture, _ View) error {
		return capture.Write(w, c)
	}},
}

// Names lists the output formats, comma-separated, for messages.
func Names() string {
	names := make([]string, len(Formats))
	for i, o := range Formats {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

// Lookup finds an output format by name; the error names the allowed ones.
func Lookup(name string) (*Format, error) {
	for i := range Formats {
		if Formats[i].Name == name {
			return &Formats[i], nil
		}
	}
	return nil, fmt.Errorf("format %q is not supported: allowed values are %s", name, Names())
}
