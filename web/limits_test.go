package web_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/web"
)

func gzipOf(unit []byte, total int) []byte {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	big := bytes.Repeat(unit, max(1, (1<<20)/len(unit)))
	for n := 0; n < total; n += len(big) {
		zw.Write(big)
	}
	zw.Close()
	return z.Bytes()
}

// Imports are bounded by --max-upload after decompression too: a small
// gzip that inflates past it is 413, and the server's list is unchanged.
func TestImportBombs(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxUpload = 8 << 20 })
	tests := []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"gzip of 256 MiB of zeros", gzipOf([]byte{0}, 256<<20), 400, "unknown input format"},
		{"gzipped folded of 256 MiB", gzipOf([]byte("app;main;work 1\n"), 256<<20), 413, "decompressed input is larger than the limit of 8 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.body) > 8<<20 {
				t.Fatalf("fixture of %d bytes is not under the upload limit", len(tt.body))
			}
			resp, b := e.do("POST", "/api/imports", bytes.NewReader(tt.body), "Content-Type", "application/octet-stream")
			if resp.StatusCode != tt.code || !strings.Contains(errorMessage(t, b), tt.want) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, b, tt.code, tt.want)
			}
		})
	}
	if _, b := e.get("/api/captures"); string(bytes.TrimSpace(b)) != "[]" {
		t.Errorf("refused imports are listed: %s", b)
	}
}

