// Command gen writes a synthetic capture file (see package synthcapture):
//
//	go run ./internal/synthcapture/gen -o synth.scorch [-type offcpu] [-duration 60s] [-hz 999] [-cpus 2] [-threads 50]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/synthcapture"
)

func main() {
	var o synthcapture.Options
	var typ string
	out := flag.String("o", "", "capture file to write (required)")
	flag.StringVar(&typ, "type", "cpu", "cpu or offcpu")
	flag.DurationVar(&o.Duration, "duration", 0, "length (default 60s)")
	flag.IntVar(&o.Hz, "hz", 0, "samples per second per CPU (default 999)")
	flag.IntVar(&o.CPUs, "cpus", 0, "CPUs (default 2)")
	flag.IntVar(&o.Threads, "threads", 0, "threads (default 50)")
	flag.IntVar(&o.Processes, "processes", 0, "processes (default 5)")
	flag.IntVar(&o.Depth, "depth", 0, "frames below each thread's entry (default 12)")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (default 1)")
	flag.Uint64Var(&o.Lost, "lost", 0, "events counted as lost")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -o FILE [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	o.Type = capture.Type(typ)
	c, err := synthcapture.Generate(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
	if err := write(*out, c); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen: %s capture of %d events over %s in %s\n", c.Meta.Type, len(c.Events), c.Meta.Duration, *out)
}

// write writes the file under a temporary name and renames it, so that a
// failure leaves nothing half-written.
func write(path string, c *capture.Capture) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = capture.Write(bw, c)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
