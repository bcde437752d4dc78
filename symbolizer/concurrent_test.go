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

// Every mapping of a snapshot holds one reference on its file, shared
// between snapshots; closing them all closes every file.
func TestSharedFileRefs(t *testing.T) {
	cmd := startSleeper(t)
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	var ps []*Process
	for range 2 {
		p, err := s.Snapshot(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	want := map[*sharedFile]int{}
	for _, p := range ps {
		for _, m := range p.mappings() {
			if m.file != nil {
				want[m.file]++
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("no mapped file opened")
	}
	s.filesMu.Lock()
	if len(s.files) != len(want) {
		t.Errorf("%d shared files, want %d", len(s.files), len(want))
	}
	for sf, n := range want {
		if sf.refs != n {
			t.Errorf("%s: %d references, want %d", sf.key, sf.refs, n)
		}
	}
	s.filesMu.Unlock()
	for _, p := range ps {
		p.Close()
	}
	if len(s.files) != 0 {
		t.Errorf("%d files still open after every snapshot closed", len(s.files))
	}
}
