package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/web/store"
)

// treeNode is TREE of the JSON routes.
type treeNode struct {
	Name      string      `json:"name"`
	Value     int64       `json:"value"`
	Self      int64       `json:"self"`
	Total     int64       `json:"total"`
	BaseTotal int64       `json:"base_total"`
	BaseSelf  int64       `json:"base_self"`
	Pruned    int64       `json:"pruned"`
	Children  []*treeNode `json:"children"`
}

// child is the child named name, nil when there is none.
func (n *treeNode) child(name string) *treeNode {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// path follows names from n down.
func (n *treeNode) path(t *testing.T, names ...string) *treeNode {
	t.Helper()
	cur := n
	for _, name := range names {
		next := cur.child(name)
		if next == nil {
			t.Fatalf("no frame %q under %q (children %v)", name, cur.Name, cur.names())
		}
		cur = next
	}
	return cur
}

func (n *treeNode) names() []string {
	var out []string
	for _, c := range n.Children {
		out = append(out, c.Name)
	}
	return out
}

type fnRow struct {
	Name      string `json:"name"`
	Module    string `json:"module"`
	Self      int64  `json:"self"`
	Total     int64  `json:"total"`
	BaseSelf  *int64 `json:"base_self"`
	BaseTotal *int64 `json:"base_total"`
}

type fnDoc struct {
	Unit      string  `json:"unit"`
	Total     int64   `json:"total"`
	BaseTotal int64   `json:"base_total"`
	Functions []fnRow `json:"functions"`
}

func (d fnDoc) row(name string) *fnRow {
	for i := range d.Functions {
		if d.Functions[i].Name == name {
			return &d.Functions[i]
		}
	}
	return nil
}

// importFolded imports folded stacks and returns the capture's id.
func (e *env) importFolded(folded string) string {
	e.t.Helper()
	resp, b := e.do("POST", "/api/imports", strings.NewReader(folded), "Content-Type", "text/plain")
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	var rec store.Record
	json.Unmarshal(b, &rec)
	return rec.ID
}

func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	resp, b := e.get(path)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// Two callers of c (a and b), recursion in a, self and total known.
const knownFolded = "app;main;a;c 3\napp;main;b;c 2\napp;main;a 1\napp;main;a;a;a;d 4\n"

func TestFunctionsJSON(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded(knownFolded)
	var d fnDoc
	e.getJSON("/api/captures/"+id+"/functions.json", &d)
	if d.Total != 10 || d.Unit != "samples" {
		t.Fatalf("total %d %s, want 10 samples", d.Total, d.Unit)
	}
	want := map[string][2]int64{"c": {5, 5}, "a": {1, 8}, "d": {4, 4}, "main": {0, 10}, "app": {0, 10}, "b": {0, 2}}
	for name, w := range want {
		r := d.row(name)
		if r == nil || r.Self != w[0] || r.Total != w[1] {
			t.Errorf("%s: %+v, want self %d total %d", name, r, w[0], w[1])
		}
	}
	if len(d.Functions) != len(want) {
		t.Errorf("%d functions, want %d", len(d.Functions), len(want))
	}
	// Sorted by self by default, ties by name.
	if got := d.Functions[0].Name + "," + d.Functions[1].Name + "," + d.Functions[2].Name; got != "c,d,a" {
		t.Errorf("by self: %s, want c,d,a", got)
	}
	if d.Functions[0].BaseSelf != nil {
		t.Error("a capture's table carries base_self")
	}
	e.getJSON("/api/captures/"+id+"/functions.json?sort=total&limit=2", &d)
	if len(d.Functions) != 2 || d.Functions[0].Name != "app" || d.Functions[1].Name != "main" {
		t.Errorf("sort=total&limit=2: %+v", d.Functions)
	}
	e.getJSON("/api/captures/"+id+"/functions.json?sort=name", &d)
	if d.Functions[0].Name != "a" || d.Functions[len(d.Functions)-1].Name != "main" {
		t.Errorf("sort=name: %+v", d.Functions)
	}
	// Transforms: focus on a keeps a's stacks, from a.
	e.getJSON("/api/captures/"+id+"/functions.json?t=focus:a", &d)
	if d.Total != 8 || d.row("main") != nil || d.row("b") != nil || d.row("a").Total != 8 {
		t.Errorf("focus:a: %+v", d)
	}
	e.getJSON("/api/captures/"+id+"/functions.json?t=merge:a", &d)
	if d.Total != 10 || d.row("a") != nil || d.row("main").Self != 1 || d.row("c").Total != 5 {
		t.Errorf("merge:a: %+v", d)
	}
	e.getJSON("/api/captures/"+id+"/functions.json?t=drop:b&t=drop:d", &d)
	if d.Total != 4 || d.row("c").Self != 3 {
		t.Errorf("drop:b, drop:d: %+v", d)
	}
}

func TestSandwichJSON(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded(knownFolded)
	var sw struct {
		Fn      string    `json:"fn"`
		Self    int64     `json:"self"`
		Total   int64     `json:"total"`
		Callers *treeNode `json:"callers"`
		Callees *treeNode `json:"callees"`
	}
	e.getJSON("/api/captures/"+id+"/sandwich.json?fn=c", &sw)
	if sw.Fn != "c" || sw.Self != 5 || sw.Total != 5 {
		t.Fatalf("c: %+v", sw)
	}
	// Called from two places: a (3) and b (2), each from main, from app.
	if sw.Callers.Name != "c" || sw.Callers.Value != 5 || len(sw.Callers.Children) != 2 {
		t.Fatalf("callers of c: %+v", sw.Callers)
	}
	if a := sw.Callers.path(t, "a", "main", "app"); a.Value != 3 {
		t.Errorf("c from a: %d, want 3", a.Value)
	}
	if b := sw.Callers.path(t, "b", "main", "app"); b.Value != 2 {
		t.Errorf("c from b: %d, want 2", b.Value)
	}
	if sw.Callees.Name != "c" || sw.Callees.Value != 5 || sw.Callees.Self != 5 || len(sw.Callees.Children) != 0 {
		t.Errorf("callees of c: %+v", sw.Callees)
	}
	// Recursion: a is split at its outermost frame, counted once.
	e.getJSON("/api/captures/"+id+"/sandwich.json?fn=a", &sw)
	if sw.Self != 1 || sw.Total != 8 || sw.Callers.Value != 8 || sw.Callers.path(t, "main", "app").Value != 8 {
		t.Errorf("a: %+v", sw)
	}
	if sw.Callees.path(t, "c").Value != 3 || sw.Callees.path(t, "a", "a", "d").Value != 4 || sw.Callees.Self != 1 {
		t.Errorf("callees of a: %+v", sw.Callees)
	}
	// With rec:a the recursion is one frame.
	e.getJSON("/api/captures/"+id+"/sandwich.json?fn=a&t=rec:a", &sw)
	if sw.Callees.path(t, "d").Value != 4 {
		t.Errorf("callees of a with rec:a: %+v", sw.Callees)
	}
	resp, b := e.get("/api/captures/" + id + "/sandwich.json?fn=nosuch")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorMessage(t, b), `"nosuch"`) {
		t.Errorf("unknown fn: %d %s", resp.StatusCode, b)
	}
	resp, b = e.get("/api/captures/" + id + "/sandwich.json")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorMessage(t, b), "fn is missing") {
		t.Errorf("no fn: %d %s", resp.StatusCode, b)
	}
}

