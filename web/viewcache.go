package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/scorch-dev/scorch/calltree"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/cache"
)

// views keeps, per server, what the views derive from its loaded captures,
// each kind within a small number of entries, least recently used out
// first. Entries are keyed by the loaded capture (a capture loaded anew
// after an eviction is another pointer) and the view, and dropped with
// their capture: the server's capture cache tells drop when it lets one
// go (evicted, deleted, removed by retention), so that a deleted capture
// is not kept alive by what was derived from it.
type views struct {
	// sets are the call-tree inputs of the last few views: the page asks
	// for tree.json, functions.json, summary.json and sandwich.json of one
	// view at once, and each would otherwise aggregate the capture and
	// apply its transforms again. Sets are read-only once built, so they
	// are shared between requests.
	sets loadOnce[*calltree.Set]
	// summaries keep the capture's part of the last few views' summaries
	// (all but top, which comes from the view's set): the summary route
	// starts it beside the set's build.
	summaries loadOnce[capture.Summary]
	// counts are the last few selections' event counts, shared by the
	// summaries of their views (see captureSummary).
	counts loadOnce[*capture.EventCounts]
	// transformed are the last captures seen through transforms: the page
	// asks for several views of one transform stack at once.
	transformed transformedCache
	// kept says, for the last few transform stacks, whether they keep
	// every event of the capture (capture.KeepsEvents).
	kept loadOnce[bool]
}

func newViews() *views {
	return &views{
		sets:        newLoadOnce[*calltree.Set](4),
		summaries:   newLoadOnce[capture.Summary](4),
		counts:      newLoadOnce[*capture.EventCounts](4),
		transformed: transformedCache{newLoadOnce[*capture.Capture](2)},
		kept:        newLoadOnce[bool](8),
	}
}

// drop forgets everything derived from c, diffs with it as the base
// included. A request still holding c may derive from it again; that
// entry goes the usual way, by recency.
func (v *views) drop(c *capture.Capture) {
	match := func(k captureKey) bool { return k.c == c || k.base == c }
	v.sets.c.RemoveFunc(match)
	v.summaries.c.RemoveFunc(match)
	v.counts.c.RemoveFunc(match)
	v.transformed.l.c.RemoveFunc(match)
	v.kept.c.RemoveFunc(match)
}

// loadOnce is a small use of internal/cache for values derived from a
// loaded capture: built once per key however many requests ask at the same
// time, the least recently used dropped first.
type loadOnce[V any] struct {
	c *cache.Cache[captureKey, V]
}

type captureKey struct {
	c    *capture.Capture
	base *capture.Capture // a diff's other side; nil otherwise
	key  string
}

func newLoadOnce[V any](entries int64) loadOnce[V] {
	return loadOnce[V]{cache.New[captureKey, V](cache.Options[V]{MaxCost: int64(entries)})}
}

// get returns the value of (c, key), building it when it is not kept. A
// build that panicked is not kept; its panic goes on to the request's
// recoverer, as it would without the cache.
func (l loadOnce[V]) get(c *capture.Capture, key string, build func() V) V {
	v, _, err := l.c.Get(captureKey{c: c, key: key}, func() (V, error) { return build(), nil })
	if err != nil {
		panic(err)
	}
	return v
}

// getKey is get of any key, with a build that may fail; failures are not
// kept.
func (l loadOnce[V]) getKey(k captureKey, build func() (V, error)) (V, error) {
	v, _, err := l.c.Get(k, build)
	var pe *cache.PanicError
	if errors.As(err, &pe) {
		panic(err)
	}
	return v, err
}

// peek returns the value of (c, key) when it is kept.
func (l loadOnce[V]) peek(c *capture.Capture, key string) (V, bool) {
	return l.c.Peek(captureKey{c: c, key: key})
}

// viewKey is the canonical spelling of what a set depends on.
func viewKey(q capture.Query, ts []capture.Transform, reverse bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%g|%g|%v|%v|%v|%s|%v|%v|%s|%v", q.From, q.To, q.Ranges, q.PIDs, q.TIDs, q.Comm, q.CPUs, q.IncludeIdle, q.View, reverse)
	for _, t := range ts {
		b.WriteString("|" + t.String())
	}
	return b.String()
}

type transformedCache struct{ l loadOnce[*capture.Capture] }

// get returns c seen through ts, computed once for the last two stacks.
func (tc transformedCache) get(c *capture.Capture, ts []capture.Transform) *capture.Capture {
	if len(ts) == 0 {
		return c
	}
	return tc.l.get(c, viewKey(capture.Query{}, ts, false), func() *capture.Capture { return c.Transform(ts) })
}

// keepsEvents says, once per capture and transform stack, whether ts keep
// every event of c (capture.KeepsEvents): the answers read from the events
// alone are then the untransformed capture's.
func (s *Server) keepsEvents(c *capture.Capture, ts []capture.Transform) bool {
	return s.views.kept.get(c, viewKey(capture.Query{}, ts, false), func() bool { return c.KeepsEvents(ts) })
}

// untransformedEvents is r without its transforms (t) when they keep every
// event of capture id and no comm filter reads the transformed frames: the
// answers that read only the events (heatmap.json, threads.json) are then
// the untransformed capture's, most often cached since the page drew the
// view before the transform. A merge of a function called from one depth
// would otherwise cost the heatmap and the tracks a pass over the stacks
// and each a pass over the events (200 ms of CPU on a 1M-sample capture)
// for the same answers. r itself when anything else holds (no transform,
// bad parameters, the capture not there: the route answers as before).
func (s *Server) untransformedEvents(r *http.Request, id string) *http.Request {
	v := r.URL.Query()
	if len(v["t"]) == 0 || len(v["comm"]) > 0 {
		return r
	}
	ts, err := capture.ParseTransforms(v["t"])
	if err != nil {
		return r
	}
	c, err := s.load(id)
	if err != nil || !s.keepsEvents(c, ts) {
		return r
	}
	v.Del("t")
	out := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = v.Encode()
	out.URL = &u
	return out
}
