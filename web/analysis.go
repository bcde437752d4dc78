package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/calltree"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

// The analysis routes (registered in routes.go) answer the JSON the capture
// page draws from. Views are computed here from the stored capture, seen
// through the filters and the transforms (t), and sent pruned to what can
// be drawn.

// Node budgets of the drawn trees.
const (
	DefaultTreeNodes     = 20000
	DefaultSandwichNodes = 5000
	MaxTreeNodes         = 200000
	DefaultFunctions     = 500
	MaxFunctions         = 100000
)

// analysisNames are the query parameters every analysis route takes.
var analysisNames = names(capture.QueryParams, transformNames, []string{"reverse"})

// checkParams refuses parameters a route does not take, naming those it does.
func checkParams(v url.Values, extra ...string) error {
	return names(analysisNames.listed, extra).check(v)
}

// view is what the analysis routes share: the filters, the transforms and
// the direction of the merge.
type view struct {
	q       capture.Query
	ts      []capture.Transform
	reverse bool
}

func parseView(v url.Values) (view, error) {
	var vw view
	var err error
	if vw.q, err = capture.ParseQuery(v); err != nil {
		return vw, errorf(http.StatusBadRequest, "%v", err)
	}
	if vw.ts, err = capture.ParseTransforms(v["t"]); err != nil {
		return vw, errorf(http.StatusBadRequest, "%v", err)
	}
	if vw.reverse, err = parseBool("reverse", v.Get("reverse")); err != nil {
		return vw, err
	}
	return vw, nil
}

// parseTransforms reads t for the routes that have their own parsers (the
// rendered formats, the heatmap, diff.svg).
func parseTransforms(v url.Values) ([]capture.Transform, error) {
	ts, err := capture.ParseTransforms(v["t"])
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return ts, nil
}

func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, "%s %s is out of range: allowed %d..%d", name, quote(s), lo, hi)
	}
	return n, nil
}

// captureSet is the call-tree input of one capture's view, for a request
// that holds a render slot already (inside ServeRendered).
func (s *Server) captureSet(id string, vw view) (*calltree.Set, error) {
	return s.viewSet(context.Background(), id, vw, false)
}

// viewSet is captureSet for a request that holds no render slot: with
// slot, the set is built (when no other request builds it) in a slot of its
// own, taken for the build only. Waiting for a set another request builds
// holds no slot: the page asks for tree, table and health of one view at
// once, and with each waiter holding a slot the server answered 503s
// while one request did the work.
func (s *Server) viewSet(ctx context.Context, id string, vw view, slot bool) (*calltree.Set, error) {
	c, err := s.load(id)
	if err != nil {
		return nil, err
	}
	if err := c.CheckRange(vw.q); err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	build := func(c *capture.Capture) *calltree.Set {
		set := calltree.NewSet()
		set.Instructions = c.Meta.Type.Info().CyclesPerInstruction
		set.Add(c, vw.q, vw.reverse, false)
		set.Unit = c.Meta.Unit
		// Sorted now, before the set is shared: its tree needs that, and
		// the views derived from it read its stacks in that order.
		set.Prepare()
		return set
	}
	baseKey := viewKey(vw.q, nil, vw.reverse)
	base := func() (*calltree.Set, error) {
		return s.setOnce(ctx, slot, c, baseKey, func() *calltree.Set { return build(c) })
	}
	if len(vw.ts) == 0 {
		return base()
	}
	key := viewKey(vw.q, vw.ts, vw.reverse)
	if set, ok := s.views.sets.peek(c, key); ok {
		return set, nil
	}
	// A transformed view is derived from the view without transforms
	// (usually the one on screen before), transforming its aggregated
	// stacks rather than the capture's events; that view is had first,
	// so that no build waits for another while it holds a slot. The comm
	// filter reads the transformed stacks' process frames: it takes the
	// long way.
	var from *calltree.Set
	if vw.q.Comm == "" {
		if from, err = base(); err != nil {
			return nil, err
		}
	}
	// Merges stacked from the graph's menu one at a time: the view of the
	// stack but its last steps (the one on screen) is most often kept,
	// and extended by them it changes only the stacks through the new
	// names (calltree.Set.Extend).
	var prev *calltree.Set
	var more []capture.Transform
	for k := len(vw.ts) - 1; k > 0 && from != nil && prev == nil; k-- {
		prev, _ = s.views.sets.peek(c, viewKey(vw.q, vw.ts[:k], vw.reverse))
		more = vw.ts[k:]
	}
	return s.setOnce(ctx, slot, c, key, func() *calltree.Set {
		if prev != nil {
			if set, ok := prev.Extend(more); ok {
				return set
			}
		}
		if from != nil && from.Transformable() {
			return from.Transform(vw.ts)
		}
		return build(s.views.transformed.get(c, vw.ts))
	})
}

