package cache

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// op is one step of a scripted use of a cache of strings costing their
// length.
type op struct {
	get    string // Get this key, loading the value key (or failing when it starts with "!")
	put    string // Put this key with the value put
	remove string
	peek   string
	hit    bool // for get: want a hit
}

func TestCache(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options[string]
		ops       []op
		keys      []string // kept after the ops, most recent first
		stats     Stats
		loads     int
		wantErrOn string // a get whose error is expected
	}{
		{
			name:  "least recently used out first",
			opts:  Options[string]{MaxCost: 3},
			ops:   []op{{get: "a"}, {get: "b"}, {get: "c"}, {get: "a", hit: true}, {get: "d"}, {get: "b"}},
			keys:  []string{"b", "d", "a"},
			stats: Stats{Hits: 1, Misses: 5, Evictions: 2, Entries: 3, Cost: 3},
			loads: 5,
		},
		{
			name:  "bounded by cost",
			opts:  Options[string]{MaxCost: 6, Cost: func(s string) int64 { return int64(len(s)) }},
			ops:   []op{{get: "aa"}, {get: "bbb"}, {get: "c"}, {get: "dd"}},
			keys:  []string{"dd", "c", "bbb"},
			stats: Stats{Misses: 4, Evictions: 1, Entries: 3, Cost: 6},
			loads: 4,
		},
		{
			name:  "a value costing more than the bound is kept alone",
			opts:  Options[string]{MaxCost: 4, Cost: func(s string) int64 { return int64(len(s)) }},
			ops:   []op{{get: "a"}, {get: "b"}, {get: "hugevalue"}, {get: "hugevalue", hit: true}},
			keys:  []string{"hugevalue"},
			stats: Stats{Hits: 1, Misses: 3, Evictions: 2, Entries: 1, Cost: 9},
			loads: 3,
		},
		{
			name:  "a value costing more than MaxEntryCost is not kept",
			opts:  Options[string]{MaxCost: 100, MaxEntryCost: 4, Cost: func(s string) int64 { return int64(len(s)) }},
			ops:   []op{{get: "a"}, {get: "hugevalue"}, {get: "hugevalue"}, {get: "a", hit: true}},
			keys:  []string{"a"},
			stats: Stats{Hits: 1, Misses: 3, Entries: 1, Cost: 1},
			loads: 3,
		},
		{
			name:      "errors are not kept by default",
			opts:      Options[string]{MaxCost: 3},
			ops:       []op{{get: "!x"}, {get: "!x"}, {get: "a"}},
			keys:      []string{"a"},
			stats:     Stats{Misses: 3, Entries: 1, Cost: 1},
			loads:     3,
			wantErrOn: "!x",
		},
		{
			name:      "negative entries with KeepErrors",
			opts:      Options[string]{MaxCost: 3, KeepErrors: true},
			ops:       []op{{get: "!x"}, {get: "!x", hit: true}, {peek: "!x"}, {get: "a"}},
			keys:      []string{"a", "!x"},
			stats:     Stats{Hits: 1, Misses: 2, Entries: 2, Cost: 2},
			loads:     2,
			wantErrOn: "!x",
		},
		{
			name:  "put, peek and remove",
			opts:  Options[string]{MaxCost: 2},
			ops:   []op{{put: "a"}, {put: "b"}, {peek: "a"}, {put: "c"}, {get: "a", hit: true}, {remove: "a"}, {get: "a"}},
			keys:  []string{"a", "c"},
			stats: Stats{Hits: 1, Misses: 1, Evictions: 1, Entries: 2, Cost: 2},
			loads: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, string](tt.opts)
			loads := 0
			for i, o := range tt.ops {
				switch {
				case o.get != "":
					v, hit, err := c.Get(o.get, func() (string, error) {
						loads++
						if strings.HasPrefix(o.get, "!") {
							return "", fmt.Errorf("no %s", o.get)
						}
						return o.get, nil
					})
					if hit != o.hit {
						t.Errorf("op %d: get %s: hit %v, want %v", i, o.get, hit, o.hit)
					}
					if o.get == tt.wantErrOn {
						if err == nil || !strings.Contains(err.Error(), "no "+o.get) {
							t.Errorf("op %d: get %s: error %v, want the load's", i, o.get, err)
						}
					} else if err != nil || v != o.get {
						t.Errorf("op %d: get %s = %q, %v", i, o.get, v, err)
					}
				case o.put != "":
					c.Put(o.put, o.put)
				case o.remove != "":
					c.Remove(o.remove)
				case o.peek != "":
					v, ok := c.Peek(o.peek)
					if want := !strings.HasPrefix(o.peek, "!"); ok != want || ok && v != o.peek {
						t.Errorf("op %d: peek %s = %q, %v; want found %v", i, o.peek, v, ok, want)
					}
				}
			}
			if got := c.Keys(); !slices.Equal(got, tt.keys) {
				t.Errorf("keys %q, want %q", got, tt.keys)
			}
			if got := c.Stats(); got != tt.stats {
				t.Errorf("stats %+v, want %+v", got, tt.stats)
			}
			if loads != tt.loads {
				t.Errorf("%d loads, want %d", loads, tt.loads)
			}
		})
	}
}

