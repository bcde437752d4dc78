package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
)

// With --keep 3, four captures (and blocking SVGs and imports) finishing
// at once each answer with their own capture: retention never removes one
// a request is answering (it answered 201 with "id": "" or 500
// "capture  failed:"), and the store ends at the limit.
func TestRetentionUnderConcurrency(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Keep = 1; c.MaxConcurrent = 8 })
	type result struct {
		what string
		code int
		body string
		id   string
	}
	results := make(chan result, 32)
	var wg sync.WaitGroup
	run := func(what, method, path, ctype, body string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{what: what, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var rec store.Record
			json.Unmarshal(b, &rec)
			id := rec.ID
			if h := resp.Header.Get("X-Scorch-Capture"); h != "" {
				id = h
			}
			results <- result{what, resp.StatusCode, string(b[:min(len(b), 200)]), id}
		}()
	}
	for round := range 3 {
		for i := range 4 {
			run(fmt.Sprintf("capture %d.%d", round, i), "POST", "/api/captures?wait=true", "application/json", `{"type":"cpu","duration":"0.2s"}`)
		}
		run(fmt.Sprintf("svg %d", round), "GET", "/api/flamegraph.svg?type=cpu&seconds=0.2", "", "")
		run(fmt.Sprintf("pprof %d", round), "GET", "/debug/pprof/profile?seconds=0.2", "", "")
		run(fmt.Sprintf("import %d", round), "POST", "/api/imports", "text/plain", "app;main;work 3\n")
		wg.Wait()
	}
	close(results)
	for r := range results {
		want := http.StatusCreated
		if strings.HasPrefix(r.what, "svg") || strings.HasPrefix(r.what, "pprof") {
			want = http.StatusOK
		}
		if r.code != want {
			t.Errorf("%s: %d %s, want %d", r.what, r.code, r.body, want)
			continue
		}
		if r.id == "" && !strings.HasPrefix(r.what, "pprof") {
			t.Errorf("%s: answered without its capture's id: %s", r.what, r.body)
		}
	}
	_, b := e.get("/api/captures")
	var list []store.Record
	json.Unmarshal(b, &list)
	if len(list) != 1 {
		t.Errorf("%d captures left after retention, want 1 (--keep 1)", len(list))
	}
}
