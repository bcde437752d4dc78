package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
	"github.com/scorch-dev/scorch/web/webtest"
)

// serveDir runs a server over dir until the returned stop.
func serveDir(t *testing.T, dir string, rec web.Recorder) (*httptest.Server, func()) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{DataDir: dir, Recorder: rec, Listen: ts.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	return ts, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	}
}

func call(t *testing.T, ts *httptest.Server, method, path, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func listOf(t *testing.T, ts *httptest.Server) []store.Record {
	t.Helper()
	_, b := call(t, ts, "GET", "/api/captures", "", "")
	var l []store.Record
	if err := json.Unmarshal([]byte(b), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// entries lists dir but the filler.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if p != dir && filepath.Base(p) != "filler" {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestDiskFull runs the service over a small tmpfs filled to the brim: a
// capture or import that cannot be saved answers 507, leaves no partial
// file, a failed capture keeps its real error across a restart, DELETE
// removes every trace, and a failed import is not listed.
func TestDiskFull(t *testing.T) {
	testutil.RequireRoot(t) // mount
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })

	// Stacks of random names: a capture file of tens of KiB that gzip
	// cannot shrink.
	var stacks []webtest.Stack
	for i := range 300 {
		b := make([]byte, 32)
		rand.Read(b)
		stacks = append(stacks, webtest.Stack{Frames: []string{"app", hex.EncodeToString(b)}, PID: uint32(100 + i), Per100: 1})
	}
	rec := &webtest.Recorder{Stacks: stacks, Speed: 4}
	ts, stop := serveDir(t, dir, rec)

	// Fill the file system to the last byte.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	full, _ := os.Stat(filler)
	const capture = `{"type":"cpu","duration":"0.4s"}`

	// 1. Not even the record fits: 507 at once, nothing listed or left.
	code, body := call(t, ts, "POST", "/api/captures?wait=true", "application/json", capture)
	if code != http.StatusInsufficientStorage || !strings.Contains(body, "no space left") {
		t.Errorf("capture on a full disk: %d %s, want 507 naming the full disk", code, body)
	}
	code, body = call(t, ts, "GET", "/api/flamegraph.svg?type=cpu&seconds=0.2", "", "")
	if code != http.StatusInsufficientStorage {
		t.Errorf("blocking SVG on a full disk: %d %s, want 507", code, body)
	}
	if l := listOf(t, ts); len(l) != 0 {
		t.Errorf("refused captures are listed: %+v", l)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Errorf("files left behind: %v", e)
	}

	// 2. Room for the record, not for the data.
	if err := os.Truncate(filler, full.Size()-12<<10); err != nil {
		t.Fatal(err)
	}
	code, body = call(t, ts, "POST", "/api/captures?wait=true", "application/json", capture)
	if code != http.StatusInsufficientStorage || !strings.Contains(body, "no space left") {
		t.Fatalf("capture whose data does not fit: %d %s, want 507", code, body)
	}
	l := listOf(t, ts)
	if len(l) != 1 || l[0].Status != store.StatusFailed || !strings.Contains(l[0].Error, "no space left") {
		t.Fatalf("after the failed save: %+v, want one failed capture naming the full disk", l)
	}
	id := l[0].ID
	for _, e := range entries(t, dir) {
		if strings.HasSuffix(e, "capture.scorch") || strings.HasPrefix(e, ".tmp-") {
			t.Errorf("partial file left behind: %s", e)
		}
	}

	// 3. A restart keeps the real error, not "interrupted".
	stop()
	ts, stop = serveDir(t, dir, rec)
	l = listOf(t, ts)
	if len(l) != 1 || l[0].ID != id || !strings.Contains(l[0].Error, "no space left") {
		t.Errorf("after a restart: %+v, want %s failed with the disk-full error", l, id)
	}

	// 4. DELETE removes every trace, for good.
	if code, body := call(t, ts, "DELETE", "/api/captures/"+id, "", ""); code != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", code, body)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Errorf("after DELETE: %v left", e)
	}

	// 5. An import that does not fit: 507, not listed, nothing left.
	var folded strings.Builder
	for i := range 2000 {
		b := make([]byte, 16)
		rand.Read(b)
		folded.WriteString("app;" + hex.EncodeToString(b) + " 1\n")
		_ = i
	}
	code, body = call(t, ts, "POST", "/api/imports", "text/plain", folded.String())
	if code != http.StatusInsufficientStorage {
		t.Errorf("import on a full disk: %d %s, want 507", code, body)
	}
	stop()
	ts, stop = serveDir(t, dir, rec)
	defer stop()
	if l := listOf(t, ts); len(l) != 0 {
		t.Errorf("after a restart, failed captures or imports are listed: %+v", l)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Errorf("files left behind: %v", e)
	}

	// 6. With space again, captures work.
	os.Remove(filler)
	if code, body := call(t, ts, "POST", "/api/captures?wait=true", "application/json", capture); code != http.StatusCreated {
		t.Errorf("capture with space: %d %s", code, body)
	}
}
