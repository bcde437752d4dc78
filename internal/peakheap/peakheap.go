// Package peakheap writes a Go heap profile at the process's peak heap:
// a profile taken at the end shows what is left, not what made the peak
// resident set. scorch record takes one when SCORCH_PEAK_HEAPPROFILE
// names a file (profile the profiler: go tool pprof -sample_index=inuse_space).
package peakheap

import (
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// Env is the environment variable naming the profile's file.
const Env = "SCORCH_PEAK_HEAPPROFILE"

// FromEnv starts Watch when Env is set; stop writes the last profile.
func FromEnv() (stop func()) {
	if p := os.Getenv(Env); p != "" {
		return Watch(p, 50*time.Millisecond)
	}
	return func() {}
}

// Watch checks the heap in use every interval and rewrites the profile at
// path whenever it is above its highest so far (by an eighth, so that a
// slowly growing heap does not rewrite it on every check).
func Watch(path string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var high uint64
		var ms runtime.MemStats
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > high+high/8 {
				high = ms.HeapInuse
				write(path)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func write(path string) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil && cerr == nil {
		os.Rename(path+".tmp", path)
	}
}
