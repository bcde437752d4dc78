package web_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWorkspaceTransformTimes answers the routes the workspace asks for
// after a transform (tree.json, functions.json and summary.json at once)
// on the workspace benchmark's capture (SCORCH_BENCH_CAPTURE, made by
// scripts/bench/workspace), under the service's default memory limit, and
// logs the times, after single merges and after stacked ones: run with
// -cpuprofile to see where they go.
func TestWorkspaceTransformTimes(t *testing.T) {
	path := os.Getenv("SCORCH_BENCH_CAPTURE")
	if path == "" {
		t.Skip("SCORCH_BENCH_CAPTURE is not set")
	}
	limit := int64(512 << 20) // the service's default (cmd/scorch/serve.go)
	if os.Getenv("SCORCH_BENCH_NOLIMIT") != "" {
		limit = math.MaxInt64
	}
	if v := os.Getenv("SCORCH_BENCH_MEMLIMIT"); v != "" { // another limit, in MiB
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SCORCH_BENCH_MEMLIMIT: %v", err)
		}
		limit = n << 20
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	resp, body := e.do("POST", "/api/imports", bytes.NewReader(b), "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	var rec struct{ ID string }
	json.Unmarshal(body, &rec)
	page := func(q string) {
		var wg sync.WaitGroup
		t0, c0 := time.Now(), cpuTime()
		for _, r := range []string{"tree.json", "functions.json?limit=2000&", "summary.json"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sep := "?"
				if r[len(r)-1] == '&' {
					sep = ""
				}
				t1 := time.Now()
				resp, _ := e.get("/api/captures/" + rec.ID + "/" + r + sep + q)
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d", r, resp.StatusCode)
				}
				t.Logf("  %-28s %v", r, time.Since(t1).Round(time.Millisecond))
			}()
		}
		wg.Wait()
		// The CPU time too: on a shared machine the wall time is others'.
		t.Logf("%s: %v (process CPU %v)", q, time.Since(t0).Round(time.Millisecond), (cpuTime() - c0).Round(time.Millisecond))
	}
	e.get("/api/captures/" + rec.ID + "/folded?pid=4000000000")
	page("")
	for _, fn := range []string{"fn_3_1", "fn_4_0", "fn_2_1", "fn_5_0", "fn_3_0"} {
		page("t=merge:" + fn)
	}
	// Merges stacked from the graph's menu, as the benchmark's page does:
	// each view derived with the whole stack.
	q := ""
	for _, fn := range []string{"fn_1_0", "fn_3_2", "fn_2_0", "fn_4_1"} {
		q += "&t=merge:" + fn
		page(q[1:])
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
