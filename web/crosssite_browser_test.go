package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/browser"
	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
	"github.com/scorch-dev/scorch/web/webtest"
)

// seen is one request the service answered, with the headers Chromium sent.
type seen struct {
	Path, Site, Mode, Dest, Referer string
	Status                          int
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listenOn starts h on host (127.0.0.1 or localhost) at a free port.
func listenOn(t *testing.T, host string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("http://%s:%d", host, l.Addr().(*net.TCPAddr).Port)
}

// TestBrowserCrossSiteGET: pages of other sites, loaded in Chromium, embed
// the routes that start captures and renders (<img>, no-cors fetch, a
// followed link). Chromium's own Sec-Fetch-* and Referer headers must get
// them refused, while scorch's own pages, a typed URL, and a link followed
// to a stored capture's graph still work.
func TestBrowserCrossSiteGET(t *testing.T) {
	browser.Require(t)
	dir := t.TempDir()
	rec := &webtest.Recorder{Speed: 4}
	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{DataDir: dir, Listen: ts.Listener.Addr().String(), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []seen
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		srv.Handler().ServeHTTP(sw, r)
		mu.Lock()
		log = append(log, seen{r.URL.Path, r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest"), r.Header.Get("Referer"), sw.status})
		mu.Unlock()
	})
	ts.Start()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer srv.Shutdown(ctx)

	// One stored capture, made the way curl would.
	resp, err := http.Post(ts.URL+"/api/captures?wait=true", "application/json", strings.NewReader(`{"type":"cpu","duration":"0.2s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var stored store.Record
	json.NewDecoder(resp.Body).Decode(&stored)
	resp.Body.Close()
	if stored.ID == "" {
		t.Fatal("no capture to embed")
	}

	start := ts.URL + "/api/flamegraph.svg?type=cpu&seconds=0.1&hz=99"
	pprof := ts.URL + "/debug/pprof/profile?seconds=0.1"
	graph := ts.URL + "/api/captures/" + stored.ID + "/flamegraph.svg"
	evil := `<!doctype html><title>evil</title>
<img id=a src="` + start + `"><img id=b src="` + pprof + `"><img id=c src="` + graph + `">
<a id=follow href="` + graph + `">a graph</a> <a id=followstart href="` + start + `">start</a>
<script>
window.done = Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))
  .then(() => fetch("` + start + `", {mode: "no-cors"}).catch(() => {}));
</script>`
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(evil))
	})
	crossSite := listenOn(t, "localhost", page) // another site
	sameSite := listenOn(t, "127.0.0.1", page)  // same host, another port: same-site

	script := filepath.Join(dir, "crosssite.cjs")
	os.WriteFile(script, []byte(`
const { launch } = require('scorch-browser');
(async () => {
  const [scorch, cross, same, graph, start] = process.argv.slice(2);
  const { page, close } = await launch();
  const out = {};
  try {
    for (const [name, url] of [['cross', cross], ['same', same]]) {
      await page.goto(url);
      await page.evaluate(() => window.done);
      // A link the user follows to a stored graph works; one to a capture does not.
      const [r1] = await Promise.all([page.waitForNavigation(), page.click('#follow')]);
      out[name + 'Follow'] = r1 ? r1.status() : 0;
      await page.goto(url);
      const [r2] = await Promise.all([page.waitForNavigation(), page.click('#followstart')]);
      out[name + 'FollowStart'] = r2 ? r2.status() : 0;
    }
    // scorch's own page fetching the capture route: same-origin.
    await page.goto(scorch + '/');
    out.own = await page.evaluate(async (u) => (await fetch(u)).status, start);
    // A URL typed into the address bar: Sec-Fetch-Site none.
    const r3 = await page.goto(start);
    out.typed = r3.status();
  } finally {
    await close();
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
`), 0o644)
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer bcancel()
	outb, err := browser.Run(bctx, script, ts.URL, crossSite, sameSite, graph, start)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CrossFollow, CrossFollowStart, SameFollow, SameFollowStart, Own, Typed int
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	want := map[string][2]int{
		"link from another site to a stored graph":      {got.CrossFollow, 200},
		"link from another site starting a capture":     {got.CrossFollowStart, 403},
		"link from a same-site page to a stored graph":  {got.SameFollow, 200},
		"link from a same-site page starting a capture": {got.SameFollowStart, 403},
		"scorch's own page fetching a capture route":    {got.Own, 200},
		"a typed capture URL":                           {got.Typed, 200},
	}
	for what, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s: %d, want %d", what, v[0], v[1])
		}
	}
	mu.Lock()
	reqs := append([]seen(nil), log...)
	mu.Unlock()
	embedded := 0
	for _, s := range reqs {
		foreign := s.Site == "cross-site" || s.Site == "same-site"
		if !foreign || s.Mode == "navigate" {
			continue
		}
		embedded++
		if s.Status != http.StatusForbidden {
			t.Errorf("embedded %s from another site (Sec-Fetch-Site %s, mode %s, dest %s): %d, want 403", s.Path, s.Site, s.Mode, s.Dest, s.Status)
		}
	}
	// Two pages x (three images + one fetch).
	if embedded < 8 {
		t.Errorf("saw %d embedded cross-site requests, want at least 8: %+v", embedded, reqs)
	}
	// Captures: the stored one, scorch's own fetch and the typed URL only.
	lr, err := http.Get(ts.URL + "/api/captures")
	if err != nil {
		t.Fatal(err)
	}
	var list []store.Record
	json.NewDecoder(lr.Body).Decode(&list)
	lr.Body.Close()
	if n := len(list); n != 3 {
		t.Errorf("%d captures stored, want 3: other sites' pages started captures", n)
	}
}
