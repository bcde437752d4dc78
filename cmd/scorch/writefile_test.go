package main

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/scorch-dev/scorch/internal/testutil"
)

func writeHello(w io.Writer) error {
	_, err := io.WriteString(w, "hello\n")
	return err
}

func TestWriteFileRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.folded")
	if err := os.WriteFile(path, []byte("old contents, longer than the new ones\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, nil, writeHello); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "hello\n" {
		t.Errorf("file holds %q, want %q", got, "hello\n")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the output (no temporary left)", len(entries))
	}
}

// A device named by -o stays the device: the regression made
// `scorch record -o /dev/null` replace /dev/null with a regular file.
func TestWriteFileDeviceInPlace(t *testing.T) {
	testutil.RequireRoot(t) // mknod
	dir := t.TempDir()
	null := filepath.Join(dir, "null")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("mknod c 1 3: %v (no device nodes on this file system)", err)
	}
	if err := writeFile(null, nil, writeHello); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(null)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("after writing, %s is %v, want still a character device", null, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the device", len(entries))
	}
}

func TestWriteFileFIFOInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := writeFile(fifo, nil, writeHello); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello\n" {
		t.Errorf("reader of the FIFO got %q, want %q", s, "hello\n")
	}
	fi, _ := os.Lstat(fifo)
	if fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("after writing, %s is %v, want still a FIFO", fifo, fi.Mode())
	}
}

func TestWriteFileSymlinkInPlace(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("old contents, longer than the new ones\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(link, nil, writeHello); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(link)
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after writing, %s is %v, want still a symlink", link, fi.Mode())
	}
	if b, _ := os.ReadFile(target); string(b) != "hello\n" {
		t.Errorf("symlink target holds %q, want %q", b, "hello\n")
	}
}

func TestWriteFileDirectory(t *testing.T) {
	if err := writeFile(t.TempDir(), nil, writeHello); err == nil {
		t.Error("writing to a directory succeeded, want an error")
	}
}
