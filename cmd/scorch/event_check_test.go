package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scorch-dev/scorch/internal/testutil"
)

// An event this host lacks is refused before any capture starts: a 400
// naming the problem at POST /api/captures and on the blocking routes, and
// exit 2 from scorch record, never a capture that is accepted and fails.
func TestUnknownEventRefused(t *testing.T) {
	testutil.RequireRoot(t)
	base := startServe(t)
	message := func(resp *http.Response) (int, string) {
		defer resp.Body.Close()
		var e struct{ Error string }
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &e); err != nil {
			return resp.StatusCode, string(b)
		}
		return resp.StatusCode, e.Error
	}
	for _, tt := range []struct{ body, want string }{
		{`{"type":"event","event":"nosuch:thing"}`, `unknown tracepoint subsystem "nosuch"`},
		{`{"type":"event","event":"sched:nosuch"}`, `unknown tracepoint "sched:nosuch": sched has sched:`},
		{`{"type":"event","event":"nosuch"}`, `unknown event "nosuch": software events are cpu-clock`},
		{`{"type":"mem","event":"free"}`, `mem event "free" is not supported: allowed values are`},
	} {
		resp, err := http.Post(base+"/api/captures", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if code, msg := message(resp); code != 400 || !strings.Contains(msg, tt.want) {
			t.Errorf("POST %s: %d %q, want 400 with %q", tt.body, code, msg, tt.want)
		}
	}
	resp, err := http.Get(base + "/api/captures")
	if err != nil {
		t.Fatal(err)
	}
	if _, list := message(resp); strings.Contains(list, `"id"`) {
		t.Errorf("a refused capture was registered: %s", list)
	}
	resp, err = http.Get(base + "/api/flamegraph.svg?type=event&event=nosuch:thing&seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := message(resp); code != 400 || !strings.Contains(msg, `unknown tracepoint subsystem "nosuch"`) {
		t.Errorf("blocking route: %d %q", code, msg)
	}
	// A tracepoint that exists is accepted.
	resp, err = http.Post(base+"/api/captures", "application/json", strings.NewReader(`{"type":"event","event":"sched:sched_switch","duration":"100ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := message(resp); code/100 != 2 {
		t.Errorf("sched:sched_switch: %d %q", code, msg)
	}

	var out, errb bytes.Buffer
	code := runRecord(context.Background(), []string{"--type", "event", "--event", "nosuch:thing", "--duration", "1s", "-o", filepath.Join(t.TempDir(), "out")}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), `unknown tracepoint subsystem "nosuch"`) {
		t.Errorf("scorch record --event nosuch:thing: exit %d, %q", code, errb.String())
	}
}