// setOnce is views.sets.get, the build in a render slot (waited for while
// ctx lasts) when slot.
func (s *Server) setOnce(ctx context.Context, slot bool, c *capture.Capture, key string, build func() *calltree.Set) (*calltree.Set, error) {
	return s.setOnceOf(ctx, slot, captureKey{c: c, key: key}, build)
}

// setOnceOf is setOnce of any key (a diff's names both sides).
func (s *Server) setOnceOf(ctx context.Context, slot bool, k captureKey, build func() *calltree.Set) (*calltree.Set, error) {
	return s.views.sets.getKey(k, func() (*calltree.Set, error) {
		if slot {
			if err := s.renders.enterWithin(ctx, renderMaxWait); err != nil {
				if errors.Is(err, errBusy) {
					return nil, errOverloaded
				}
				return nil, err
			}
			defer s.renders.leave()
		}
		return build(), nil
	})
}

// failView answers the error of a view's build: a busy server says when
// to ask again, as ServeRendered does.
func failView(w http.ResponseWriter, err error) {
	if errors.Is(err, errOverloaded) {
		w.Header().Set("Retry-After", "1")
	}
	fail(w, err)
}

// analysisRoute is the frame of the per-capture JSON routes: known
// capture, known parameters, answer cached by the canonical query.
func (s *Server) analysisRoute(w http.ResponseWriter, r *http.Request, name string, extra []string, fn func(v url.Values, vw view, out io.Writer) error) {
	s.analysisRouteWith(w, r, name, extra, nil, true, fn)
}

// analysisRouteWarm is analysisRoute with warm, when not nil, started
// beside the view's set when the answer is not cached: work of the
// answer's that does not need the set.
func (s *Server) analysisRouteWarm(w http.ResponseWriter, r *http.Request, name string, extra []string, warm func(vw view), fn func(v url.Values, vw view, out io.Writer) error) {
	s.analysisRouteWith(w, r, name, extra, warm, true, fn)
}

// eventsRoute is analysisRoute for the answers that read the capture's
// events (seen through the transforms) and not the view's set, the time
// views: no set is built for them. threads.json drops from and to, so its
// view was the whole capture's, a second aggregation beside the page's
// when a range was selected.
func (s *Server) eventsRoute(w http.ResponseWriter, r *http.Request, name string, extra []string, fn func(v url.Values, vw view, out io.Writer) error) {
	s.analysisRouteWith(w, r, name, extra, nil, false, fn)
}

// analysisRouteWith is the analysis routes' frame; set: the view's set is
// had (built or waited for) before the answer's render slot.
func (s *Server) analysisRouteWith(w http.ResponseWriter, r *http.Request, name string, extra []string, warm func(vw view), set bool, fn func(v url.Values, vw view, out io.Writer) error) {
	id := chi.URLParam(r, "id")
	v := r.URL.Query()
	if err := checkParams(v, extra...); err != nil {
		fail(w, err)
		return
	}
	vw, err := parseView(v)
	if err != nil {
		fail(w, err)
		return
	}
	if _, err := s.store.Get(id); err != nil {
		notFound(w, id)
		return
	}
	// Check the route's own parameters before the work is cached.
	if err := fn(v, vw, nil); err != nil {
		fail(w, err)
		return
	}
	key := cacheKey(id, name, v)
	if _, ok := s.cache.c.Peek(key); !ok && set {
		// The view's set first, outside the answer's render slot.
		flat := vw
		if name == "summary-json" {
			flat.reverse = false
		}
		if warm != nil {
			go warm(vw)
		}
		if _, err := s.viewSet(r.Context(), id, flat, true); err != nil {
			failView(w, err)
			return
		}
	}
	s.ServeRendered(w, r, key, "application/json", name, func(out io.Writer, _ string) error {
		return fn(v, vw, out)
	})
}

