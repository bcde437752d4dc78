package symbolizer

import (
	"sync"
	"testing"
)

// Many goroutines share one Symbolizer and one snapshot while the cache is
// small enough to evict: every answer stays right.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "fixture", cFixture)
	fx := start(t, bin)
	s := New(Options{CacheBytes: 1, DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				name := []string{"alpha_leaf", "beta_middle", "gamma_static"}[(g+i)%3]
				if got := s.User(p, fx.addrs[name]+1, false)[0].Name; got != name {
					select {
					case errs <- got + " != " + name:
					default:
					}
					return
				}
				if i%500 == 0 {
					q, err := s.Snapshot(fx.pid())
					if err == nil {
						q.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
