package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// A rendering or load that panics must not leave its key pending: the
// next request for it would wait forever.
func TestCachesRecoverFromPanic(t *testing.T) {
	rc := newRenderCache(1 << 20)
	cc := newCaptureCache(2, nil)
	func() {
		defer func() { _ = recover() }()
		rc.get("k", func() (*rendered, error) { panic("render") })
	}()
	func() {
		defer func() { _ = recover() }()
		cc.load("id", func(string) (*capture.Capture, error) { panic("load") })
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		val, hit, err := rc.get("k", func() (*rendered, error) { return &rendered{body: [][]byte{[]byte("x")}}, nil })
		if err != nil || hit || string(bytes.Join(val.body, nil)) != "x" {
			t.Errorf("render after a panic: %v %v %v", val, hit, err)
		}
		c, err := cc.load("id", func(string) (*capture.Capture, error) { return &capture.Capture{}, nil })
		if err != nil || c == nil {
			t.Errorf("load after a panic: %v %v", c, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a request after a panicked one hangs")
	}

	// Requests already waiting get an error, not a nil answer.
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		rc.get("p", func() (*rendered, error) { close(started); <-release; panic("render") })
	}()
	<-started
	type answer struct {
		val *rendered
		err error
	}
	waiter := make(chan answer, 1)
	go func() {
		val, _, err := rc.get("p", func() (*rendered, error) { return &rendered{body: [][]byte{[]byte("y")}}, nil })
		waiter <- answer{val, err}
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter find the pending call
	close(release)
	// A waiter that came too late renders again, which is right too.
	if a := <-waiter; !errors.Is(a.err, errAbandoned) && (a.err != nil || a.val == nil) {
		t.Errorf("waiter got %v, %v: want errAbandoned or a rendering", a.val, a.err)
	}
}

// cachedKeys lists the keys of the renderings in the cache.
func cachedKeys(c *renderCache) map[string]bool {
	keys := make(map[string]bool)
	for _, k := range c.c.Keys() {
		keys[k] = true
	}
	return keys
}

// Deleting a capture drops every rendering derived from it, the diffs
// against another capture included, and keeps the others; the diff then
// answers 404 naming the missing side.
func TestDeleteDropsDiffRenderings(t *testing.T) {
	tests := []struct {
		name    string
		same    bool   // one capture on both sides, two ranges
		del     string // "base" or "compare"
		message string
	}{
		{"delete base", false, "base", "base capture"},
		{"delete compare", false, "compare", "compare capture"},
		{"one capture, two ranges", true, "base", "base capture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			ids := map[string]string{"base": hmStore(t, s, hmPhased(t)), "other": hmStore(t, s, hmPhased(t))}
			ids["compare"] = ids["other"]
			if tt.same {
				ids["compare"] = ids["base"]
			}
			kept := ids["other"]
			if tt.del == "compare" || tt.same {
				kept = hmStore(t, s, hmPhased(t)) // a capture the diff does not use
			}
			if code, body, _ := hmGet(t, ts.URL+"/api/captures/"+kept+"/folded"); code != http.StatusOK {
				t.Fatalf("folded of the kept capture: %d %s", code, body)
			}
			keptKeys := cachedKeys(s.cache)

			diff := ts.URL + "/api/diff.svg?base=" + ids["base"] + "&compare=" + ids["compare"] + "&base_from=2&base_to=2.2&compare_from=2&compare_to=3"
			if code, body, _ := hmGet(t, diff); code != http.StatusOK {
				t.Fatalf("diff: %d %.300s", code, body)
			}
			diffKeys := cachedKeys(s.cache)
			for k := range keptKeys {
				delete(diffKeys, k)
			}
			if len(diffKeys) != 1 {
				t.Fatalf("the diff added %d renderings to the cache, want 1: %v", len(diffKeys), diffKeys)
			}

			req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/captures/"+ids[tt.del], nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE %s: %d", ids[tt.del], resp.StatusCode)
			}
			now := cachedKeys(s.cache)
			for k := range diffKeys {
				if now[k] {
					t.Errorf("the diff rendering %q is still cached after deleting its %s", k, tt.del)
				}
			}
			for k := range keptKeys {
				if !now[k] {
					t.Errorf("the rendering %q of a capture not deleted was dropped", k)
				}
			}

			code, body, _ := hmGet(t, diff)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusNotFound ||
				!strings.Contains(e.Error, tt.message) || !strings.Contains(e.Error, ids[tt.del]) || !strings.Contains(e.Error, "not found") {
				t.Errorf("diff after the delete: %d %.300s, want 404 with %q naming %s", code, body, tt.message+" ... not found", ids[tt.del])
			}
		})
	}
}

// A rendering that finishes after its capture was deleted is not cached:
// it was made from data that is gone.
func TestDropWhileRendering(t *testing.T) {
	tests := []struct {
		name, key, drop string
		cached          bool
	}{
		{"capture", cacheKey("a", "svg", nil), "a", false},
		{"diff base", cacheKey("a,b", "diff.svg", nil), "a", false},
		{"diff compare", cacheKey("a,b", "diff.svg", nil), "b", false},
		{"another capture", cacheKey("a,b", "diff.svg", nil), "c", true},
		{"id prefix", cacheKey("ab", "svg", nil), "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newRenderCache(1 << 20)
			started, release := make(chan struct{}), make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				rc.get(tt.key, func() (*rendered, error) {
					close(started)
					<-release
					return &rendered{body: [][]byte{[]byte("x")}}, nil
				})
			}()
			<-started
			rc.drop(tt.drop)
			close(release)
			<-done
			if got := cachedKeys(rc)[tt.key]; got != tt.cached {
				t.Errorf("%q cached %v after dropping %q during its rendering, want %v", tt.key, got, tt.drop, tt.cached)
			}
			rc.get(tt.key, func() (*rendered, error) { return &rendered{body: [][]byte{[]byte("y")}}, nil })
			rc.drop(tt.drop)
			if got := cachedKeys(rc)[tt.key]; got != tt.cached {
				t.Errorf("%q cached %v after dropping %q, want %v", tt.key, got, tt.drop, tt.cached)
			}
		})
	}
}

// A capture whose load finishes after it was deleted is not kept.
func TestDropWhileLoading(t *testing.T) {
	cc := newCaptureCache(2, nil)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		cc.load("a", func(string) (*capture.Capture, error) {
			close(started)
			<-release
			return &capture.Capture{}, nil
		})
	}()
	<-started
	cc.drop("a")
	close(release)
	<-done
	if cc.get("a") != nil {
		t.Error("a capture loaded while it was deleted is kept")
	}
}
