package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
	"github.com/scorch-dev/scorch/web/webtest"
)

type env struct {
	t   *testing.T
	srv *web.Server
	ts  *httptest.Server
	rec *webtest.Recorder
	dir string
}

func newEnv(t *testing.T, mod func(*web.Config)) *env {
	t.Helper()
	rec := &webtest.Recorder{Unavailable: map[string]string{"offcpu": "no sched_switch tracepoint on this fake host"}, Speed: 4}
	e := &env{t: t, rec: rec, dir: t.TempDir()}
	ts := httptest.NewUnstartedServer(nil)
	cfg := web.Config{DataDir: e.dir, Recorder: rec, Listen: ts.Listener.Addr().String()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	e.srv, e.ts = srv, ts
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	return e
}

func (e *env) do(method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(path, err)
	}
	return resp, b
}

func (e *env) get(path string) (*http.Response, []byte) { return e.do("GET", path, nil) }

// capture runs a short capture to completion and returns its record.
func (e *env) capture(body string) store.Record {
	e.t.Helper()
	resp, b := e.do("POST", "/api/captures?wait=true", strings.NewReader(body))
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("POST /api/captures?wait=true: %d %s", resp.StatusCode, b)
	}
	var rec store.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func errorMessage(t *testing.T, b []byte) string {
	t.Helper()
	var v struct{ Error string }
	if err := json.Unmarshal(b, &v); err != nil || v.Error == "" {
		t.Fatalf("want a JSON error, got %q", b)
	}
	return v.Error
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.get("/healthz")
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, b)
	}
}

func TestCapabilities(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.get("/api/capabilities")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var caps web.Capabilities
	if err := json.Unmarshal(b, &caps); err != nil {
		t.Fatal(err)
	}
	if !caps.Collectors["cpu"].Available || caps.Collectors["offcpu"].Available || caps.Collectors["offcpu"].Reason == "" {
		t.Fatalf("collectors: %+v", caps.Collectors)
	}
}

func TestCaptureLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"1s","hz":99}`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, b)
	}
	var rec store.Record
	json.Unmarshal(b, &rec)
	if loc := resp.Header.Get("Location"); loc != "/api/captures/"+rec.ID || rec.Status != "running" || rec.Type != "cpu" {
		t.Fatalf("Location %q, record %+v", loc, rec)
	}
	deadline := time.Now().Add(60 * time.Second)
	for rec.Status == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		_, b = e.get("/api/captures/" + rec.ID)
		json.Unmarshal(b, &rec)
	}
	// 10 ticks of 60 events each.
	if rec.Status != "done" || rec.Samples != 600 || rec.End == nil {
		t.Fatalf("finished record: %+v", rec)
	}
	_, b = e.get("/api/captures")
	var list []store.Record
	json.Unmarshal(b, &list)
	if len(list) != 1 || list[0].ID != rec.ID {
		t.Fatalf("list: %s", b)
	}
	resp, _ = e.do("DELETE", "/api/captures/"+rec.ID, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	for _, p := range []string{"/api/captures/" + rec.ID, "/api/captures/" + rec.ID + "/folded"} {
		if resp, _ := e.get(p); resp.StatusCode != 404 {
			t.Errorf("%s after delete: %d", p, resp.StatusCode)
		}
	}
}

func TestPostCaptureBadInput(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxDuration = time.Minute; c.MaxHz = 1000 })
	tests := []struct {
		name, path, body, ctype string
		status                  int
		want                    string // in the error message
	}{
		{"no type", "/api/captures", `{"duration":"1s"}`, "", 400, "type is required"},
		{"bad type", "/api/captures", `{"type":"gpu"}`, "", 400, "allowed values are cpu, offcpu"},
		{"long duration", "/api/captures", `{"type":"cpu","duration":"2h"}`, "", 400, "over the limit of 1m0s"},
		{"bad duration", "/api/captures", `{"type":"cpu","duration":"soon"}`, "", 400, "duration \"soon\" is not valid"},
		{"negative duration", "/api/captures", `{"type":"cpu","duration":"-1s"}`, "", 400, "negative"},
		{"hz over range", "/api/captures", `{"type":"cpu","hz":20000}`, "", 400, "hz 20000 is out of range"},
		{"hz over server limit", "/api/captures", `{"type":"cpu","hz":2000}`, "", 400, "allowed 1..1000"},
		{"hz wrong type", "/api/captures", `{"type":"cpu","hz":"fast"}`, "", 400, "field hz"},
		{"unknown field", "/api/captures", `{"type":"cpu","secs":3}`, "", 400, "unknown field \"secs\""},
		{"command", "/api/captures", `{"type":"cpu","command":["ls"]}`, "", 400, "unknown field \"command\""},
		{"missing pid", "/api/captures", `{"type":"cpu","pid":999999999}`, "", 400, "pid 999999999 does not exist"},
		{"bad pid", "/api/captures", `{"type":"cpu","pid":"x1"}`, "", 400, "pid must be a positive number"},
		{"two targets", "/api/captures", `{"type":"cpu","pid":1,"comm":"init"}`, "", 400, "choose one target"},
		{"bad unwind", "/api/captures", `{"type":"cpu","unwind":"magic"}`, "", 400, "allowed values are fp, auto, dwarf"},
		{"bad state", "/api/captures", `{"type":"offwake","state":"R"}`, "", 400, "allowed values are all, S, D"},
		{"not json", "/api/captures", `type=cpu{`, "", 400, "not a JSON object"},
		{"bad wait", "/api/captures?wait=maybe", `{"type":"cpu"}`, "", 400, "wait \"maybe\""},
		{"content type", "/api/captures", `{"type":"cpu"}`, "text/csv", 415, "application/json"},
		{"too large", "/api/captures", `{"type":"cpu","comm":"` + strings.Repeat("a", 2<<20) + `"}`, "", 413, "over the limit"},
		{"unavailable", "/api/captures", `{"type":"offcpu"}`, "", 503, "no sched_switch tracepoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ctype
			if ct == "" {
				ct = "application/json"
			}
			resp, b := e.do("POST", tt.path, strings.NewReader(tt.body), "Content-Type", ct)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if msg := errorMessage(t, b); !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
	if n := e.rec.Started(); n != 0 {
		t.Fatalf("%d captures started from bad input", n)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxConcurrent = 1 })
	e.rec.Speed = 1
	resp, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"30s"}`))
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var rec store.Record
	json.Unmarshal(b, &rec)
	resp, b = e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"1s"}`))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(errorMessage(t, b), "limit of concurrent captures is 1") {
		t.Fatalf("second capture: %d %s", resp.StatusCode, b)
	}
	// A running capture cannot be deleted, but it can be stopped early and
	// keeps what it collected.
	if resp, b := e.do("DELETE", "/api/captures/"+rec.ID, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("DELETE running: %d %s", resp.StatusCode, b)
	}
	time.Sleep(300 * time.Millisecond)
	if resp, b := e.do("POST", "/api/captures/"+rec.ID+"/stop", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("stop: %d %s", resp.StatusCode, b)
	}
	rec = waitDone(t, e, rec.ID)
	if rec.Status != "done" || rec.Samples == 0 || rec.Samples >= 300*60 {
		t.Fatalf("stopped capture: %+v", rec)
	}
	if e.rec.Cancelled() != 1 {
		t.Fatalf("recorder saw %d cancellations, want 1", e.rec.Cancelled())
	}
}

func waitDone(t *testing.T, e *env, id string) store.Record {
	t.Helper()
	var rec store.Record
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, b := e.get("/api/captures/" + id)
		json.Unmarshal(b, &rec)
		if rec.Status != "running" {
			return rec
		}
	}
	t.Fatalf("capture %s still running", id)
	return rec
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, nil)
	ids := []string{"20260101-000000-00000000", "..%2F..%2Fetc", "x", "20260101-000000-0000000g"}
	subs := []string{"", "/flamegraph.svg", "/folded", "/profile.pb.gz", "/speedscope.json", "/capture", "/events"}
	for _, id := range ids {
		for _, sub := range subs {
			resp, b := e.get("/api/captures/" + id + sub)
			if resp.StatusCode != 404 || !strings.Contains(errorMessage(t, b), "not found") {
				t.Errorf("GET %s%s: %d %s", id, sub, resp.StatusCode, b)
			}
		}
		if resp, _ := e.do("DELETE", "/api/captures/"+id, nil); resp.StatusCode != 404 {
			t.Errorf("DELETE %s: %d", id, resp.StatusCode)
		}
	}
	if resp, _ := e.get("/captures/20260101-000000-00000000"); resp.StatusCode != 404 {
		t.Errorf("capture page of unknown id: %d", resp.StatusCode)
	}
	if resp, b := e.get("/nope"); resp.StatusCode != 404 || !strings.Contains(errorMessage(t, b), "no route") {
		t.Errorf("unknown route: %d %s", resp.StatusCode, b)
	}
}

// foldedMap reads folded output into stack -> value.
func foldedMap(t *testing.T, b []byte) map[string]int64 {
	t.Helper()
	m := make(map[string]int64)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad folded line %q", line)
		}
		var v int64
		fmt.Sscan(line[i+1:], &v)
		m[line[:i]] += v
	}
	return m
}

func TestRenderedRoutes(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type":"cpu","duration":"1s"}`)
	base := "/api/captures/" + rec.ID

	resp, b := e.get(base + "/folded")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("folded: %d %s", resp.StatusCode, b)
	}
	m := foldedMap(t, b)
	if m["app;main;alpha;beta"] != 300 || m["app;main;alpha;gamma"] != 100 || m["other;run;delta"] != 200 {
		t.Fatalf("folded: %v", m)
	}
	// Filters: one process, one time range.
	_, b = e.get(base + "/folded?pid=200")
	if m := foldedMap(t, b); len(m) != 1 || m["other;run;delta"] != 200 {
		t.Fatalf("folded?pid=200: %v", m)
	}
	_, b = e.get(base + "/folded?comm=app&from=0&to=0.5")
	if m := foldedMap(t, b); len(m) != 2 || m["app;main;alpha;beta"] != 150 {
		t.Fatalf("folded?comm=app&to=0.5: %v", m)
	}

	resp, b = e.get(base + "/flamegraph.svg?s=beta")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("svg: %d %s", resp.StatusCode, b)
	}
	for _, name := range []string{"beta", "gamma", "delta", "alpha"} {
		if !bytes.Contains(b, []byte(">"+name+"<")) && !bytes.Contains(b, []byte(name+" (")) {
			t.Errorf("svg lacks frame %s", name)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([0-9a-f]+)'`).FindStringSubmatch(csp)
	if nonce == nil || !bytes.Contains(b, []byte(`<script nonce="`+nonce[1]+`"`)) || strings.Contains(csp, "unsafe") {
		t.Fatalf("svg CSP %q does not match its script", csp)
	}
	// The cached answer is the same rendering under a nonce of its own,
	// which its CSP names (a nonce an attacker saw once is no use later).
	resp2, b2 := e.get(base + "/flamegraph.svg?s=beta")
	csp2 := resp2.Header.Get("Content-Security-Policy")
	nonce2 := regexp.MustCompile(`script-src 'nonce-([0-9a-f]+)'`).FindStringSubmatch(csp2)
	if nonce2 == nil || nonce2[1] == nonce[1] || csp2 != strings.ReplaceAll(csp, nonce[1], nonce2[1]) {
		t.Fatalf("cached svg reuses its nonce or lacks one: CSP %q then %q", csp, csp2)
	}
	if bytes.Contains(b2, []byte(nonce[1])) || !bytes.Equal(bytes.ReplaceAll(b2, []byte(nonce2[1]), []byte(nonce[1])), b) {
		t.Fatalf("cached svg is not the first rendering under the new nonce %s", nonce2[1])
	}
	for _, attr := range []string{`<script nonce="`, `<style nonce="`} {
		if !bytes.Contains(b2, []byte(attr+nonce2[1]+`"`)) {
			t.Errorf("cached svg lacks %s%s", attr, nonce2[1])
		}
	}
	if resp3, _ := e.get(base + "/flamegraph.svg?s=gamma"); resp3.Header.Get("Content-Security-Policy") == csp2 {
		t.Fatalf("two renderings share a nonce")
	}
	// Clients that do not accept gzip get the plain SVG, under a nonce of
	// their own too.
	req, _ := http.NewRequest("GET", e.ts.URL+base+"/flamegraph.svg?s=beta", nil)
	req.Header.Set("Accept-Encoding", "identity")
	plain, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	nonce4 := regexp.MustCompile(`script-src 'nonce-([0-9a-f]+)'`).FindStringSubmatch(plain.Header.Get("Content-Security-Policy"))
	if plain.Header.Get("Content-Encoding") != "" || nonce4 == nil || nonce4[1] == nonce2[1] || !bytes.Equal(bytes.ReplaceAll(pb, []byte(nonce4[1]), []byte(nonce[1])), b) {
		t.Fatalf("identity answer: encoding %q, CSP %q, %d bytes, want %d", plain.Header.Get("Content-Encoding"), plain.Header.Get("Content-Security-Policy"), len(pb), len(b))
	}

	resp, b = e.get(base + "/profile.pb.gz")
	if resp.StatusCode != 200 {
		t.Fatalf("pprof: %d %s", resp.StatusCode, b)
	}
	prof, err := profile.ParseData(b)
	if err != nil {
		t.Fatalf("pprof does not parse: %v", err)
	}
	var total int64
	for _, s := range prof.Sample {
		total += s.Value[0]
	}
	if total != 600 {
		t.Fatalf("pprof total %d, want 600", total)
	}

	resp, b = e.get(base + "/speedscope.json")
	var ss map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(b, &ss) != nil || ss["$schema"] == nil {
		t.Fatalf("speedscope: %d %.200s", resp.StatusCode, b)
	}

	resp, b = e.get(base + "/capture")
	if resp.StatusCode != 200 {
		t.Fatalf("capture file: %d", resp.StatusCode)
	}
	c, err := capture.Read(bytes.NewReader(b))
	if err != nil || len(c.Events) != 600 {
		t.Fatalf("capture file: %v", err)
	}

	// The metrics count the cache hit and the capture.
	_, b = e.get("/metrics")
	for _, want := range []string{"scorch_render_cache_hits_total 2", `scorch_captures_total{status="done",type="cpu"} 1`, `scorch_capture_events_total{type="cpu"} 600`, "scorch_render_seconds_bucket"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRenderedBadQuery(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type":"cpu","duration":"0.5s"}`)
	base := "/api/captures/" + rec.ID
	tests := []struct{ path, want string }{
		{"/flamegraph.svg?idle=maybe", "allowed values are include, exclude"},
		{"/flamegraph.svg?layout=sideways", "layout \"sideways\""},
		{"/flamegraph.svg?sort=random", "sort \"random\""},
		{"/flamegraph.svg?minwidth=wide", "minwidth"},
		{"/flamegraph.svg?reverse=perhaps", "reverse"},
		{"/flamegraph.svg?colour=red", "unknown parameter \"colour\""},
		{"/folded?pid=abc", "pid \"abc\" is not valid"},
		{"/folded?from=-1", "from \"-1\""},
		{"/folded?from=2&to=1", "must be greater than from"},
		{"/profile.pb.gz?from=100", "outside the capture"},
		{"/speedscope.json?view=huge", "view \"huge\""},
	}
	for _, tt := range tests {
		resp, b := e.get(base + tt.path)
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d: %s", tt.path, resp.StatusCode, b)
			continue
		}
		if msg := errorMessage(t, b); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: error %q does not contain %q", tt.path, msg, tt.want)
		}
	}
}

func TestImport(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxUpload = 64 << 10 })
	folded := "app;main;work 70\napp;main;idle 30\n<img src=x>;evil\"name 5\n"
	resp, b := e.do("POST", "/api/imports", strings.NewReader(folded), "Content-Type", "text/plain")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("raw import: %d %s", resp.StatusCode, b)
	}
	var rec store.Record
	json.Unmarshal(b, &rec)
	if rec.Status != "done" || rec.Samples == 0 || resp.Header.Get("Location") != "/api/captures/"+rec.ID {
		t.Fatalf("import record: %s", b)
	}
	_, out := e.get("/api/captures/" + rec.ID + "/folded")
	if m := foldedMap(t, out); m["app;main;work"] != 70 || m["app;main;idle"] != 30 {
		t.Fatalf("imported folded: %v", m)
	}
	// The hostile process name is escaped on every HTML page and the SVG.
	for _, p := range []string{"/", "/captures/" + rec.ID, "/api/captures/" + rec.ID + "/flamegraph.svg"} {
		_, page := e.get(p)
		if bytes.Contains(page, []byte("<img src=x>")) {
			t.Errorf("%s contains an unescaped name", p)
		}
	}

	// multipart with the field "file"
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "x.folded")
	fw.Write([]byte("svc;handle;parse 9\n"))
	mw.Close()
	resp, b = e.do("POST", "/api/imports", &body, "Content-Type", mw.FormDataContentType())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("multipart import: %d %s", resp.StatusCode, b)
	}

	tests := []struct {
		name, body, ctype string
		status            int
		want              string
	}{
		{"garbage", "\x00\x01\x02 not a profile", "application/octet-stream", 400, "import failed"},
		{"empty", "", "application/octet-stream", 400, "import failed"},
		{"too large", strings.Repeat("a;b 1\n", 20000), "text/plain", 413, "over the limit of 64 KiB"},
		{"no file field", "--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--x--\r\n", "multipart/form-data; boundary=x", 400, "field named file"},
	}
	for _, tt := range tests {
		resp, b := e.do("POST", "/api/imports", strings.NewReader(tt.body), "Content-Type", tt.ctype)
		if resp.StatusCode != tt.status || !strings.Contains(errorMessage(t, b), tt.want) {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, b)
		}
	}

	// Without a Content-Length (chunked), the limit holds for raw and
	// multipart bodies alike.
	body.Reset()
	mw = multipart.NewWriter(&body)
	fw, _ = mw.CreateFormFile("file", "big.folded")
	fw.Write([]byte(strings.Repeat("a;b 1\n", 20000)))
	mw.Close()
	for _, tt := range []struct{ name, body, ctype string }{
		{"raw", strings.Repeat("a;b 1\n", 20000), "text/plain"},
		{"multipart", body.String(), mw.FormDataContentType()},
	} {
		chunked := io.MultiReader(strings.NewReader(tt.body)) // no length known
		resp, b := e.do("POST", "/api/imports", chunked, "Content-Type", tt.ctype)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(errorMessage(t, b), "over the limit of 64 KiB") {
			t.Errorf("chunked %s too large: %d %s", tt.name, resp.StatusCode, b)
		}
	}
}

