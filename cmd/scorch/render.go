package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/output"
)

// viewUsage is the help of the flags shared by render and diff: the flame
// graph options and the filters, under the names of the HTTP query
// parameters (flamegraph.OptionParams, capture.QueryParams).
var viewUsage = map[string]string{
	"title":    "flame graph title",
	"layout":   "flame or icicle",
	"sort":     "sibling order: alpha or size",
	"minwidth": "omit frames narrower than this many pixels (0.1) or percent (0.5%)",
	"reverse":  "true: merge stacks by leaf (bottom-up graph)",
	"s":        "initial search regex of the SVG",
	"width":    "SVG width in pixels",
	"palette":  "hot, io, wakeup, chain or mem (default by capture type)",
	"from":     "seconds from the capture start; repeat --from and --to in pairs for several ranges",
	"to":       "seconds from the capture start (empty: the end)",
	"pid":      "process ids, comma separated",
	"tid":      "thread ids, comma separated",
	"comm":     "process name",
	"cpu":      "CPU numbers, comma separated",
	"idle":     "include or exclude (default) idle samples",
	"view":     "mem: alloc or inuse",
}

// viewNames are the shared flags, as the parsers they go to name them.
var viewNames = append(slices.Clone(flamegraph.OptionParams), capture.QueryParams...)

// viewFlagSet adds the shared flags to fs and returns a function giving
// the values that were set.
func viewFlagSet(fs *flag.FlagSet) func() url.Values {
	vals := make(map[string]*string)
	// from and to repeat, as the query's parameters do (several ranges).
	ranges := map[string]*multiFlag{"from": {}, "to": {}}
	for _, name := range viewNames {
		if r, ok := ranges[name]; ok {
			fs.Var(r, name, viewUsage[name])
			continue
		}
		vals[name] = fs.String(name, "", viewUsage[name])
	}
	return func() url.Values {
		v := url.Values{}
		fs.Visit(func(f *flag.Flag) {
			if p, ok := vals[f.Name]; ok {
				v.Set(f.Name, *p)
			}
			if r, ok := ranges[f.Name]; ok {
				v[f.Name] = *r
			}
		})
		return v
	}
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments (parseFlags says how it stops).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// loadInputs imports and merges the input files ("-" is stdin), reporting
// unparseable lines on stderr.
func loadInputs(cmd string, inputs []string, stdin io.Reader, opts formats.ImportOptions, stderr io.Writer) (*capture.Capture, error) {
	var cs []*capture.Capture
	for _, in := range inputs {
		var r io.Reader = stdin
		name := "stdin"
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r, name = f, in
		}
		c, rep, err := formats.Import(r, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if rep.BadLines > 0 {
			fmt.Fprintf(stderr, "scorch %s: %s: %d of %d lines of %s could not be parsed and were skipped; the first is line %d: %q\n",
				cmd, name, rep.BadLines, rep.Lines, rep.Format, rep.FirstBadLine, rep.FirstBadText)
		}
		for _, w := range c.Meta.Warnings {
			fmt.Fprintf(stderr, "scorch %s: %s: warning: %s\n", cmd, name, w)
		}
		cs = append(cs, c)
	}
	if len(cs) > 1 {
		for _, c := range cs[1:] {
			if c.Meta.Unit != cs[0].Meta.Unit {
				return nil, fmt.Errorf("inputs measure different things (%s and %s): merge inputs of the same unit", cs[0].Meta.Unit, c.Meta.Unit)
			}
		}
	}
	return formats.Merge(cs...), nil
}

// stdinReader is where "-" reads from; tests replace it.
var stdinReader io.Reader = os.Stdin

// runRender implements `scorch render --format FORMAT [-o FILE] INPUT...`.
func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	format := fs.String("format", "svg", "output format: "+output.Names())
	out := fs.String("o", "", "output file (default stdout)")
	event := fs.String("event", "", "perf script input: the event to keep (default the first event in the file)")
	typ := fs.String("type", "", "folded input: what it measures, a capture type (default cpu)")
	view := viewFlagSet(fs)
	setUsage(fs, stderr, "scorch render --format FORMAT [-o FILE] [flags] INPUT...",
		"\nINPUT: perf script, folded, pprof or capture files, - for stdin; several are merged.")
	inputs, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(inputs) == 0 {
		fmt.Fprintln(stderr, "scorch render: no input: give one or more files, or - for stdin")
		return exitUsage
	}
	if _, err := output.Lookup(*format); err != nil {
		fmt.Fprintf(stderr, "scorch render: --%v\n", err)
		return exitUsage
	}
	iopts, q, opts, code := parseView("render", view(), *event, *typ, stderr)
	if code != exitOK {
		return code
	}
	c, err := loadInputs("render", inputs, stdinReader, iopts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scorch render: %v\n", err)
		return exitFailure
	}
	if err := c.CheckRange(q); err != nil {
		fmt.Fprintf(stderr, "scorch render: %v\n", err)
		return exitUsage
	}
	if err := ctx.Err(); err != nil {
		return exitFailure
	}
	if err := writeFile(*out, stdout, func(w io.Writer) error {
		return writeOutput(w, c, *format, q, opts)
	}); err != nil {
		fmt.Fprintf(stderr, "scorch render: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseView validates the shared flags.
func parseView(cmd string, v url.Values, event, typ string, stderr io.Writer) (formats.ImportOptions, capture.Query, flamegraph.Options, int) {
	iopts := formats.ImportOptions{Event: event}
	if typ != "" {
		t, err := capture.ParseType(typ)
		if err != nil {
			fmt.Fprintf(stderr, "scorch %s: --type: %v\n", cmd, err)
			return iopts, capture.Query{}, flamegraph.Options{}, exitUsage
		}
		iopts.Type = t
	}
	q, err := capture.ParseQuery(v)
	if err != nil {
		fmt.Fprintf(stderr, "scorch %s: %v\n", cmd, err)
		return iopts, q, flamegraph.Options{}, exitUsage
	}
	opts, err := flamegraph.ParseOptions(v)
	if err != nil {
		fmt.Fprintf(stderr, "scorch %s: %v\n", cmd, err)
		return iopts, q, opts, exitUsage
	}
	return iopts, q, opts, exitOK
}
