package web_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/cache"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/webtest"
)

// symRecorder is the fake recorder with a real symbolizer, as the service's
// recorder shares one across captures.
type symRecorder struct {
	*webtest.Recorder
	sym *symbolizer.Symbolizer
}

func (r symRecorder) SymbolizerCacheStats() cache.Stats { return r.sym.CacheStats() }

// /metrics shows the symbolizer's cache: what it found, what it had to
// parse, what it evicted to stay within its budget and what it holds.
func TestSymbolizerMetrics(t *testing.T) {
	sleep := testutil.RequireTool(t, "sleep")
	// A budget of one byte: each symbol table parsed evicts the previous.
	sym := symbolizer.New(symbolizer.Options{CacheBytes: 1, DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer sym.Close()
	e := newEnv(t, func(c *web.Config) { c.Recorder = symRecorder{c.Recorder.(*webtest.Recorder), sym} })

	// Symbolize the start of every executable file mapping of a process
	// (sleep, libc, the loader), twice in a row: one parse each, then a hit.
	cmd := testutil.Start(t, sleep, "30")
	time.Sleep(100 * time.Millisecond) // let the loader map libc
	starts := execMappings(t, cmd.Process.Pid)
	if len(starts) < 2 {
		t.Fatalf("sleep maps %d executable files, want at least 2", len(starts))
	}
	for _, addr := range starts {
		for range 2 {
			p, err := sym.Snapshot(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			sym.User(p, addr, false)
			p.Close()
		}
	}

	_, b := e.get("/metrics")
	st := sym.CacheStats()
	got := metricValues(b)
	for _, m := range []struct {
		name string
		want float64
		min  float64
	}{
		{"scorch_symbolizer_cache_hits_total", float64(st.Hits), float64(len(starts))},
		{"scorch_symbolizer_cache_misses_total", float64(st.Misses), float64(len(starts))},
		{"scorch_symbolizer_cache_evictions_total", float64(st.Evictions), float64(len(starts) - 1)},
		{"scorch_symbolizer_cache_bytes", float64(st.Cost), 1},
		{"scorch_symbolizer_cache_entries", float64(st.Entries), 1},
	} {
		v, ok := got[m.name]
		switch {
		case !ok:
			t.Errorf("/metrics lacks %s", m.name)
		case v != m.want || v < m.min:
			t.Errorf("%s = %v, want the symbolizer's %v (at least %v)", m.name, v, m.want, m.min)
		}
	}
}

// execMappings returns the start address of each file mapped executable in
// a process.
func execMappings(t *testing.T, pid int) []uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.Contains(f[1], "x") || !strings.HasPrefix(f[5], "/") || seen[f[5]] {
			continue
		}
		seen[f[5]] = true
		lo, _, _ := strings.Cut(f[0], "-")
		a, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// metricValues reads the unlabelled samples of a Prometheus text page.
func metricValues(page []byte) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(page), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}
