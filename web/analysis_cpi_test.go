package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// A CPI capture's tree carries instructions beside the cycles, so the page
// can colour frames by cycles per instruction as the SVG does.
func TestTreeJSONInstructions(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	b := capture.NewBuilder(capture.Meta{Type: capture.CPI, Start: time.Unix(1700000000, 0), Duration: time.Second, Timestamps: true})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	fast := b.Stack([]uint32{app, b.Frame(capture.Frame{Name: "fast"})})
	slow := b.Stack([]uint32{app, b.Frame(capture.Frame{Name: "slow"})})
	b.Add(capture.Event{Value: 100, Value2: 400, Stack: fast, PID: 1, TID: 1})
	b.Add(capture.Event{Time: 1, Value: 300, Value2: 100, Stack: slow, PID: 1, TID: 1})
	id := hmStore(t, s, b.Capture())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/captures/" + id + "/tree.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Instructions bool  `json:"instructions"`
		Total        int64 `json:"total"`
		BaseTotal    int64 `json:"base_total"`
		Tree         struct {
			Children []struct {
				Children []struct {
					Name      string `json:"name"`
					Value     int64  `json:"value"`
					BaseTotal int64  `json:"base_total"`
				} `json:"children"`
			} `json:"children"`
		} `json:"tree"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Instructions || doc.Total != 400 || doc.BaseTotal != 500 {
		t.Fatalf("cpi tree: instructions %v, cycles %d, instructions %d; want true, 400, 500", doc.Instructions, doc.Total, doc.BaseTotal)
	}
	got := map[string][2]int64{}
	for _, n := range doc.Tree.Children[0].Children {
		got[n.Name] = [2]int64{n.Value, n.BaseTotal}
	}
	if got["fast"] != [2]int64{100, 400} || got["slow"] != [2]int64{300, 100} {
		t.Errorf("cycles and instructions per frame: %v", got)
	}
}
