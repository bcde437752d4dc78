package output

import (
	"bytes"
	"testing"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
)

// FuzzCaptureRenderers: any capture file that reads passes through every
// output format, with and without options, without panicking or failing.
func FuzzCaptureRenderers(f *testing.F) {
	var buf bytes.Buffer
	if err := capture.Write(&buf, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), false, "")
	f.Add(buf.Bytes(), true, "0.5%")
	f.Add([]byte(capture.Magic), false, "")
	f.Fuzz(func(t *testing.T, data []byte, reverse bool, minWidth string) {
		c, err := capture.ReadLimit(bytes.NewReader(data), 16<<20)
		if err != nil {
			return
		}
		opts := flamegraph.Options{Reverse: reverse, MinWidth: minWidth, Layout: "icicle"}
		if _, err := flamegraph.ParseOptions(map[string][]string{"minwidth": {minWidth}}); err != nil {
			opts.MinWidth = ""
		}
		for _, o := range Formats {
			var out bytes.Buffer
			if err := o.Write(&out, c, View{Query: capture.Query{IncludeIdle: reverse}, Graph: opts}); err != nil {
				t.Fatalf("%s of a capture that reads: %v", o.Name, err)
			}
		}
	})
}