func TestTreeJSON(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded(knownFolded)
	var doc struct {
		Unit  string    `json:"unit"`
		Total int64     `json:"total"`
		Tree  *treeNode `json:"tree"`
	}
	e.getJSON("/api/captures/"+id+"/tree.json", &doc)
	root := doc.Tree
	if doc.Total != 10 || root.Name != "all" || root.Value != 10 {
		t.Fatalf("root: %+v", doc)
	}
	main := root.path(t, "app", "main")
	if main.Value != 10 || main.Self != 0 || strings.Join(main.names(), ",") != "a,b" {
		t.Errorf("main: %+v", main)
	}
	a := main.path(t, "a")
	if a.Value != 8 || a.Self != 1 || a.path(t, "c").Value != 3 || a.path(t, "a", "a", "d").Self != 4 {
		t.Errorf("a: %+v", a)
	}
	// A budget of 3 frames keeps all, app, main: the 7 frames below main
	// and their 10 samples are one node.
	e.getJSON("/api/captures/"+id+"/tree.json?nodes=3", &doc)
	main = doc.Tree.path(t, "app", "main")
	if len(main.Children) != 1 || main.Children[0].Pruned != 7 || main.Children[0].Value != 10 {
		t.Fatalf("pruned under main: %+v", main.Children[0])
	}
	// Budget 5: the widest frames are kept (a and a;a), the rest is
	// accounted in one node per parent.
	e.getJSON("/api/captures/"+id+"/tree.json?nodes=5", &doc)
	main = doc.Tree.path(t, "app", "main")
	a = main.path(t, "a")
	var sum int64
	for _, c := range main.Children {
		sum += c.Value
	}
	if sum != 10 || a.Value != 8 {
		t.Errorf("budget 5: children of main hold %d, want 10: %+v", sum, main.Children)
	}
	p := main.child("[pruned]")
	if p == nil || p.Pruned != 2 || p.Value != 2 {
		t.Errorf("budget 5: b and b;c pruned under main: %+v", main.Children)
	}
	// a;a (4) is wider than c (3): kept, and c pruned under a, a;a;a
	// and a;a;a;d under a;a.
	if pa := a.child("[pruned]"); pa == nil || pa.Pruned != 1 || pa.Value != 3 {
		t.Errorf("budget 5: c pruned under a: %+v", a.Children)
	}
	if paa := a.path(t, "a", "[pruned]"); paa.Pruned != 2 || paa.Value != 4 {
		t.Errorf("budget 5: a;a;a;d pruned under a;a: %+v", paa)
	}
	// Transforms shape the tree.
	e.getJSON("/api/captures/"+id+"/tree.json?t=merge:a", &doc)
	main = doc.Tree.path(t, "app", "main")
	if main.Self != 1 || main.path(t, "c").Value != 3 || main.path(t, "d").Value != 4 || main.child("a") != nil {
		t.Errorf("merge:a: %+v", main)
	}
	e.getJSON("/api/captures/"+id+"/tree.json?t=focus:a", &doc)
	if doc.Total != 8 || strings.Join(doc.Tree.names(), ",") != "a" {
		t.Errorf("focus:a: %+v", doc.Tree)
	}
	e.getJSON("/api/captures/"+id+"/tree.json?reverse=true", &doc)
	if doc.Tree.path(t, "c", "a").Value != 3 || doc.Tree.path(t, "c").Value != 5 {
		t.Errorf("reverse: %+v", doc.Tree)
	}
}