// A loader that panics gives an error to its caller and to those waiting
// for it, and the next caller loads again.
func TestPanic(t *testing.T) {
	for _, keepErrors := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepErrors=%v", keepErrors), func(t *testing.T) {
			c := New[string, int](Options[int]{MaxCost: 10, KeepErrors: keepErrors})
			started, release := make(chan struct{}), make(chan struct{})
			first := make(chan error, 1)
			go func() {
				_, _, err := c.Get("k", func() (int, error) {
					close(started)
					<-release
					panic("boom")
				})
				first <- err
			}()
			<-started
			waiter := make(chan error, 1)
			go func() {
				_, hit, err := c.Get("k", func() (int, error) { return 2, nil })
				if !hit {
					err = nil // came too late and loaded: the check below then fails
				}
				waiter <- err
			}()
			waitFor(t, func() bool { return c.Stats().Hits == 1 })
			close(release)
			for who, ch := range map[string]chan error{"caller": first, "waiter": waiter} {
				err := <-ch
				var pe *PanicError
				if !errors.Is(err, ErrPanicked) || !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
					t.Errorf("%s got %v, want ErrPanicked with the panic's value and stack", who, err)
				}
			}
			v, hit, err := c.Get("k", func() (int, error) { return 3, nil })
			if v != 3 || hit || err != nil {
				t.Errorf("get after the panic = %d, %v, %v: want a new load", v, hit, err)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// A key removed while it loads is not kept, and a caller after the removal
// loads again instead of waiting for the stale load.
func TestRemoveWhileLoading(t *testing.T) {
	tests := []struct {
		name   string
		remove func(c *Cache[string, string])
		kept   bool
	}{
		{"remove", func(c *Cache[string, string]) { c.Remove("a,b|x") }, false},
		{"remove func", func(c *Cache[string, string]) {
			c.RemoveFunc(func(k string) bool { return strings.HasPrefix(k, "a,") })
		}, false},
		{"clear", func(c *Cache[string, string]) { c.Clear() }, false},
		{"another key", func(c *Cache[string, string]) { c.Remove("a") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, string](Options[string]{MaxCost: 10})
			started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				c.Get("a,b|x", func() (string, error) { close(started); <-release; return "old", nil })
			}()
			<-started
			tt.remove(c)
			if !tt.kept {
				// Does not wait for the load under way (it would hang).
				v, hit, _ := c.Get("a,b|x", func() (string, error) { return "new", nil })
				if v != "new" || hit {
					t.Errorf("get after the removal = %q, hit %v: want a new load", v, hit)
				}
				c.Remove("a,b|x")
			}
			close(release)
			<-done
			if _, ok := c.Peek("a,b|x"); ok != tt.kept {
				t.Errorf("kept %v after the load finished, want %v", ok, tt.kept)
			}
		})
	}
}

// Entries kept by a caller say when they are evicted; Touch keeps one recent.
func TestEntry(t *testing.T) {
	c := New[string, string](Options[string]{MaxCost: 2})
	load := func(k string) func() (string, error) { return func() (string, error) { return k, nil } }
	a, _ := c.GetEntry("a", load("a"))
	c.Get("b", load("b"))
	c.Touch(a) // b is now the least recent
	c.Get("c", load("c"))
	if a.Evicted() || a.Value() != "a" || a.Err() != nil {
		t.Errorf("touched entry: evicted %v value %q err %v", a.Evicted(), a.Value(), a.Err())
	}
	if got := c.Keys(); !slices.Equal(got, []string{"c", "a"}) {
		t.Errorf("keys %q, want c a", got)
	}
	c.Get("d", load("d"))
	c.Get("e", load("e"))
	if !a.Evicted() {
		t.Error("entry not marked evicted")
	}
	c.Touch(a) // an evicted entry is not brought back
	if got := c.Keys(); !slices.Equal(got, []string{"e", "d"}) {
		t.Errorf("keys %q after touching an evicted entry, want e d", got)
	}
}

// Many goroutines over few keys, with evictions (and removals) under way:
// each key is loaded once at a time (a removal lets a new load start
// beside the stale one), values are never mixed up, the bound holds, and
// the counters add up. Run with -race.
func TestConcurrent(t *testing.T) {
	for _, removals := range []bool{false, true} {
		t.Run(fmt.Sprintf("removals=%v", removals), func(t *testing.T) { testConcurrent(t, removals) })
	}
}

