package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/scorch-dev/scorch/flamegraph"
)

// runDiff implements `scorch diff BASE COMPARE [-o FILE]`: a differential
// flame graph with the widths of COMPARE, red where it grew and blue where
// it shrank. Frames that exist only in BASE have no width there: --widths
// base draws the widths of BASE instead (same colours), which shows them.
func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	out := fs.String("o", "", "output file (default stdout)")
	widths := fs.String("widths", "compare", "compare, or base to see frames that exist only in BASE")
	event := fs.String("event", "", "perf script inputs: the event to keep (default the first event in the file)")
	typ := fs.String("type", "", "folded inputs: what they measure, a capture type (default cpu)")
	view := viewFlagSet(fs)
	setUsage(fs, stderr, "scorch diff [flags] BASE COMPARE [-o FILE]",
		"\nBASE, COMPARE: perf script, folded, pprof or capture files (- for stdin, once).")
	inputs, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(inputs) != 2 {
		fmt.Fprintf(stderr, "scorch diff: need two inputs, BASE and COMPARE; got %d\n", len(inputs))
		return exitUsage
	}
	v := view()
	v.Set("widths", *widths)
	iopts, q, opts, code := parseView("diff", v, *event, *typ, stderr)
	if code != exitOK {
		return code
	}
	base, err := loadInputs("diff", inputs[:1], stdinReader, iopts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scorch diff: %v\n", err)
		return exitFailure
	}
	compare, err := loadInputs("diff", inputs[1:], stdinReader, iopts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scorch diff: %v\n", err)
		return exitFailure
	}
	for _, c := range []struct {
		name string
		err  error
	}{{"BASE", base.CheckRange(q)}, {"COMPARE", compare.CheckRange(q)}} {
		if c.err != nil {
			fmt.Fprintf(stderr, "scorch diff: %s: %v\n", c.name, c.err)
			return exitUsage
		}
	}
	if err := ctx.Err(); err != nil {
		return exitFailure
	}
	if err := writeFile(*out, stdout, func(w io.Writer) error {
		return flamegraph.RenderDiff(w, base, compare, q, q, opts)
	}); err != nil {
		fmt.Fprintf(stderr, "scorch diff: %v\n", err)
		return exitFailure
	}
	return exitOK
}