// Names reach the page through JSON: they must come out escaped.
func TestTreeJSONEscapes(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded("app;<script>alert(1)</script>;\"q\" 3\n")
	resp, b := e.get("/api/captures/" + id + "/tree.json")
	if resp.StatusCode != 200 || bytes.Contains(b, []byte("<script>")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var doc struct{ Tree *treeNode }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tree.path(t, "app", "<script>alert(1)</script>", `"q"`).Value != 3 {
		t.Errorf("names did not survive: %s", b)
	}
}

func TestSummaryJSON(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type": "cpu", "duration": "1s", "hz": 49}`)
	var sum struct {
		Samples      int64            `json:"samples"`
		Duration     float64          `json:"duration"`
		Hz           int              `json:"hz"`
		EffectiveHz  float64          `json:"effective_hz"`
		Lost         uint64           `json:"lost"`
		LostPerCPU   map[string]int64 `json:"lost_per_cpu"`
		UserStacks   map[string]any   `json:"user_stacks"`
		Unsymbolized float64          `json:"unsymbolized"`
		Processes    int              `json:"processes"`
		Threads      int              `json:"threads"`
		Top          []struct {
			Name string
			Self int64
		} `json:"top"`
		Findings []struct{ Severity, Message, Fix string } `json:"findings"`
	}
	e.getJSON("/api/captures/"+rec.ID+"/summary.json", &sum)
	var fns fnDoc
	e.getJSON("/api/captures/"+rec.ID+"/functions.json", &fns)
	if sum.Samples != fns.Total || sum.Samples != 600 {
		t.Errorf("samples %d, functions total %d, want 600", sum.Samples, fns.Total)
	}
	if sum.Hz != 49 || sum.Processes != 2 || sum.Threads != 2 || sum.Duration != 1 || sum.EffectiveHz != 300 {
		t.Errorf("summary: %+v", sum)
	}
	if sum.Top[0].Name != "beta" || sum.Top[0].Self != 300 {
		t.Errorf("top: %+v", sum.Top)
	}
	if sum.UserStacks == nil || sum.LostPerCPU == nil {
		t.Errorf("user_stacks, lost_per_cpu missing: %+v", sum)
	}
	found := false
	for _, f := range sum.Findings {
		if strings.Contains(f.Message, "below 100 Hz") && f.Severity == "info" && strings.Contains(f.Fix, "hz=99") {
			found = true
		}
	}
	if !found {
		t.Errorf("no finding about 49 Hz: %+v", sum.Findings)
	}
	e.getJSON("/api/captures/"+rec.ID+"/summary.json?t=drop:beta&pid=100", &sum)
	if sum.Samples != 100 || sum.Processes != 1 {
		t.Errorf("drop:beta pid=100: %+v", sum)
	}
	// An import of folded stacks says its time views are missing, and why.
	id := e.importFolded("app;main;0x7f00+0x10 5\napp;main;work 5\n")
	e.getJSON("/api/captures/"+id+"/summary.json", &sum)
	msgs := ""
	for _, f := range sum.Findings {
		msgs += f.Severity + ": " + f.Message + " / " + f.Fix + "\n"
	}
	if !strings.Contains(msgs, "no timestamps") || sum.Unsymbolized != 5.0/20 {
		t.Errorf("folded import: unsymbolized %v, findings\n%s", sum.Unsymbolized, msgs)
	}
}

func TestTransformsInExports(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type": "cpu", "duration": "1s"}`)
	base := "/api/captures/" + rec.ID
	_, b := e.get(base + "/folded?t=focus:alpha")
	if got := string(b); got != "alpha;beta 300\nalpha;gamma 100\n" {
		t.Errorf("folded with focus:alpha: %q", got)
	}
	_, b = e.get(base + "/flamegraph.svg")
	if !bytes.Contains(b, []byte("delta")) {
		t.Fatal("svg without delta")
	}
	resp, b := e.get(base + "/flamegraph.svg?t=drop:delta")
	if resp.StatusCode != 200 || bytes.Contains(b, []byte("delta")) {
		t.Errorf("svg with drop:delta: %d, has delta %v", resp.StatusCode, bytes.Contains(b, []byte("delta")))
	}
	_, b = e.get(base + "/profile.pb.gz?t=drop:delta")
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
		for _, l := range s.Location {
			for _, ln := range l.Line {
				if ln.Function.Name == "delta" {
					t.Error("pprof with drop:delta has delta")
				}
			}
		}
	}
	if total != 400 {
		t.Errorf("pprof with drop:delta: %d samples, want 400", total)
	}
	_, b = e.get(base + "/speedscope.json?t=lib:nosuch&t=merge:beta")
	if bytes.Contains(b, []byte(`"beta"`)) || !bytes.Contains(b, []byte(`"gamma"`)) {
		t.Errorf("speedscope with merge:beta: %s", b)
	}
	// The heatmap counts only what the transforms keep.
	var hm struct{ Values [][]int64 }
	e.getJSON(base+"/heatmap.json?t=drop:beta&rows=10", &hm)
	var sum int64
	for _, col := range hm.Values {
		for _, v := range col {
			sum += v
		}
	}
	if sum != 300 {
		t.Errorf("heatmap with drop:beta holds %d samples, want 300", sum)
	}
}

