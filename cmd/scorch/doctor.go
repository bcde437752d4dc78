package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/profiler"
)

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	setUsage(fs, stderr, "scorch doctor [--json]")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	caps := profiler.Capabilities(ctx)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(caps); err != nil {
			return exitFailure
		}
		return exitOK
	}
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(stdout, "kernel      %s\n", caps.Kernel)
	fmt.Fprintf(stdout, "arch        %s\n", caps.Arch)
	fmt.Fprintf(stdout, "root        %s\n", yes(caps.Root))
	fmt.Fprintf(stdout, "BTF         %s", yes(caps.BTF))
	if caps.BTFReason != "" {
		fmt.Fprintf(stdout, "  (%s)", caps.BTFReason)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "PMU         %s", yes(caps.PMU))
	if caps.PMUReason != "" {
		fmt.Fprintf(stdout, "  (%s)", caps.PMUReason)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "\ncollectors")
	for _, t := range capture.Types {
		name := string(t)
		c := caps.Collectors[name]
		fmt.Fprintf(stdout, "  %-8s %s", name, yes(c.Available))
		if c.Reason != "" {
			fmt.Fprintf(stdout, "  (%s)", c.Reason)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "\nsysctls")
	for _, name := range []string{"kernel.kptr_restrict", "kernel.perf_event_paranoid", "kernel.perf_event_max_stack", "kernel.bpf_stats_enabled"} {
		if v, ok := caps.Sysctls[name]; ok {
			fmt.Fprintf(stdout, "  %-28s %s\n", name, v)
		}
	}
	for _, n := range caps.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	return exitOK
}