type functionRow struct {
	Name   string `json:"name"`
	Module string `json:"module"`
	File   string `json:"file,omitempty"` // source file and line where known
	Line   int    `json:"line,omitempty"`
	Self   int64  `json:"self"`
	Total  int64  `json:"total"`
}

type diffFunctionRow struct {
	functionRow
	BaseSelf  int64 `json:"base_self"`
	BaseTotal int64 `json:"base_total"`
}

// functionOptions reads sort and limit.
func functionOptions(v url.Values, diff bool) (string, int, error) {
	sorts := calltree.FunctionSorts
	if !diff {
		sorts = sorts[:3]
	}
	by := v.Get("sort")
	if by == "" {
		by = "self"
		if diff {
			by = "delta"
		}
	}
	if !slices.Contains(sorts, by) {
		return "", 0, errorf(http.StatusBadRequest, "sort %s is not supported: allowed values are %s", quote(by), strings.Join(sorts, ", "))
	}
	limit, err := intParam(v, "limit", DefaultFunctions, 1, MaxFunctions)
	return by, limit, err
}

func (s *Server) functionsJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	s.analysisRoute(w, r, "functions-json", []string{"sort", "limit"}, func(v url.Values, vw view, out io.Writer) error {
		by, limit, err := functionOptions(v, false)
		if err != nil || out == nil {
			return err
		}
		set, err := s.captureSet(id, vw)
		if err != nil {
			return err
		}
		total, _ := set.Totals()
		fns := set.Functions()
		calltree.SortFunctions(fns, by, total, 0)
		count := len(fns)
		rows := make([]functionRow, 0, min(limit, len(fns)))
		for _, f := range fns[:min(limit, len(fns))] {
			rows = append(rows, functionRow{f.Name, f.Module, f.File, f.Line, f.Self, f.Total})
		}
		return json.NewEncoder(out).Encode(map[string]any{"unit": set.Unit, "total": total, "count": count, "functions": rows})
	})
}

func (s *Server) treeJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	s.analysisRoute(w, r, "tree-json", []string{"nodes", "zoom"}, func(v url.Values, vw view, out io.Writer) error {
		budget, err := intParam(v, "nodes", DefaultTreeNodes, 1, MaxTreeNodes)
		if err != nil || out == nil {
			return err
		}
		set, err := s.captureSet(id, vw)
		if err != nil {
			return err
		}
		zoom := v.Get("zoom")
		if zoom == "" {
			return writeTreeDoc(out, set, set.Tree("all", budget), false)
		}
		// zoom=A;B;C: the subtree of that frame with a budget of its own,
		// so that zooming in shows what the whole tree had to prune.
		var path []int32
		for _, name := range strings.Split(zoom, ";") {
			id, ok := set.Lookup(name)
			if !ok {
				return errorf(http.StatusNotFound, "zoom: frame %s is not in this view", quote(name))
			}
			path = append(path, id)
		}
		sub := set.Subtree(path)
		return writeTreeDoc(out, set, firstChild(sub.Tree("all", budget)), false)
	})
}

// writeTreeDoc writes {"unit", "total", ..., "tree": TREE}: the tree with
// what a page needs to label it.
func writeTreeDoc(out io.Writer, set *calltree.Set, root *calltree.Node, diff bool) error {
	total, base := set.Totals()
	head := fmt.Sprintf(`{"unit":%q,"total":%d`, set.Unit, total)
	if set.Instructions && !diff {
		// CPI: base_total and each node's base_total are instructions.
		head += `,"instructions":true`
		diff = true
	}
	if diff {
		head += fmt.Sprintf(`,"base_total":%d`, base)
	}
	if _, err := io.WriteString(out, head+`,"tree":`); err != nil {
		return err
	}
	if err := calltree.WriteTree(out, root, diff); err != nil {
		return err
	}
	_, err := io.WriteString(out, "}\n")
	return err
}