func TestAnalysisBadParameters(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.capture(`{"type": "cpu", "duration": "1s"}`)
	other := e.capture(`{"type": "mem", "duration": "1s"}`)
	id := rec.ID
	diff := "base=" + id + "&compare=" + id
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/api/captures/" + id + "/tree.json?t=zoom:a", 400, "allowed kinds are focus, merge, drop, rec, lib"},
		{"/api/captures/" + id + "/functions.json?t=zoom:a", 400, "allowed kinds are focus, merge, drop, rec, lib"},
		{"/api/captures/" + id + "/sandwich.json?fn=a&t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/summary.json?t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/flamegraph.svg?t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/folded?t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/profile.pb.gz?t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/speedscope.json?t=zoom:a", 400, "allowed kinds"},
		{"/api/captures/" + id + "/heatmap.json?t=zoom:a", 400, "allowed kinds"},
		{"/api/diff.svg?" + diff + "&t=zoom:a", 400, "allowed kinds"},
		{"/api/diff/functions.json?" + diff + "&t=zoom:a", 400, "allowed kinds"},
		{"/api/diff/tree.json?" + diff + "&t=focus", 400, "KIND:NAME"},
		{"/api/captures/" + id + "/functions.json?sort=size", 400, "allowed values are self, total, name"},
		{"/api/captures/" + id + "/functions.json?limit=0", 400, "limit"},
		{"/api/captures/" + id + "/functions.json?limit=x", 400, "limit"},
		{"/api/captures/" + id + "/tree.json?nodes=0", 400, "nodes"},
		{"/api/captures/" + id + "/tree.json?nodes=9999999", 400, "nodes"},
		{"/api/captures/" + id + "/tree.json?layout=flame", 400, "unknown parameter"},
		{"/api/captures/" + id + "/tree.json?from=50", 400, "outside the capture"},
		{"/api/captures/" + id + "/tree.json?idle=maybe", 400, "include, exclude"},
		{"/api/captures/" + id + "/tree.json?reverse=perhaps", 400, "true, false"},
		{"/api/captures/" + id + "/tree.json?view=peak", 400, "alloc, inuse"},
		{"/api/captures/20260101-000000-00000000/tree.json", 404, "not found"},
		{"/api/diff/functions.json?base=" + id, 400, "compare is missing"},
		{"/api/diff/functions.json?" + diff + "&sort=size", 400, "self, total, name, delta"},
		{"/api/diff/tree.json?base=" + id + "&compare=20260101-000000-00000000", 404, "not found"},
		{"/api/diff/tree.json?" + diff + "&from=1", 400, "unknown parameter"},
		{"/api/diff/tree.json?" + diff + "&base_to=x", 400, "base_from/base_to"},
		// Different units: 400 naming both, never a 500.
		{"/api/diff.svg?base=" + id + "&compare=" + other.ID, 400, "in samples and compare " + other.ID + " a mem capture in bytes"},
		{"/api/diff/functions.json?base=" + id + "&compare=" + other.ID, 400, "samples"},
		{"/api/diff/tree.json?base=" + other.ID + "&compare=" + id, 400, "in bytes and compare " + id + " a cpu capture in samples"},
	}
	for _, tt := range tests {
		resp, b := e.get(tt.path)
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d %s, want %d", tt.path, resp.StatusCode, b, tt.status)
			continue
		}
		if msg := errorMessage(t, b); !strings.Contains(msg, tt.want) {
			t.Errorf("GET %s: %q, want it to say %q", tt.path, msg, tt.want)
		}
	}
}

