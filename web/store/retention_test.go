package store

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Six Prune(3, 0) at once over 12 captures leave 3 (they left 0: each call
// deleted what it had counted).
func TestPruneConcurrent(t *testing.T) {
	for round := range 20 {
		s, err := Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for i := range 12 {
			finished(t, s, t0.Add(time.Duration(i)*time.Minute), 10)
		}
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Prune(3, 0) }()
		}
		wg.Wait()
		if n := s.Len(); n != 3 {
			t.Fatalf("round %d: %d captures left, want 3", round, n)
		}
	}
}

// A held capture is skipped, even when it is the oldest, until released.
func TestPruneSkipsHeld(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	oldest := finished(t, s, t0, 10)
	release := s.Hold(oldest.ID)
	var others []string
	for i := 1; i < 4; i++ {
		others = append(others, finished(t, s, t0.Add(time.Duration(i)*time.Minute), 10).ID)
	}
	removed := s.Prune(2, 0)
	if len(removed) != 2 || removed[0] != others[0] || removed[1] != others[1] {
		t.Fatalf("removed %v, want the two oldest not held (%v)", removed, others[:2])
	}
	if _, err := s.Get(oldest.ID); err != nil {
		t.Fatalf("the held capture was removed")
	}
	release()
	release() // twice is harmless
	if removed := s.Prune(2, 0); len(removed) != 0 {
		// 2 left: the held one and the newest.
		t.Fatalf("removed %v with 2 left", removed)
	}
	if removed := s.Prune(1, 0); len(removed) != 1 || removed[0] != oldest.ID {
		t.Fatalf("after release removed %v, want %s", removed, oldest.ID)
	}
}

// A capture found damaged when read stays damaged after a restart (it was
// listed "done" again after every restart until read).
func TestDamagedPersists(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := finished(t, s, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 10)
	path := filepath.Join(dir, r.ID, captureFile)
	b, _ := os.ReadFile(path)
	for i := len(b) / 2; i < len(b)-8; i++ {
		b[i] ^= 0xff // same size, damaged contents
	}
	os.WriteFile(path, b, 0o640)
	if _, err := s.Load(r.ID); err == nil {
		t.Fatal("a damaged capture loaded")
	}
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(r.ID)
	if err != nil || got.Status != StatusDamaged || got.Error == "" {
		t.Errorf("after a restart: %+v %v, want damaged with the reason", got, err)
	}
}