func (s *Server) sandwichJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	s.analysisRoute(w, r, "sandwich-json", []string{"fn", "nodes"}, func(v url.Values, vw view, out io.Writer) error {
		fn := v.Get("fn")
		if fn == "" {
			return errorf(http.StatusBadRequest, "fn is missing: give a function's name as functions.json lists it")
		}
		budget, err := intParam(v, "nodes", DefaultSandwichNodes, 1, MaxTreeNodes)
		if err != nil || out == nil {
			return err
		}
		set, err := s.captureSet(id, vw)
		if err != nil {
			return err
		}
		fid, ok := set.Lookup(fn)
		if !ok {
			return errorf(http.StatusNotFound, "function %s is not in this view (with its filters and transforms)", quote(fn))
		}
		callers, callees := set.Sandwich(fid)
		cr := firstChild(callers.Tree("", budget))
		ce := firstChild(callees.Tree("", budget))
		total, _ := set.Totals()
		if _, err := fmt.Fprintf(out, `{"unit":%q,"all":%d,"fn":`, set.Unit, total); err != nil {
			return err
		}
		name, _ := json.Marshal(set.Names[fid])
		fmt.Fprintf(out, `%s,"self":%d,"total":%d,"callers":`, name, ce.Self, ce.Value)
		if err := calltree.WriteTree(out, cr, false); err != nil {
			return err
		}
		io.WriteString(out, `,"callees":`)
		if err := calltree.WriteTree(out, ce, false); err != nil {
			return err
		}
		_, err = io.WriteString(out, "}\n")
		return err
	})
}

// firstChild is the one child of a synthetic root: a sandwich side's
// stacks all start with the function.
func firstChild(n *calltree.Node) *calltree.Node {
	if len(n.Children) == 1 && n.Children[0].Pruned == 0 {
		return n.Children[0]
	}
	return n
}

func (s *Server) summaryJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	// The capture's part of the summary does not need the view's set
	// (only top does): it is worked out beside the set's build, not after.
	warm := func(vw view) {
		// A panic of the build is the request's again when it asks (a
		// failed build is not kept); here it would end the process.
		defer func() { _ = recover() }()
		if c, err := s.load(id); err == nil && c.CheckRange(vw.q) == nil {
			s.captureSummary(c, s.summaryView(c, vw))
		}
	}
	s.analysisRouteWarm(w, r, "summary-json", nil, warm, func(v url.Values, vw view, out io.Writer) error {
		if out == nil {
			return nil
		}
		c, err := s.load(id)
		if err != nil {
			return err
		}
		if err := c.CheckRange(vw.q); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		flat := vw
		flat.reverse = false
		set, err := s.captureSet(id, flat)
		if err != nil {
			return err
		}
		total, _ := set.Totals()
		fns := set.Functions()
		calltree.SortFunctions(fns, "self", total, 0)
		top := []capture.TopFunc{}
		for _, f := range fns[:min(10, len(fns))] {
			top = append(top, capture.TopFunc{Name: f.Name, Self: f.Self, Share: float64(f.Self) / float64(max(total, 1))})
		}
		sum := s.captureSummary(c, s.summaryView(c, vw)) // a copy; its maps and slices are shared, read only
		sum.Top = top
		sum.Samples = total // = functions.json's total, whatever the unit
		return json.NewEncoder(out).Encode(sum)
	})
}

