package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/scorch-dev/scorch/host"
)

// runOverview prints the host's USE table once (after two seconds of
// samples: rates need two, a status needs two rates in a row) or, with
// --watch, at every interval until interrupted.
func runOverview(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("overview", flag.ContinueOnError)
	watch := fs.Bool("watch", false, "print the table again at every interval until Ctrl-C")
	interval := fs.Duration("interval", time.Second, "time between samples (100ms..1m)")
	asJSON := fs.Bool("json", false, "print the overview as JSON (GET /api/overview.json's answer)")
	setUsage(fs, stderr, "scorch overview [--watch] [--interval 1s] [--json]")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scorch overview: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *interval < 100*time.Millisecond || *interval > time.Minute {
		fmt.Fprintf(stderr, "scorch overview: --interval %s is out of range: allowed 100ms..1m\n", *interval)
		return exitUsage
	}
	s := host.NewSampler(host.Options{Interval: *interval})
	tty := isTerminal(stdout)
	print := func() {
		o := s.Overview(1)
		if *asJSON {
			b, _ := json.Marshal(o)
			fmt.Fprintf(stdout, "%s\n", b)
			return
		}
		if *watch && tty {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J")
		}
		writeOverview(stdout, o)
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for i := 0; ; i++ {
		s.Tick(time.Now())
		if i >= 2 {
			print()
			if !*watch {
				return exitOK
			}
			if !tty {
				fmt.Fprintln(stdout)
			}
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
	}
}

// clean makes a name printable: process names and kernel messages may
// hold terminal escapes.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func figure(v host.Num, units string) string {
	if !v.Known() {
		return "–"
	}
	f := float64(v)
	var n string
	switch {
	case f == float64(int64(f)) || f >= 100:
		n = fmt.Sprintf("%.0f", f)
	case f >= 10:
		n = fmt.Sprintf("%.1f", f)
	default:
		n = fmt.Sprintf("%.2f", f)
	}
	switch {
	case strings.HasPrefix(units, "%"):
		return n + "%"
	case units == "":
		return n
	}
	return n + " " + units
}

func writeOverview(w io.Writer, o host.Overview) {
	when := time.Unix(int64(o.Time), 0).Format("2006-01-02 15:04:05")
	fmt.Fprintf(w, "scorch overview  %s  %d CPUs  load %s %s %s  up %s  (sampler %s of a CPU)\n\n", when, o.CPUs,
		figure(o.Load[0], ""), figure(o.Load[1], ""), figure(o.Load[2], ""),
		(time.Duration(o.Uptime) * time.Second).Round(time.Minute), figure(o.Cost, "%"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tSTATUS\tUTIL\tSAT\tERR\tRULE")
	short := func(u string) string {
		if strings.HasPrefix(u, "%") {
			return "%"
		}
		return ""
	}
	var legend []string
	for _, r := range o.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(r.Resource), r.Status,
			figure(r.Utilization, short(r.Units.Utilization)), figure(r.Saturation, short(r.Units.Saturation)),
			figure(r.Errors, short(r.Units.Errors)), clean(r.Rule))
		u := r.Units
		legend = append(legend, fmt.Sprintf("  %-10s util %s · sat %s · err %s", clean(r.Resource), orNone(u.Utilization), orNone(u.Saturation), orNone(u.Errors)))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nunits\n%s\n", strings.Join(legend, "\n"))
	if len(o.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings (each with the capture that explains it)")
		for _, f := range o.Findings {
			fmt.Fprintf(w, "  %-8s %s: %s\n           %s\n", f.Status, clean(f.Resource), clean(f.Message), recordCommand(f.Drill))
		}
	}
	lists := []struct {
		title string
		key   string
		list  []host.Proc
	}{
		{"top CPU", "cpu", o.Top.CPU}, {"top run-queue wait", "runqueue", o.Top.Runqueue},
		{"top I/O", "io", o.Top.IO}, {"blocked (D state)", "blocked", o.Top.Blocked},
	}
	for _, l := range lists {
		if len(l.list) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s)\n", l.title, host.TopUnits[l.key])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for i, p := range l.list {
			if i == 5 {
				break
			}
			v := figure(p.Value, "")
			if l.key == "io" {
				v = humanBytes(float64(p.Value)) + "/s"
			}
			fmt.Fprintf(tw, "  %d\t%s\t %s\n", p.PID, v, clean(p.Comm))
		}
		tw.Flush()
	}
	if len(o.KernelErrors) > 0 {
		fmt.Fprintln(w, "\nkernel errors and warnings (newest first)")
		for i, k := range o.KernelErrors {
			if i == 5 {
				break
			}
			fmt.Fprintf(w, "  %s %-7s %s\n", time.Unix(int64(k.Time), 0).Format("01-02 15:04:05"), k.Level, clean(k.Message))
		}
	}
	if len(o.Missing) > 0 {
		fmt.Fprintln(w, "\nnot measured on this host")
		for _, m := range o.Missing {
			fmt.Fprintf(w, "  %s\n", clean(m))
		}
	}
}

func orNone(u string) string {
	if u == "" {
		return "not measured"
	}
	return u
}

func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// recordCommand is the drill as a command line (the same capture as
// POST /api/captures with the drill's body).
func recordCommand(d host.Drill) string {
	cmd := "scorch record --type " + d.Type
	if d.PID != 0 {
		cmd += fmt.Sprintf(" --pid %d", d.PID)
	}
	if d.State != "" && d.State != "all" {
		cmd += " --state " + d.State
	}
	if d.Event != "" {
		cmd += " --event " + d.Event
	}
	return cmd + " --duration " + d.Duration + " -o drill.svg --format svg"
}

// Registered here so that main.go's table needs no edit for it.
