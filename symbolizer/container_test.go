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