// summaryView is the view whose summary is vw's, but for top: vw without
// its transforms when they keep every event of c and no comm filter reads
// the transformed frames. The events, processes, threads, rates and the
// stacks' completeness are then the selection's, and so is the symbol
// coverage (a merge hides frames, it does not symbolize them): the
// capture's part is the untransformed view's, most often computed already
// since the page showed that view before the transform, instead of a pass
// through the transforms over every stack (25-45 ms on a 1M-sample
// capture). top, from the view's set, is the transformed view's.
func (s *Server) summaryView(c *capture.Capture, vw view) view {
	if len(vw.ts) == 0 || vw.q.Comm != "" {
		return vw
	}
	if !s.keepsEvents(c, vw.ts) {
		return vw
	}
	vw.ts = nil
	return vw
}

// captureSummary is the summary of c seen through the view, without top.
// The findings do not read top.
func (s *Server) captureSummary(c *capture.Capture, vw view) capture.Summary {
	return s.views.summaries.get(c, viewKey(vw.q, vw.ts, false), func() capture.Summary {
		switch {
		case vw.q.Comm == "":
			// Without making the transformed capture, and with the
			// selection's event counts of an earlier view: a pass over a
			// million events was most of a transform's summary.
			counts := s.views.counts.get(c, viewKey(vw.q, nil, false), func() *capture.EventCounts { return c.CountEvents(vw.q) })
			return c.SummarizeThrough(c.Plan(vw.ts), vw.q, nil, counts)
		case len(vw.ts) == 0:
			return c.Summarize(vw.q, nil)
		default:
			return s.views.transformed.get(c, vw.ts).Summarize(vw.q, nil)
		}
	})
}

// diffView is the parsed query of the diff routes: two captures, or two
// ranges of one, with the shared filters and transforms.
type diffView struct {
	ids     [2]string
	qs      [2]capture.Query
	ts      []capture.Transform
	reverse bool
}

var diffSideParams = []string{"base", "compare", "base_from", "base_to", "compare_from", "compare_to"}

func (s *Server) parseDiff(v url.Values, extra ...string) (diffView, error) {
	var d diffView
	if err := names(diffSideParams, analysisNames.listed, extra).without("from", "to").check(v); err != nil {
		return d, err
	}
	for i, name := range []string{"base", "compare"} {
		d.ids[i] = v.Get(name)
		if d.ids[i] == "" {
			return d, errorf(http.StatusBadRequest, "%s is missing: give the ids of the base and compare captures (they may be the same, with different ranges)", name)
		}
		if _, err := s.store.Get(d.ids[i]); !store.ValidID(d.ids[i]) || err != nil {
			return d, errorf(http.StatusNotFound, "%s capture %s not found", name, quote(d.ids[i]))
		}
	}
	for i, side := range []string{"base", "compare"} {
		q, err := capture.ParseQuery(sideValues(v, side))
		if err != nil {
			return d, errorf(http.StatusBadRequest, "%s_from/%s_to: %v", side, side, err)
		}
		d.qs[i] = q
	}
	var err error
	if d.ts, err = parseTransforms(v); err != nil {
		return d, err
	}
	if d.reverse, err = parseBool("reverse", v.Get("reverse")); err != nil {
		return d, err
	}
	return d, nil
}

// diffCaptures loads both sides and refuses captures of different units.
func (s *Server) diffCaptures(ids [2]string, qs [2]capture.Query, ts []capture.Transform) ([2]*capture.Capture, error) {
	var cs [2]*capture.Capture
	for i, side := range []string{"base", "compare"} {
		c, err := s.load(ids[i])
		if err != nil {
			return cs, err
		}
		if err := c.CheckRange(qs[i]); err != nil {
			return cs, errorf(http.StatusBadRequest, "%s_from/%s_to: %v", side, side, err)
		}
		cs[i] = s.views.transformed.get(c, ts)
	}
	if err := sameUnits(cs[0], cs[1]); err != nil {
		return cs, err
	}
	return cs, nil
}

// sameUnits refuses a diff of captures whose values are not comparable.
func sameUnits(base, compare *capture.Capture) error {
	if base.Meta.Unit != compare.Meta.Unit {
		return errorf(http.StatusBadRequest, "base %s is a %s capture in %s and compare %s a %s capture in %s: compare captures of the same unit",
			base.Meta.ID, base.Meta.Type, base.Meta.Unit, compare.Meta.ID, compare.Meta.Type, compare.Meta.Unit)
	}
	return nil
}

