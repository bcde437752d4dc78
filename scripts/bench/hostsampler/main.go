// Command hostsampler measures the host overview's sampler (issue 19) for
// scripts/bench-overview.sh: it samples the host every second for -window
// and prints its own CPU time and memory. With -mode vmstat it reads only
// /proc/stat, /proc/meminfo and /proc/vmstat every second, what `vmstat 1`
// reads: the baseline run beside it.
//
//	go run ./scripts/bench/hostsampler -mode sampler -window 10m
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/scorch-dev/scorch/host"
)

func main() {
	mode := flag.String("mode", "sampler", "sampler or vmstat")
	window := flag.Duration("window", 10*time.Minute, "how long to sample")
	flag.Parse()
	if *window <= 0 || (*mode != "sampler" && *mode != "vmstat") {
		fmt.Fprintln(os.Stderr, "usage: hostsampler [-mode sampler|vmstat] [-window 10m]")
		os.Exit(2)
	}
	runtime.GC()
	rss0 := status("VmRSS")
	cpu0 := cpu()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *window)
	defer cancel()
	var samples uint64
	var resources int
	switch *mode {
	case "sampler":
		s := host.NewSampler(host.Options{})
		s.Run(ctx)
		samples = s.Generation()
		o := s.Overview(15)
		resources = len(o.Resources)
		for _, r := range o.Resources {
			if n := len(r.Series.Utilization); n > 900 {
				fmt.Fprintf(os.Stderr, "%s keeps %d points of 15 minutes\n", r.Resource, n)
				os.Exit(1)
			}
		}
	case "vmstat":
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for ctx.Err() == nil {
			for _, f := range []string{"/proc/stat", "/proc/meminfo", "/proc/vmstat"} {
				os.ReadFile(f)
			}
			samples++
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	wall := time.Since(start).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("mode=%s wall=%.1f cpu=%.3f samples=%d resources=%d rss0_kib=%d rss_kib=%d hwm_kib=%d heap_inuse_kib=%d\n",
		*mode, wall, (cpu() - cpu0).Seconds(), samples, resources, rss0, status("VmRSS"), status("VmHWM"), ms.HeapInuse/1024)
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func status(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &n)
			return n
		}
	}
	return 0
}