func TestDiffJSON(t *testing.T) {
	e := newEnv(t, nil)
	base := e.importFolded("app;main;a 6\napp;main;b 4\n")
	cmp := e.importFolded("app;main;a 2\napp;main;b 8\napp;main;c 5\n")
	var d fnDoc
	e.getJSON("/api/diff/functions.json?base="+base+"&compare="+cmp, &d)
	if d.Total != 15 || d.BaseTotal != 10 {
		t.Fatalf("totals %d %d", d.Total, d.BaseTotal)
	}
	// Largest change of share first: a 60% -> 13%, c 0 -> 33%, b 40% -> 53%.
	var order []string
	for _, f := range d.Functions[:3] {
		order = append(order, f.Name)
	}
	if strings.Join(order, ",") != "a,c,b" {
		t.Errorf("by delta: %v", order)
	}
	want := map[string][4]int64{"a": {2, 2, 6, 6}, "b": {8, 8, 4, 4}, "c": {5, 5, 0, 0}, "main": {0, 15, 0, 10}}
	for name, w := range want {
		r := d.row(name)
		if r == nil || r.BaseSelf == nil || r.Self != w[0] || r.Total != w[1] || *r.BaseSelf != w[2] || *r.BaseTotal != w[3] {
			t.Errorf("%s: %+v, want %v", name, r, w)
		}
	}
	var doc struct {
		Total     int64
		BaseTotal int64 `json:"base_total"`
		Tree      *treeNode
	}
	e.getJSON("/api/diff/tree.json?base="+base+"&compare="+cmp, &doc)
	if doc.Total != 15 || doc.BaseTotal != 10 {
		t.Errorf("diff tree totals: %d, %d", doc.Total, doc.BaseTotal)
	}
	main := doc.Tree.path(t, "app", "main")
	if main.Total != 15 || main.Value != 15 || main.BaseTotal != 10 {
		t.Errorf("main: %+v", main)
	}
	if a := main.path(t, "a"); a.Total != 2 || a.BaseTotal != 6 || a.BaseSelf != 6 || a.Self != 2 {
		t.Errorf("a: %+v", a)
	}
	if c := main.path(t, "c"); c.BaseTotal != 0 || c.Total != 5 {
		t.Errorf("c: %+v", c)
	}
	// Two ranges of one capture.
	rec := e.capture(`{"type": "cpu", "duration": "1s"}`)
	q := url.Values{"base": {rec.ID}, "compare": {rec.ID}, "base_to": {"0.5"}, "compare_from": {"0.5"}}
	e.getJSON("/api/diff/functions.json?"+q.Encode(), &d)
	if d.Total != 300 || d.BaseTotal != 300 || *d.row("beta").BaseTotal != 150 || d.row("beta").Total != 150 {
		t.Errorf("ranges: %+v", d)
	}
}