func (s *Server) diffSet(d diffView) (*calltree.Set, error) {
	return s.diffSetIn(context.Background(), d, false)
}

// diffSetIn is diffSet, its build in a render slot of its own when slot
// (see viewSet).
func (s *Server) diffSetIn(ctx context.Context, d diffView, slot bool) (*calltree.Set, error) {
	var cs [2]*capture.Capture
	for i, side := range []string{"base", "compare"} {
		c, err := s.load(d.ids[i])
		if err != nil {
			return nil, err
		}
		if err := c.CheckRange(d.qs[i]); err != nil {
			return nil, errorf(http.StatusBadRequest, "%s_from/%s_to: %v", side, side, err)
		}
		cs[i] = c
	}
	if err := sameUnits(cs[0], cs[1]); err != nil {
		return nil, err
	}
	// Keyed by both sides' loaded captures, dropped with either.
	key := captureKey{c: cs[1], base: cs[0], key: "diff|" + viewKey(d.qs[0], d.ts, d.reverse) + "|" + viewKey(d.qs[1], nil, false)}
	return s.setOnceOf(ctx, slot, key, func() *calltree.Set {
		set := calltree.NewSet()
		set.Add(s.views.transformed.get(cs[0], d.ts), d.qs[0], d.reverse, true)
		set.Add(s.views.transformed.get(cs[1], d.ts), d.qs[1], d.reverse, false)
		set.Unit = cs[1].Meta.Unit
		set.Diff = true
		return set
	})
}

func (s *Server) diffRoute(w http.ResponseWriter, r *http.Request, name string, extra []string, fn func(v url.Values, d diffView, out io.Writer) error) {
	v := r.URL.Query()
	d, err := s.parseDiff(v, extra...)
	if err != nil {
		fail(w, err)
		return
	}
	if err := fn(v, d, nil); err != nil {
		fail(w, err)
		return
	}
	key := cacheKey(d.ids[0]+","+d.ids[1], name, v)
	if _, ok := s.cache.c.Peek(key); !ok {
		if _, err := s.diffSetIn(r.Context(), d, true); err != nil {
			failView(w, err)
			return
		}
	}
	s.ServeRendered(w, r, key, "application/json", name, func(out io.Writer, _ string) error {
		return fn(v, d, out)
	})
}

func (s *Server) diffFunctionsJSON(w http.ResponseWriter, r *http.Request) {
	s.diffRoute(w, r, "diff-functions-json", []string{"sort", "limit"}, func(v url.Values, d diffView, out io.Writer) error {
		by, limit, err := functionOptions(v, true)
		if err != nil || out == nil {
			return err
		}
		set, err := s.diffSet(d)
		if err != nil {
			return err
		}
		total, base := set.Totals()
		fns := set.Functions()
		calltree.SortFunctions(fns, by, total, base)
		count := len(fns)
		rows := make([]diffFunctionRow, 0, min(limit, len(fns)))
		for _, f := range fns[:min(limit, len(fns))] {
			rows = append(rows, diffFunctionRow{functionRow{f.Name, f.Module, f.File, f.Line, f.Self, f.Total}, f.BaseSelf, f.BaseTotal})
		}
		return json.NewEncoder(out).Encode(map[string]any{"unit": set.Unit, "total": total, "base_total": base, "count": count, "functions": rows})
	})
}

func (s *Server) diffTreeJSON(w http.ResponseWriter, r *http.Request) {
	s.diffRoute(w, r, "diff-tree-json", []string{"nodes"}, func(v url.Values, d diffView, out io.Writer) error {
		budget, err := intParam(v, "nodes", DefaultTreeNodes, 1, MaxTreeNodes)
		if err != nil || out == nil {
			return err
		}
		set, err := s.diffSet(d)
		if err != nil {
			return err
		}
		return writeTreeDoc(out, set, set.Tree("all", budget), true)
	})
}
