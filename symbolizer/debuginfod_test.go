package symbolizer

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestDebuginfodClient(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/buildid/abcd/debuginfo" {
			w.Write([]byte("DEBUG"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	// A port nobody listens on: the client must give up on it quickly and
	// not ask it again for the next build ID.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	dir := t.TempDir()
	d := newDebuginfod([]string{dead, srv.URL}, dir, discardLogger())
	p, err := d.fetch("abcd")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "DEBUG" || p != filepath.Join(dir, "abcd", "debuginfo") {
		t.Errorf("fetched %q to %s", b, p)
	}
	if _, err := d.fetch("abcd"); err != nil || hits.Load() != 1 {
		t.Errorf("second fetch not from the disk cache: %v, %d requests", err, hits.Load())
	}
	if _, err := d.fetch("ef01"); err == nil {
		t.Error("missing build id fetched")
	}
	if _, err := d.fetch("ef01"); err == nil || hits.Load() != 2 {
		t.Errorf("miss not cached: %d requests", hits.Load())
	}
	d.mu.Lock()
	_, down := d.down[dead]
	d.mu.Unlock()
	if !down {
		t.Error("dead server not remembered")
	}
	for _, bad := range []string{"../etc", "ABCD", "", "x"} {
		if _, err := d.fetch(bad); err == nil {
			t.Errorf("build id %q accepted", bad)
		}
	}
}