func TestBlockingRoutes(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.get("/api/flamegraph.svg?type=cpu&seconds=0.5&title=now&width=800")
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("beta")) || resp.Header.Get("X-Scorch-Capture") == "" {
		t.Fatalf("blocking svg: %d %.300s", resp.StatusCode, b)
	}
	if !bytes.Contains(b, []byte(`<svg version="1.1" width="800"`)) {
		t.Errorf("blocking svg ignores width: %.300s", b)
	}
	resp, b = e.get("/debug/pprof/profile?seconds=0.5")
	if resp.StatusCode != 200 {
		t.Fatalf("debug pprof: %d %s", resp.StatusCode, b)
	}
	if _, err := profile.ParseData(b); err != nil {
		t.Fatalf("debug pprof does not parse: %v", err)
	}
	// Both captures are stored like any other.
	_, b = e.get("/api/captures")
	var list []store.Record
	json.Unmarshal(b, &list)
	if len(list) != 2 || list[0].Status != "done" || list[1].Status != "done" {
		t.Fatalf("stored: %s", b)
	}

	bad := []struct{ path, want string }{
		{"/api/flamegraph.svg?seconds=1", "type is required"},
		{"/api/flamegraph.svg?type=cpu&seconds=0", "seconds \"0\" is out of range"},
		{"/api/flamegraph.svg?type=cpu&seconds=301", "up to 300"},
		{"/api/flamegraph.svg?type=cpu&seconds=abc", "seconds \"abc\""},
		{"/api/flamegraph.svg?type=cpu&layout=round", "layout \"round\""},
		{"/api/flamegraph.svg?type=cpu&hz=0x10", "hz \"0x10\""},
		{"/debug/pprof/profile?seconds=-3", "seconds \"-3\""},
		{"/debug/pprof/profile?type=offcpu", "records cpu"},
		{"/debug/pprof/profile?seconds=1&pid=999999999", "pid 999999999 does not exist"},
	}
	for _, tt := range bad {
		resp, b := e.get(tt.path)
		if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, b), tt.want) {
			t.Errorf("%s: %d %s", tt.path, resp.StatusCode, b)
		}
	}
	if resp, b := e.get("/api/flamegraph.svg?type=offcpu&seconds=1"); resp.StatusCode != 503 {
		t.Errorf("unavailable collector: %d %s", resp.StatusCode, b)
	}
}