// The tree of a large capture stays within its budget and is sent
// compressed.
func TestTreeJSONGzip(t *testing.T) {
	e := newEnv(t, nil)
	var b strings.Builder
	frames := map[string]bool{"all": true}
	for i := 0; i < 3000; i++ {
		stack := "app;main;f" + strings.Repeat("x", i%7) + ";g" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		b.WriteString(stack + " 1\n")
		parts := strings.Split(stack, ";")
		for j := range parts {
			frames[strings.Join(parts[:j+1], ";")] = true
		}
	}
	id := e.importFolded(b.String())
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/captures/"+id+"/tree.json?nodes=100", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("tree.json not gzipped: %v", resp.Header)
	}
	zr, _ := gzip.NewReader(resp.Body)
	raw, _ := io.ReadAll(zr)
	var doc struct{ Tree *treeNode }
	json.Unmarshal(raw, &doc)
	count, pruned := 0, int64(0)
	var walk func(n *treeNode)
	walk = func(n *treeNode) {
		if n.Pruned > 0 {
			pruned += n.Pruned
			return
		}
		count++
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(doc.Tree)
	if count != 100 {
		t.Errorf("%d frames kept, want the budget of 100", count)
	}
	if int(int64(count)+pruned) != len(frames) || doc.Tree.Value != 3000 {
		t.Errorf("kept %d + pruned %d frames: want all %d accounted", count, pruned, len(frames))
	}
}

// zoom= answers the subtree of one frame with a budget of its own.
func TestTreeJSONZoom(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded(knownFolded)
	var doc struct {
		Total int64
		Tree  *treeNode
	}
	e.getJSON("/api/captures/"+id+"/tree.json?zoom="+url.QueryEscape("app;main;a")+"&nodes=3", &doc)
	if doc.Total != 10 || doc.Tree.Name != "a" || doc.Tree.Value != 8 || doc.Tree.Self != 1 {
		t.Fatalf("zoom on a: %+v", doc.Tree)
	}
	// a, a;a and a;a;a kept; c and a;a;a;d pruned with their values.
	if c := doc.Tree.child("[pruned]"); c == nil || c.Value != 3 || c.Pruned != 1 {
		t.Errorf("under a: %v", doc.Tree.names())
	}
	if aa := doc.Tree.path(t, "a"); aa.Value != 4 {
		t.Errorf("a;a: %+v", aa)
	}
	resp, b := e.get("/api/captures/" + id + "/tree.json?zoom=" + url.QueryEscape("app;nosuch"))
	if resp.StatusCode != 404 || !strings.Contains(errorMessage(t, b), `"nosuch"`) {
		t.Errorf("zoom on a missing frame: %d %s", resp.StatusCode, b)
	}
}

