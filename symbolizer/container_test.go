package symbolizer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A binary deleted (or replaced) before the snapshot is read through
// /proc/PID/map_files.
func TestDeletedBeforeSnapshot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("map_files needs root (CAP_CHECKPOINT_RESTORE)")
	}
	dir := t.TempDir()
	bin := buildC(t, dir, "gone", cFixture, "-fPIE", "-pie")
	fx := start(t, bin)
	// Replace the file by another one at the same path: the process keeps
	// the old inode, and the path now names a different file.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, "an impostor, not the mapped binary")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, name := range []string{"alpha_leaf", "beta_middle"} {
		fr := s.User(p, fx.addrs[name]+1, false)[0]
		if fr.Name != name || fr.Module != bin {
			t.Errorf("got %+v, want %s in %s", fr, name, bin)
		}
	}
}

// Paths are resolved inside the process's root: an absolute symlink in a
// container points into the container, not at the host's file.
func TestOpenInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	writeFile(t, filepath.Join(root, "etc", "hostname"), "container\n")
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "lib", "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	rf := os.NewFile(uintptr(fd), root)
	defer rf.Close()
	tests := []struct {
		path string
		want string
	}{
		{"/lib/link", "container\n"},
		{"/etc/hostname", "container\n"},
		{"/../../etc/hostname", "container\n"},
	}
	for _, tt := range tests {
		f, err := openInRoot(rf, "", tt.path)
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
			continue
		}
		b := make([]byte, 64)
		n, _ := f.Read(b)
		f.Close()
		if string(b[:n]) != tt.want {
			t.Errorf("%s read %q, want %q", tt.path, b[:n], tt.want)
		}
	}
	// The perf map must not follow any symlink.
	os.MkdirAll(filepath.Join(root, "tmp"), 0o755)
	os.Symlink("/etc/hostname", filepath.Join(root, "tmp", "perf-1.map"))
	if f, err := openPerfMap(rf, "", 1, "/tmp/perf-1.map"); err == nil {
		f.Close()
		t.Error("perf map symlink followed")
	}
}

// Two copies of one binary (different inodes, as in two container images)
// share one parse through their build ID.
func TestSharedByBuildID(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "fixture", cFixture, "-fPIE", "-pie")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	bin2 := filepath.Join(dir, "copy")
	if err := os.WriteFile(bin2, b, 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	for _, path := range []string{bin, bin2} {
		fx := start(t, path)
		p, err := s.Snapshot(fx.pid())
		if err != nil {
			t.Fatal(err)
		}
		fr := s.User(p, fx.addrs["beta_middle"]+1, false)[0]
		if fr.Name != "beta_middle" || fr.Module != path {
			t.Errorf("got %+v, want beta_middle in %s", fr, path)
		}
		p.Close()
	}
	// Only the fixture's file was symbolized: one parse for both copies.
	if n := s.loads.Load(); n != 1 {
		t.Errorf("two copies parsed %d times, want 1", n)
	}
}