func TestBlockingClientGone(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.Speed = 1
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/debug/pprof/profile?seconds=60", nil)
	go func() {
		for e.rec.Started() == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request was not cancelled")
	}
	for deadline := time.Now().Add(30 * time.Second); e.rec.Cancelled() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the capture kept running after its client went away")
		}
	}
}

func TestServerSentProgress(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.Speed = 1
	_, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"1s"}`))
	var rec store.Record
	json.Unmarshal(b, &rec)
	resp, err := http.Get(e.ts.URL + "/api/captures/" + rec.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	all, _ := io.ReadAll(resp.Body)
	s := string(all)
	if !strings.Contains(s, "event: progress") || !strings.Contains(s, "event: done") || !strings.Contains(s, `"status":"done"`) {
		t.Fatalf("event stream: %s", s)
	}
}

func TestSecurity(t *testing.T) {
	const token = "0123456789abcdef0123"
	e := newEnv(t, func(c *web.Config) { c.Token = token })
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	get := func(path string, mod ...func(*http.Request)) *http.Response {
		req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		for _, m := range mod {
			m(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/healthz"); r.StatusCode != 200 {
		t.Errorf("healthz without token: %d", r.StatusCode)
	}
	for _, p := range []string{"/", "/api/captures", "/metrics", "/api/capabilities", "/debug/pprof/profile?seconds=1"} {
		if r := get(p); r.StatusCode != 401 {
			t.Errorf("%s without token: %d", p, r.StatusCode)
		}
	}
	if r := get("/api/captures", func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") }); r.StatusCode != 401 {
		t.Errorf("wrong bearer: %d", r.StatusCode)
	}
	if r := get("/api/captures?token=wrong"); r.StatusCode != 401 {
		t.Errorf("wrong ?token: %d", r.StatusCode)
	}
	if r := get("/api/captures", auth); r.StatusCode != 200 {
		t.Errorf("bearer: %d", r.StatusCode)
	}
	r := get("/?token=" + token)
	if r.StatusCode != 200 {
		t.Fatalf("?token=: %d", r.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "scorch_token" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("?token= sets no strict HttpOnly cookie: %v", r.Cookies())
	}
	if r := get("/assets/app.js", func(r *http.Request) { r.AddCookie(cookie) }); r.StatusCode != 200 {
		t.Errorf("asset with the cookie: %d", r.StatusCode)
	}
	// Pages: CSP without inline script, nosniff, no CORS.
	r = get("/", auth, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") })
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("page CSP %q", csp)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("headers: %v", r.Header)
	}
	// DNS rebinding: a foreign Host is refused.
	if r := get("/", auth, func(r *http.Request) { r.Host = "evil.example:80" }); r.StatusCode != 403 {
		t.Errorf("foreign Host: %d", r.StatusCode)
	}
	if r := get("/api/captures", auth, func(r *http.Request) { r.Host = "localhost:1234" }); r.StatusCode != 200 {
		t.Errorf("localhost Host: %d", r.StatusCode)
	}
	// Cross-site state changes are refused even with the cookie.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/captures", strings.NewReader(`{"type":"cpu"}`))
	req.AddCookie(cookie)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(errorMessage(t, b), "cross-origin") {
		t.Errorf("cross-origin POST: %d %s", resp.StatusCode, b)
	}
	if e.rec.Started() != 0 {
		t.Fatal("a refused request started a capture")
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type":"cpu","duration":"0.5s"}`)
	resp, b := e.get("/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("home: %d", resp.StatusCode)
	}
	for _, want := range []string{`href="/captures/` + rec.ID + `"`, `id="new-capture"`, "no sched_switch tracepoint", "6.0.0-fake"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("home lacks %q", want)
		}
	}
	if bytes.Contains(b, []byte("<script>")) {
		t.Error("home has an inline script")
	}
	_, b = e.get("/captures/" + rec.ID + "?pid=100&layout=icicle")
	for _, want := range []string{
		`href="/api/captures/` + rec.ID + `/flamegraph.svg?layout=icicle&amp;pid=100"`, `<canvas data-view="flamegraph"`,
		`href="/api/captures/` + rec.ID + `/profile.pb.gz?pid=100"`,
		`id="heatmap"`, `id="filters"`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("capture page lacks %q", want)
		}
	}
	_, b = e.get("/captures/" + rec.ID + "?idle=sometimes")
	if !bytes.Contains(b, []byte(`id="filter-error"`)) {
		t.Error("a bad filter is not reported on the page")
	}
	for _, p := range []string{"/compare?base=" + rec.ID + "&compare=" + rec.ID, "/import", "/assets/style.css", "/assets/app.js"} {
		if resp, _ := e.get(p); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// The form posts url-encoded fields without JavaScript too.
	form := url.Values{"type": {"cpu"}, "duration": {"0.3s"}, "hz": {"49"}, "target": {"host"}}
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/captures", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/captures/") {
		t.Fatalf("form POST: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestShutdownSavesRunning(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.Speed = 1
	_, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu","duration":"60s"}`))
	var rec store.Record
	json.Unmarshal(b, &rec)
	time.Sleep(400 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(e.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(rec.ID)
	if err != nil || got.Status != "done" || got.Samples == 0 {
		t.Fatalf("after shutdown: %+v %v", got, err)
	}
	if _, err := st.Load(rec.ID); err != nil {
		t.Fatal(err)
	}
	if resp, b := e.do("POST", "/api/captures", strings.NewReader(`{"type":"cpu"}`)); resp.StatusCode != 503 {
		t.Fatalf("capture after shutdown: %d %s", resp.StatusCode, b)
	}
}

func TestRetention(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Keep = 2 })
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, e.capture(`{"type":"cpu","duration":"0.2s"}`).ID)
	}
	_, b := e.get("/api/captures")
	var list []store.Record
	json.Unmarshal(b, &list)
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("after retention: %s", b)
	}
}
