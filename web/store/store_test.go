package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

func testCapture(n int) *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Timestamps: true, Duration: time.Second})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	fn := b.Frame(capture.Frame{Name: "work"})
	st := b.Stack([]uint32{app, fn})
	for i := 0; i < n; i++ {
		b.Add(capture.Event{Time: int64(i), Value: 1, Stack: st, PID: 7, TID: 7})
	}
	return b.Capture()
}

func finished(t *testing.T, s *Store, at time.Time, n int) Record {
	t.Helper()
	r := Record{ID: NewID(at), Type: capture.CPU, Start: at, Params: capture.Params{Type: capture.CPU}}
	if err := s.Begin(r); err != nil {
		t.Fatal(err)
	}
	r.Status = StatusDone
	r.Samples = uint64(n)
	if err := s.Finish(r, testCapture(n)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(r.ID)
	return got
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	done := finished(t, s, t0, 50)
	running := Record{ID: NewID(t0.Add(time.Minute)), Type: capture.CPU, Start: t0.Add(time.Minute)}
	if err := s.Begin(running); err != nil {
		t.Fatal(err)
	}
	damaged := finished(t, s, t0.Add(2*time.Minute), 10)
	truncated := finished(t, s, t0.Add(3*time.Minute), 10)
	// Corrupt one capture file in place (same size), cut another short.
	path := filepath.Join(dir, damaged.ID, captureFile)
	data, _ := os.ReadFile(path)
	for i := 20; i < len(data)-8; i++ {
		data[i] ^= 0xff
	}
	os.WriteFile(path, data, 0o640)
	tpath := filepath.Join(dir, truncated.ID, captureFile)
	tdata, _ := os.ReadFile(tpath)
	os.WriteFile(tpath, tdata[:len(tdata)/2], 0o640)
	// A folder whose record is garbage, and one that is not a capture.
	bad := NewID(t0.Add(4 * time.Minute))
	os.MkdirAll(filepath.Join(dir, bad), 0o750)
	os.WriteFile(filepath.Join(dir, bad, recordFile), []byte("{not json"), 0o640)
	os.MkdirAll(filepath.Join(dir, "lost+found"), 0o750)

	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{done.ID: StatusDone, running.ID: StatusFailed, damaged.ID: StatusDone, truncated.ID: StatusDamaged, bad: StatusDamaged}
	list := s2.List()
	if len(list) != len(want) {
		t.Fatalf("listed %d captures, want %d: %+v", len(list), len(want), list)
	}
	for _, r := range list {
		if r.Status != want[r.ID] {
			t.Errorf("%s: status %s, want %s (%s)", r.ID, r.Status, want[r.ID], r.Error)
		}
	}
	if list[0].ID != bad || list[len(list)-1].ID != done.ID {
		t.Errorf("not newest first: %s .. %s", list[0].ID, list[len(list)-1].ID)
	}
	c, err := s2.Load(done.ID)
	if err != nil || len(c.Events) != 50 {
		t.Fatalf("load: %v", err)
	}
	// The corrupted file of the right size is found when it is read.
	if _, err := s2.Load(damaged.ID); err == nil {
		t.Fatal("corrupt capture loaded")
	}
	if r, _ := s2.Get(damaged.ID); r.Status != StatusDamaged {
		t.Fatalf("after a failed load: %s", r.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+running.ID)); !os.IsNotExist(err) {
		t.Error("the temporary folder was left behind")
	}
}

func TestPrune(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, finished(t, s, t0.Add(time.Duration(i)*time.Minute), 100).ID)
	}
	one, _ := s.Get(ids[0])
	tests := []struct {
		keep      int
		keepBytes int64
		left      int
	}{
		{0, 0, 4},
		{3, 0, 3},
		{0, 2 * one.Bytes, 2},
		{1, 0, 1},
	}
	for _, tt := range tests {
		s.Prune(tt.keep, tt.keepBytes)
		list := s.List()
		if s.Len() != len(list) {
			t.Fatalf("Len %d, List has %d", s.Len(), len(list))
		}
		if len(list) != tt.left || list[0].ID != ids[3] {
			t.Fatalf("keep %d/%d bytes: %d left, newest %s", tt.keep, tt.keepBytes, len(list), list[0].ID)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{NewID(time.Now()), true},
		{"20260102-030405-0a1b2c3d", true},
		{"../../etc/passwd", false},
		{"20260102-030405-0a1b2c3d/..", false},
		{"20260102-030405-0A1B2C3D", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.ok {
			t.Errorf("ValidID(%q) = %v", tt.id, got)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"format":1,"record":{"id":"20260102-030405-0a1b2c3d","type":"cpu","status":"done","start":"2026-01-02T03:04:05Z"}}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRecord(data)
		if err == nil && (!ValidID(r.ID) || r.Status == "") {
			t.Fatalf("accepted a record with id %q status %q", r.ID, r.Status)
		}
	})
}

// Retention removes what was stored first, not what was recorded first: an
// import of an old recording stored last survives.
func TestPruneKeepsNewImport(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	older := finished(t, s, t0, 100)
	imp := Record{ID: NewID(t0.Add(time.Hour)), Type: capture.CPU, Start: t0.AddDate(-5, 0, 0), Params: capture.Params{Type: capture.CPU}}
	if err := s.Begin(imp); err != nil {
		t.Fatal(err)
	}
	imp.Status = StatusDone
	if err := s.Finish(imp, testCapture(10)); err != nil {
		t.Fatal(err)
	}
	removed := s.Prune(1, 0)
	if len(removed) != 1 || removed[0] != older.ID {
		t.Fatalf("removed %v, want only the capture stored first (%s)", removed, older.ID)
	}
	if _, err := s.Get(imp.ID); err != nil {
		t.Errorf("the new import was removed: %v", err)
	}
}