func testConcurrent(t *testing.T, removals bool) {
	const (
		goroutines = 16
		rounds     = 500
		keys       = 12
	)
	c := New[int, string](Options[string]{MaxCost: 20, Cost: func(s string) int64 { return int64(len(s)) }, KeepErrors: true})
	var loading [keys]atomic.Int32
	var loads, gets atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 10)
	report := func(err error) {
		select {
		case errc <- err:
		default: // enough reported
		}
	}
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				k := (g*7 + i*13) % keys
				gets.Add(1)
				v, _, err := c.Get(k, func() (string, error) {
					if loading[k].Add(1) > 1 && !removals {
						report(fmt.Errorf("key %d loaded twice at once", k))
					}
					defer loading[k].Add(-1)
					loads.Add(1)
					time.Sleep(time.Duration(k%3) * 10 * time.Microsecond)
					switch k % 6 {
					case 4:
						return "", fmt.Errorf("key %d fails", k)
					case 5:
						if i%2 == 0 {
							panic(fmt.Sprintf("key %d panics", k))
						}
					}
					return strings.Repeat(string(rune('a'+k)), 1+k%4), nil
				})
				switch {
				case k%6 == 4:
					if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key %d fails", k)) {
						report(fmt.Errorf("key %d: error %v", k, err))
					}
				case k%6 == 5 && err != nil:
					if !errors.Is(err, ErrPanicked) {
						report(fmt.Errorf("key %d: error %v", k, err))
					}
				case err != nil || v != strings.Repeat(string(rune('a'+k)), 1+k%4):
					report(fmt.Errorf("key %d = %q, %v", k, v, err))
				}
				if removals && i%50 == 0 {
					c.Remove((k + 1) % keys)
				}
				if st := c.Stats(); st.Cost > 20 {
					report(fmt.Errorf("cost %d over the bound 20", st.Cost))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st := c.Stats()
	if st.Hits+st.Misses != uint64(gets.Load()) || st.Misses != uint64(loads.Load()) {
		t.Errorf("stats %+v: hits+misses should be the %d gets, misses the %d loads", st, gets.Load(), loads.Load())
	}
	if st.Evictions == 0 || st.Hits == 0 {
		t.Errorf("stats %+v: the test should have seen hits and evictions", st)
	}
}

// Concurrent callers of one key share one load.
func TestLoadOnce(t *testing.T) {
	c := New[string, int](Options[int]{MaxCost: 10})
	release := make(chan struct{})
	var loads atomic.Int32
	var wg sync.WaitGroup
	results := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, _ := c.Get("k", func() (int, error) { loads.Add(1); <-release; return 42, nil })
			results <- v
		}()
	}
	waitFor(t, func() bool { st := c.Stats(); return st.Hits+st.Misses == 8 })
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 42 {
			t.Errorf("got %d, want 42", v)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}
	if st := c.Stats(); st.Hits != 7 || st.Misses != 1 {
		t.Errorf("stats %+v, want 7 hits and 1 miss", st)
	}
}

// A value that grows after it is kept is charged again, and the least
// recent others make room for it.
func TestRecost(t *testing.T) {
	size := map[string]int64{"a": 1, "b": 1, "c": 1}
	c := New[string, string](Options[string]{MaxCost: 4, Cost: func(v string) int64 { return size[v] }})
	for _, k := range []string{"a", "b", "c"} {
		c.Get(k, func() (string, error) { return k, nil })
	}
	size["c"] = 3
	c.Recost("c")
	if st := c.Stats(); st.Cost != 4 || st.Entries != 2 || st.Evictions != 1 {
		t.Errorf("after c grew to 3: %+v, want cost 4 in 2 entries, 1 eviction", st)
	}
	if got := c.Keys(); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("keys %q, want c b (a, the least recent, evicted)", got)
	}
	size["c"] = 10 // more than the bound: kept alone
	c.Recost("c")
	if st := c.Stats(); st.Cost != 10 || st.Entries != 1 {
		t.Errorf("after c grew to 10: %+v, want it alone", st)
	}
	c.Recost("zz") // not kept: nothing happens
	if st := c.Stats(); st.Cost != 10 {
		t.Errorf("recost of a missing key changed the cost: %+v", st)
	}
}

// TestOnRemove checks that every value the cache lets go of reaches
// OnRemove once, outside the lock (the hook uses the cache itself).
func TestOnRemove(t *testing.T) {
	var c *Cache[string, string]
	var got []string
	c = New[string, string](Options[string]{MaxCost: 2, MaxEntryCost: 5,
		Cost: func(v string) int64 { return int64(len(v)) },
		OnRemove: func(v string) {
			got = append(got, v)
			c.Stats() // would deadlock if called under the lock
		}})
	load := func(v string) func() (string, error) { return func() (string, error) { return v, nil } }
	c.Get("a", load("a"))
	c.Get("b", load("b"))
	c.Get("c", load("c")) // evicts a
	c.Put("b", "B")       // replaces b
	c.Remove("c")
	c.Get("x", func() (string, error) { return "", errors.New("no") }) // failed: nothing to let go of
	c.Get("big", load("toolarge"))                                     // beyond MaxEntryCost: never kept
	want := []string{"a", "b", "c", "toolarge"}
	if !slices.Equal(got, want) {
		t.Errorf("OnRemove saw %q, want %q", got, want)
	}
	if v, ok := c.Peek("b"); !ok || v != "B" {
		t.Errorf("b = %q %v after the Put, want B", v, ok)
	}
}
