package web_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/scorch-dev/scorch/web"
	"github.com/scorch-dev/scorch/web/store"
)

// A name a route does not know is a 400 that names the allowed ones, on
// every surface; token is accepted everywhere (the server here requires
// it, so each request carries it) and no capture starts.
func TestUnknownParameters(t *testing.T) {
	const token = "0123456789abcdef0123"
	e := newEnv(t, func(c *web.Config) { c.Token = token })
	auth := []string{"Authorization", "Bearer " + token}
	resp, b := e.do("POST", "/api/captures?wait=true&token="+token, strings.NewReader(`{"type":"cpu","duration":"0.5s"}`), auth...)
	if resp.StatusCode != 201 {
		t.Fatalf("capture: %d %s", resp.StatusCode, b)
	}
	var rec store.Record
	json.Unmarshal(b, &rec)
	id := rec.ID
	filters := "from, to, pid, tid, comm, cpu, idle, view, t"
	graph := "layout, reverse, sort, minwidth, title, s, width, palette"
	capture := "type, hz, pid, tid, comm, event, unwind, state, min_block, max_block, view"
	tests := []struct {
		name, method, path, body, contentType string
		want                                  string
	}{
		{"svg", "GET", "/api/captures/" + id + "/flamegraph.svg?token=" + token + "&x=10&d=2&i=1&colour=red", "", "",
			`unknown parameter "colour": allowed are ` + filters + ", " + graph},
		{"folded", "GET", "/api/captures/" + id + "/folded?token=" + token + "&pids=1", "", "",
			`unknown parameter "pids": allowed are ` + filters + ", " + graph},
		{"pprof", "GET", "/api/captures/" + id + "/profile.pb.gz?token=" + token + "&seconds=5", "", "",
			`unknown parameter "seconds": allowed are ` + filters + ", " + graph},
		{"speedscope", "GET", "/api/captures/" + id + "/speedscope.json?token=" + token + "&widths=base", "", "",
			`unknown parameter "widths": allowed are ` + filters + ", " + graph},
		{"heatmap", "GET", "/api/captures/" + id + "/heatmap.json?token=" + token + "&from=1&cols=9", "", "",
			`unknown parameter "cols": allowed are rows, norm, pid, tid, comm, cpu, idle, view, t`},
		{"threads", "GET", "/api/captures/" + id + "/threads.json?token=" + token + "&buckets=9", "", "",
			`unknown parameter "buckets": allowed are ` + filters + ", reverse, bucket, limit, by, norm"},
		{"stackchart", "GET", "/api/captures/" + id + "/stackchart.json?token=" + token + "&tid=1&px=9", "", "",
			`unknown parameter "px": allowed are ` + filters + ", reverse, width"},
		{"diff", "GET", "/api/diff.svg?token=" + token + "&base=" + id + "&compare=" + id + "&to=2", "", "",
			`unknown parameter "to": allowed are base, compare, base_from, base_to, compare_from, compare_to, pid, tid, comm, cpu, idle, view, t, ` + graph + ", widths"},
		{"post query", "POST", "/api/captures?token=" + token + "&wiat=true", `{"type":"cpu"}`, "application/json",
			`unknown parameter "wiat": allowed are wait`},
		{"json body", "POST", "/api/captures?token=" + token, `{"type":"cpu","seconds":5}`, "application/json",
			`unknown field "seconds": allowed fields are type, duration, hz, pid, tid, comm, event, unwind, state, min_block, max_block, view`},
		{"form", "POST", "/api/captures?token=" + token, "type=cpu&token=" + token + "&target=pid&pid=1&secs=5", "application/x-www-form-urlencoded",
			`unknown parameter "secs": allowed are type, duration, hz, pid, tid, comm, event, unwind, state, min_block, max_block, view, target`},
		{"form target", "POST", "/api/captures?token=" + token, "type=cpu&target=pod", "application/x-www-form-urlencoded",
			`target "pod" is not valid: allowed values are host, pid, tid, comm`},
		{"blocking svg", "GET", "/api/flamegraph.svg?token=" + token + "&type=cpu&seconds=0.5&duration=5s", "", "",
			`unknown parameter "duration": allowed are seconds, ` + capture + ", " + graph + ", idle"},
		{"blocking svg filter", "GET", "/api/flamegraph.svg?token=" + token + "&type=cpu&seconds=0.5&cpu=1", "", "",
			`unknown parameter "cpu": allowed are seconds, ` + capture + ", " + graph + ", idle"},
		{"pprof profile", "GET", "/debug/pprof/profile?token=" + token + "&seconds=0.5&debug=1", "", "",
			`unknown parameter "debug": allowed are seconds, type, hz, pid, tid, comm, event, unwind`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.rec.Started()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			hdr := auth
			if tt.contentType != "" {
				hdr = append(hdr, "Content-Type", tt.contentType)
			}
			resp, b := e.do(tt.method, tt.path, body, hdr...)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if msg := errorMessage(t, b); msg != tt.want {
				t.Errorf("error %q\nwant    %q", msg, tt.want)
			}
			if got := e.rec.Started(); got != before {
				t.Errorf("%d captures started for a refused request", got-before)
			}
		})
	}
	// The names those messages list are accepted.
	for _, path := range []string{
		"/api/captures/" + id + "/flamegraph.svg?from=0&to=0.4&pid=1&tid=1&comm=app&cpu=0&idle=include&view=alloc&layout=icicle&reverse=true&sort=size&minwidth=1&title=t&s=beta&width=900&palette=io&t=focus:beta&x=1&d=1&i=1",
		"/api/captures/" + id + "/heatmap.json?rows=10&t=drop:beta&pid=1&tid=1&comm=app&cpu=0&idle=include&view=alloc&from=1&to=2&norm=sum",
		"/api/captures/" + id + "/threads.json?bucket=0.1&limit=5&by=process&norm=sum&from=0&to=0.1&from=0.2&to=0.4&pid=1&tid=1&comm=app&cpu=0&idle=include&t=drop:beta&reverse=true",
		"/api/captures/" + id + "/stackchart.json?tid=1&width=300&from=0&to=0.4&pid=1&comm=app&cpu=0&idle=include&t=focus:beta",
		"/api/diff.svg?base=" + id + "&compare=" + id + "&base_from=0&base_to=0.2&compare_from=0.2&compare_to=0.4&idle=include&widths=base&layout=icicle",
		"/api/flamegraph.svg?type=cpu&seconds=0.3&hz=49&unwind=fp&layout=icicle&idle=include&title=now&x=1",
		"/debug/pprof/profile?seconds=0.3&type=cpu&hz=49&unwind=fp",
	} {
		if resp, b := e.do("GET", path+"&token="+token, nil, auth...); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// Limits are named by the setting that applies, and only messages about
// the duration mention the duration's limit.
func TestParamLimitMessages(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxHz = 500 })
	tests := []struct{ body, want string }{
		{`{"type":"cpu","hz":5000}`, "hz 5000 is out of range: allowed 1..500 (--max-hz)"},
		{`{"type":"cpu","hz":20000}`, "hz 20000 is out of range: allowed 1..500 (--max-hz)"},
		{`{"type":"cpu","duration":"1h"}`, "duration 1h0m0s is over the limit of 10m0s (--max-duration)"},
		{`{"type":"cpu","duration":"0s"}`, `duration "0s" is below the minimum of 1ms: give at least 1ms, such as 10s`},
		{`{"type":"cpu","duration":0}`, `duration "0" is below the minimum of 1ms: give at least 1ms, such as 10s`},
		{`{"type":"cpu","duration":"100us"}`, `duration "100us" is below the minimum of 1ms: give at least 1ms, such as 10s`},
		{`{"type":"cpu","unwind":"lbr"}`, `unwind "lbr" is not supported: allowed values are fp, auto, dwarf`},
		{`{"type":"cpu","min_block":"soon"}`, `min_block "soon" is not valid: use a number of seconds or a Go duration such as 10s or 500ms`},
	}
	for _, tt := range tests {
		resp, b := e.do("POST", "/api/captures", strings.NewReader(tt.body))
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d: %s", tt.body, resp.StatusCode, b)
			continue
		}
		if msg := errorMessage(t, b); msg != tt.want {
			t.Errorf("%s: error %q\nwant %q", tt.body, msg, tt.want)
		}
	}
	for _, path := range []string{"/api/flamegraph.svg?type=cpu&seconds=1e-9", "/debug/pprof/profile?seconds=0.0001", "/api/flamegraph.svg?type=cpu&seconds=0"} {
		resp, b := e.get(path)
		if msg := errorMessage(t, b); resp.StatusCode != 400 || !strings.Contains(msg, "is out of range: allowed 0.001 up to ") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, msg)
		}
	}
	if resp, b := e.get("/api/flamegraph.svg?type=cpu&seconds=1&hz=600"); resp.StatusCode != 400 || errorMessage(t, b) != "hz 600 is out of range: allowed 1..500 (--max-hz)" {
		t.Errorf("blocking hz: %d %s", resp.StatusCode, b)
	}
}
