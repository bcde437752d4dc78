package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

// fuzzServer is a service over a temporary directory with two stored
// captures, for the fuzz targets' iterations to share.
func fuzzServer(f *testing.F) (*Server, []string) {
	s, err := New(Config{DataDir: f.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:7070", MaxConcurrent: 2, MaxBlocking: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	// Fuzzed POSTs start background captures: wait until they are saved
	// before the data folder is removed (registered after TempDir, so it
	// runs first).
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			f.Error(err)
		}
	})
	var ids []string
	for i, c := range []*capture.Capture{hmPhased(f), fuzzFolded()} {
		rec := store.Record{ID: store.NewID(time.Now().Add(time.Duration(i) * time.Second)), Type: c.Meta.Type, Start: c.Meta.Start, Params: capture.Params{Type: c.Meta.Type}}
		if err := s.store.Begin(rec); err != nil {
			f.Fatal(err)
		}
		rec.Status = store.StatusDone
		c.Meta.ID = rec.ID
		if err := s.store.Finish(rec, c); err != nil {
			f.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	return s, ids
}

func fuzzFolded() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded"})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	for i, n := range []string{"<b>&\"x", "main", "leaf"} {
		b.Add(capture.Event{Value: int64(i + 1), Stack: b.Stack([]uint32{app, b.Frame(capture.Frame{Name: n})})})
	}
	return b.Capture()
}

// serve answers one request in process.
func serve(s *Server, method, target, ctype string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1:7070"+target, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

// serverFault is a status the client's input must never cause.
func serverFault(code int) bool {
	return code >= 500 && code != http.StatusServiceUnavailable && code != http.StatusInsufficientStorage
}

// FuzzRenderedRoutes: any query string on every rendered route answers
// without a panic or a 5xx (a client's mistake is a 4xx naming it).
func FuzzRenderedRoutes(f *testing.F) {
	s, ids := fuzzServer(f)
	routes := []string{
		"/api/captures/{id}/flamegraph.svg", "/api/captures/{id}/folded", "/api/captures/{id}/profile.pb.gz",
		"/api/captures/{id}/speedscope.json", "/api/captures/{id}/heatmap.json", "/api/captures/{id}/functions.json",
		"/api/captures/{id}/tree.json", "/api/captures/{id}/summary.json", "/api/captures/{id}/sandwich.json",
		"/api/captures/{id}/threads.json", "/api/captures/{id}/stackchart.json",
		"/api/diff.svg", "/api/diff/functions.json", "/api/diff/tree.json", "/api/flamegraph.svg", "/debug/pprof/profile",
		"/captures/{id}", "/compare",
	}
	for _, q := range []string{"", "reverse=true&minwidth=0.5%25", "from=0.5&to=1.5&pid=100", "s=(a&layout=icicle&sort=size",
		"rows=0", "view=inuse", "fn=main", "t=focus:main", "width=99999999999", "type=cpu&seconds=1e-9", "title=%3Cscript%3E",
		"from=0&to=0.5&from=1&to=&bucket=0.001", "tid=100&width=1&from=0.2&to=0.2000001", "norm=threads&by=process&limit=1", "bucket=1e-300"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, "# \r\n") || strings.IndexFunc(query, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return // not a query string a client can send
		}
		for _, r := range routes {
			path := strings.ReplaceAll(r, "{id}", ids[0])
			q := query
			if strings.HasPrefix(r, "/api/diff") || r == "/compare" {
				q = "base=" + ids[0] + "&compare=" + ids[1] + "&" + query
			}
			w := serve(s, "GET", path+"?"+q, "", "")
			if serverFault(w.Code) {
				t.Fatalf("GET %s?%s: %d %.300s", path, q, w.Code, w.Body.String())
			}
		}
	})
}

// FuzzPostBodies: POST bodies of any content type to the routes that take
// them answer without a panic or a 5xx.
func FuzzPostBodies(f *testing.F) {
	s, ids := fuzzServer(f)
	for _, seed := range [][2]string{
		{"application/json", `{"type":"cpu","duration":"1ms"}`},
		{"application/x-www-form-urlencoded", "type=cpu&duration=1ms"},
		{";;;", `{"type":"cpu"}`},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\na;b 1\r\n--x--\r\n"},
		{"text/plain", "a;b 1\n"},
		{"application/octet-stream", "\x1f\x8b\x08\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, ctype, body string) {
		for _, path := range []string{"/api/captures", "/api/imports", "/api/captures/" + ids[0] + "/stop"} {
			w := serve(s, "POST", path, ctype, body)
			if serverFault(w.Code) {
				t.Fatalf("POST %s (Content-Type %q) %q: %d %.300s", path, ctype, body, w.Code, w.Body.String())
			}
		}
	})
}
