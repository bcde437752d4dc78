package web

import (
	"fmt"
	"strings"
	"sync"

	"github.com/scorch-dev/scorch/calltree"
	"github.com/scorch-dev/scorch/capture"
)

// setCache keeps the call-tree inputs of the last few views: the page asks
// for tree.json, functions.json, summary.json and sandwich.json of one
// view at once, and each would otherwise aggregate the capture and apply
// its transforms again. Entries are keyed by the loaded capture (a capture
// loaded anew after a delete or an eviction is another pointer) and the
// view; the oldest goes first. Sets are read-only once built, so they are
// shared between requests.
type setCache struct {
	mu      sync.Mutex
	max     int
	entries []*setEntry // newest last
}

type setEntry struct {
	c    *capture.Capture
	key  string
	once sync.Once
	set  *calltree.Set
}

// viewSets is shared by the servers of a process: its keys are captures,
// which no two servers share.
var viewSets = &setCache{max: 4}

func (sc *setCache) get(c *capture.Capture, key string, build func() *calltree.Set) *calltree.Set {
	sc.mu.Lock()
	var e *setEntry
	for i, x := range sc.entries {
		if x.c == c && x.key == key {
			e = x
			sc.entries = append(append(sc.entries[:i:i], sc.entries[i+1:]...), e)
			break
		}
	}
	if e == nil {
		e = &setEntry{c: c, key: key}
		sc.entries = append(sc.entries, e)
		if len(sc.entries) > sc.max {
			sc.entries = append([]*setEntry(nil), sc.entries[len(sc.entries)-sc.max:]...)
		}
	}
	sc.mu.Unlock()
	e.once.Do(func() { e.set = build() })
	return e.set
}

// viewKey is the canonical spelling of what a set depends on.
func viewKey(q capture.Query, ts []capture.Transform, reverse bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%g|%g|%v|%v|%s|%v|%v|%s|%v", q.From, q.To, q.PIDs, q.TIDs, q.Comm, q.CPUs, q.IncludeIdle, q.View, reverse)
	for _, t := range ts {
		b.WriteString("|" + t.String())
	}
	return b.String()
}

// transformedCache keeps the last captures seen through transforms: the
// page asks for several views of one transform stack at once.
type transformedCache struct {
	mu      sync.Mutex
	entries []*transformedEntry // newest last
}

type transformedEntry struct {
	c    *capture.Capture
	key  string
	once sync.Once
	out  *capture.Capture
}

var transformed = &transformedCache{}

// get returns c seen through ts, computed once for the last two stacks.
func (tc *transformedCache) get(c *capture.Capture, ts []capture.Transform) *capture.Capture {
	if len(ts) == 0 {
		return c
	}
	key := viewKey(capture.Query{}, ts, false)
	tc.mu.Lock()
	var e *transformedEntry
	for _, x := range tc.entries {
		if x.c == c && x.key == key {
			e = x
			break
		}
	}
	if e == nil {
		e = &transformedEntry{c: c, key: key}
		tc.entries = append(tc.entries, e)
		if len(tc.entries) > 2 {
			tc.entries = append([]*transformedEntry(nil), tc.entries[len(tc.entries)-2:]...)
		}
	}
	tc.mu.Unlock()
	e.once.Do(func() { e.out = c.Transform(ts) })
	return e.out
}