// TestTransformedViewsAsFromScratch asks the page's three routes of a
// transformed view at once (the summary's capture part is worked out
// beside the view's set) and compares each with the same route of a
// capture that holds the transformed stacks from the start, but for the
// summary's symbol coverage, the untransformed capture's.
func TestTransformedViewsAsFromScratch(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded("app;main;mid;0x7f00+0x10 5\napp;main;mid;work 7\napp;main;other;work 3\napp;mid;leaf 2\napp;main;mid;mid;deep 4\n")
	want := e.importFolded("app;main;0x7f00+0x10 5\napp;main;work 7\napp;main;other;work 3\napp;leaf 2\napp;main;deep 4\n")
	routes := []string{"tree.json", "functions.json", "summary.json"}
	got := make([]map[string]any, len(routes))
	var wg sync.WaitGroup
	for i, r := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := e.get("/api/captures/" + id + "/" + r + "?t=merge:mid")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d %s", r, resp.StatusCode, b)
				return
			}
			if err := json.Unmarshal(b, &got[i]); err != nil {
				t.Errorf("%s: %v", r, err)
			}
		}()
	}
	wg.Wait()
	for i, r := range routes {
		var w map[string]any
		e.getJSON("/api/captures/"+want+"/"+r, &w)
		if r == "summary.json" {
			// The captures differ in what is not their stacks.
			for _, k := range []string{"duration", "source", "timestamps", "findings"} {
				delete(w, k)
				delete(got[i], k)
			}
			// A merge keeps every event: the symbol coverage is the
			// capture's (merged frames are hidden, not symbolized).
			var u map[string]any
			e.getJSON("/api/captures/"+id+"/summary.json", &u)
			for _, k := range []string{"unsymbolized", "unsymbolized_modules"} {
				if !reflect.DeepEqual(got[i][k], u[k]) {
					t.Errorf("summary.json?t=merge:mid: %s %v, want the untransformed capture's %v", k, got[i][k], u[k])
				}
				delete(w, k)
				delete(got[i], k)
			}
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("%s?t=merge:mid:\n got %v\nwant %v", r, got[i], w)
		}
	}
}

// TestStackedMergesAsFromScratch stacks merges one at a time, as the
// graph's menu does (each view derived from the one before, which the
// server still holds), and compares the tree and the table of each with
// those of a capture that holds the merged stacks from the start.
func TestStackedMergesAsFromScratch(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importFolded("app;main;mid;work 7\napp;main;other;work 3\napp;mid;leaf 2\napp;main;mid;mid;deep 4\napp;main;work 1\napp;other;main 2\n")
	steps := []struct{ merge, folded string }{
		{"mid", "app;main;work 7\napp;main;other;work 3\napp;leaf 2\napp;main;deep 4\napp;main;work 1\napp;other;main 2\n"},
		{"other", "app;main;work 7\napp;main;work 3\napp;leaf 2\napp;main;deep 4\napp;main;work 1\napp;main 2\n"},
		{"main", "app;work 7\napp;work 3\napp;leaf 2\napp;deep 4\napp;work 1\napp 2\n"},
		{"nosuch", "app;work 7\napp;work 3\napp;leaf 2\napp;deep 4\napp;work 1\napp 2\n"},
	}
	q := ""
	for _, st := range steps {
		q += "&t=merge:" + st.merge
		want := e.importFolded(st.folded)
		for _, r := range []string{"tree.json", "functions.json"} {
			var got, w map[string]any
			e.getJSON("/api/captures/"+id+"/"+r+"?"+q[1:], &got)
			e.getJSON("/api/captures/"+want+"/"+r, &w)
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s?%s:\n got %v\nwant %v", r, q[1:], got, w)
			}
		}
	}
}