func metricValue(t *testing.T, e *env, name string) int {
	t.Helper()
	_, b := e.get("/metrics")
	m := regexp.MustCompile(`(?m)^` + name + ` (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitMetric waits up to 10 s for a gauge of /metrics to reach want.
func waitMetric(t *testing.T, e *env, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, e, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d (now %d)", name, want, metricValue(t, e, name))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postImportStream posts body as a folded import of the given length (-1:
// unknown, sent chunked) and returns the status, 0 when the request failed.
func postImportStream(e *env, body io.Reader, size int64) int {
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/imports", body)
	req.Header.Set("Content-Type", "text/plain")
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// An import whose size is not known decodes alone, 16 more wait, and only
// the one after those is refused with 429 and Retry-After.
func TestImportQueue(t *testing.T) {
	e := newEnv(t, nil)
	var writers []*io.PipeWriter
	done := make(chan int, 32)
	start := func() {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		go func() { done <- postImportStream(e, pr, -1) }()
	}
	waitFor := func(name string, want int) { t.Helper(); waitMetric(t, e, name, want) }
	// Slow uploads: each sends a line and then nothing until released.
	for i := range 17 {
		start()
		fmt.Fprintf(writers[i], "app;main;f%d 1\n", i)
		if i < 1 {
			waitFor("scorch_imports_running", i+1)
		} else {
			waitFor("scorch_imports_waiting", i)
		}
	}
	select {
	case code := <-done:
		t.Fatalf("an import within the queue ended early with %d", code)
	default:
	}
	resp, b := e.do("POST", "/api/imports", strings.NewReader("app;main 1\n"), "Content-Type", "text/plain")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("18th import: %d %s (Retry-After %q), want 429 with Retry-After", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if msg := errorMessage(t, b); !strings.Contains(msg, "16 waiting") {
		t.Errorf("429 message %q does not say how many wait", msg)
	}
	for _, w := range writers {
		w.Close()
	}
	for range 17 {
		if code := <-done; code != http.StatusCreated {
			t.Errorf("a queued import ended with %d, want 201", code)
		}
	}
	if n := metricValue(t, e, "scorch_imports_waiting"); n != 0 {
		t.Errorf("%d imports still waiting", n)
	}
}

// The import limit counts what imports may cost: two small uploads that
// say their size decode at once, while one that does not say it (or is
// gzipped: it may inflate to --max-upload) waits until it can run alone.
func TestImportBudget(t *testing.T) {
	e := newEnv(t, nil)
	done := make(chan int, 4)
	var writers []*io.PipeWriter
	post := func(body string, size int64, gz bool) {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		go func() { done <- postImportStream(e, pr, size) }()
		if gz {
			zw := gzip.NewWriter(pw)
			io.WriteString(zw, body)
			zw.Flush() // the header and the first line; the rest waits
			return
		}
		io.WriteString(pw, body)
	}
	waitFor := func(name string, want int) { t.Helper(); waitMetric(t, e, name, want) }
	line := "app;main;f 1\n"
	post(line, int64(len(line))+4096, false)
	post(line, int64(len(line))+4096, false)
	waitFor("scorch_imports_running", 2)
	post(line, 4096, true) // gzipped: its size says nothing of what it inflates to
	waitFor("scorch_imports_waiting", 1)
	post(line, -1, false) // chunked: its size is not known
	waitFor("scorch_imports_waiting", 2)
	if n := metricValue(t, e, "scorch_imports_running"); n != 2 {
		t.Errorf("%d imports running, want the 2 small ones", n)
	}
	for _, w := range writers {
		w.CloseWithError(io.ErrUnexpectedEOF)
	}
	for range 4 {
		<-done
	}
	waitFor("scorch_imports_running", 0)
	waitFor("scorch_imports_waiting", 0)
}

// The cross-site rule by header, as curl, go tool pprof and browsers send
// them (the Chromium test sends the real ones).
func TestCrossSiteGETHeaders(t *testing.T) {
	e := newEnv(t, nil)
	id := e.capture(`{"type":"cpu","duration":"0.2s"}`).ID
	host := strings.TrimPrefix(e.ts.URL, "http://")
	start := "/api/flamegraph.svg?type=cpu&seconds=0.1"
	graph := "/api/captures/" + id + "/flamegraph.svg"
	tests := []struct {
		name string
		path string
		hdr  []string
		code int
	}{
		{"curl", start, nil, 200},
		{"go tool pprof", "/debug/pprof/profile?seconds=0.1", []string{"User-Agent", "Go-http-client/1.1"}, 200},
		{"typed URL", start, []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, 200},
		{"own page", start, []string{"Sec-Fetch-Site", "same-origin", "Referer", "http://" + host + "/captures/x"}, 200},
		{"cross-site img", start, []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}, 403},
		{"same-site img", "/debug/pprof/profile?seconds=0.1", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}, 403},
		{"cross-site link to a capture", start, []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, 403},
		{"foreign Origin", start, []string{"Origin", "http://evil.example"}, 403},
		{"null Origin", start, []string{"Origin", "null"}, 403},
		{"foreign Referer (no Sec-Fetch)", start, []string{"Referer", "http://evil.example/page"}, 403},
		{"cross-site img of a stored graph", graph, []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}, 403},
		{"cross-site link to a stored graph", graph, []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, 200},
		{"foreign Referer to a stored graph", graph, []string{"Referer", "http://evil.example/page"}, 200},
	}
	for _, tt := range tests {
		resp, b := e.do("GET", tt.path, nil, tt.hdr...)
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %d %.200s, want %d", tt.name, resp.StatusCode, b, tt.code)
		}
		if tt.code == 403 && !strings.Contains(errorMessage(t, b), "curl") {
			t.Errorf("%s: the refusal %s does not say how to fetch it instead", tt.name, b)
		}
	}
}

// Small things of issue 21: a malformed Content-Type is not read as JSON,
// HEAD answers like GET, view=inuse on a cpu capture is a 400.
func TestSmallThings(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"0.2s"}`), "Content-Type", ";;;")
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(errorMessage(t, b), "not valid") {
		t.Errorf("Content-Type ;;;: %d %s, want 415", resp.StatusCode, b)
	}
	id := e.capture(`{"type":"cpu","duration":"0.2s"}`).ID
	for _, p := range []string{"/healthz", "/api/captures", "/api/captures/" + id, "/api/captures/" + id + "/folded", "/"} {
		resp, b := e.do("HEAD", p, nil)
		if resp.StatusCode != 200 || len(b) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want 200 and no body", p, resp.StatusCode, len(b))
		}
	}
	resp, b = e.get("/api/captures/" + id + "/flamegraph.svg?view=inuse")
	if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, b), "mem captures") {
		t.Errorf("view=inuse on a cpu capture: %d %s, want 400", resp.StatusCode, b)
	}
}
