// Command scorch is a Linux flame graph profiler built on BPF: it records
// CPU, off-CPU and wakeup stacks and shows them as flame graphs, heatmaps
// and pprof profiles, on the command line or through its web service.
//
//	sudo scorch record --type cpu --duration 5s --pid 1234 > app.folded
//	sudo scorch serve            # http://127.0.0.1:7070
//	scorch render --format svg perf.script > graph.svg
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of the public interface.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// commands maps each subcommand to its implementation: the one place a
// command is added.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"record":   runRecord,
	"agent":    runAgent,
	"serve":    runServe,
	"render":   runRender,
	"diff":     runDiff,
	"doctor":   runDoctor,
	"overview": runOverview,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "scorch: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: scorch COMMAND [FLAGS]

commands:
  record   record one capture: scorch record --type cpu [--pid N | --tid N | --comm NAME | -- CMD ARGS] [--duration 10s] [--hz 99] [--format folded] [-o FILE]
  serve    the web service: scorch serve [--listen 127.0.0.1:7070] [--data ./scorch-data]
  render   convert perf script, folded, pprof or capture files: scorch render --format svg [-o FILE] INPUT...
  diff     differential flame graph: scorch diff BASE COMPARE [-o FILE]
  doctor   what this host supports, collector by collector
  overview the host's USE table (utilization, saturation, errors) and top processes: scorch overview [--watch]
  agent    push continuous profiles to an engine: scorch agent --remote URL --remote-kind pyroscope|parca|otlp [--types cpu,offcpu,offwake,mem] [--every 15s] [--hz 19] [--label k=v]

Run 'scorch COMMAND -h' for the flags of a command.
`)
}
