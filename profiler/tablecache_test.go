package profiler

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// cacheProg builds a small C program with a given build ID (16 hex
// digits: every build has the same size) into path.
func cacheProg(t *testing.T, path, buildID string) {
	t.Helper()
	testutil.RequireTool(t, "gcc")
	src := filepath.Join(t.TempDir(), "p.c")
	code := "int f(int x) { return x * 3; }\nint main(int argc, char **argv) { return f(argc); }\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-Wl,--build-id=0x"+buildID, "-o", path, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
}

// mappingOf is an executable mapping of path keyed as the symbolizer keys
// files (device, inode, size, mtime).
func mappingOf(t *testing.T, path string) symbolizer.ExecMapping {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return symbolizer.ExecMapping{
		Path: path,
		Key:  fmt.Sprintf("%x:%x:%x:%x", sys.Dev, sys.Ino, st.Size(), st.ModTime().UnixNano()),
		Open: func() (io.ReaderAt, io.Closer, error) {
			f, err := os.Open(path)
			return f, f, err
		},
	}
}

func TestTableCache(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "prog")
	cacheProg(t, bin, "0123456789abcdef")
	first := mappingOf(t, bin)
	tests := []struct {
		name string
		// change alters the file or the cache before the lookup and
		// returns the mapping to look up.
		change    func(t *testing.T, c *tableCache) symbolizer.ExecMapping
		wantBuilt bool
	}{
		{"first capture builds", func(*testing.T, *tableCache) symbolizer.ExecMapping { return first }, true},
		{"next capture reads it", func(*testing.T, *tableCache) symbolizer.ExecMapping { return first }, false},
		{"rebuilt file: new key", func(t *testing.T, _ *tableCache) symbolizer.ExecMapping {
			time.Sleep(10 * time.Millisecond) // another mtime
			os.Remove(bin)
			cacheProg(t, bin, "0123456789abcdee")
			return mappingOf(t, bin)
		}, true},
		{"rebuilt file read", func(t *testing.T, _ *tableCache) symbolizer.ExecMapping { return mappingOf(t, bin) }, false},
		{"rewritten in place, same size and mtime: the build ID differs", func(t *testing.T, _ *tableCache) symbolizer.ExecMapping {
			m := mappingOf(t, bin)
			st, _ := os.Stat(bin)
			other := filepath.Join(t.TempDir(), "other")
			cacheProg(t, other, "fedcba9876543210")
			b, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil { // same inode
				t.Fatal(err)
			}
			if err := os.Chtimes(bin, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
			if got := mappingOf(t, bin).Key; got != m.Key {
				t.Fatalf("key changed (%s, was %s): the case is not tested", got, m.Key)
			}
			return m
		}, true},
		{"corrupt cache file", func(t *testing.T, c *tableCache) symbolizer.ExecMapping {
			m := mappingOf(t, bin)
			p := c.path(m.Key)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return m
		}, true},
		{"repaired", func(t *testing.T, _ *tableCache) symbolizer.ExecMapping { return mappingOf(t, bin) }, false},
	}
	c := &tableCache{dir: filepath.Join(t.TempDir(), "cache")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.change(t, c)
			built := c.built.Load()
			got, err := c.table(m)
			if err != nil {
				t.Fatal(err)
			}
			if b := c.built.Load() > built; b != tt.wantBuilt {
				t.Fatalf("built %v, want %v", b, tt.wantBuilt)
			}
			// What the cache gives is what a build gives.
			want, err := (&tableCache{}).table(m)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("cached table differs from the built one:\n%+v\n%+v", got, want)
			}
			if len(got.Entries) < 2 {
				t.Fatalf("table has %d entries", len(got.Entries))
			}
		})
	}
}

func TestTableCacheTrim(t *testing.T) {
	dir := t.TempDir()
	var ms []symbolizer.ExecMapping
	for i := range 3 {
		bin := filepath.Join(dir, fmt.Sprint("prog", i))
		cacheProg(t, bin, fmt.Sprintf("%016x", i))
		ms = append(ms, mappingOf(t, bin))
	}
	c := &tableCache{dir: filepath.Join(dir, "cache")}
	if _, err := c.table(ms[0]); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c.path(ms[0].Key))
	if err != nil {
		t.Fatal(err)
	}
	// Room for two tables: the one used longest ago goes.
	c.maxBytes = 2*st.Size() + st.Size()/2
	old := time.Now().Add(-time.Hour)
	os.Chtimes(c.path(ms[0].Key), old, old)
	for _, m := range ms[1:] {
		if _, err := c.table(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range ms {
		_, err := os.Stat(c.path(m.Key))
		if kept := err == nil; kept != (i > 0) {
			t.Errorf("table %d kept %v, want %v", i, kept, i > 0)
		}
	}
}

// The user-space unwinder builds a file's table when a process's first
// samples come as stack copies, before the BPF tables load: that build
// goes through the on-disk cache too, so that the next capture reads it
// instead of building it again (a capture's first second used to build
// the busiest files' tables twice per process, 70 ms of CPU per capture).
func TestUserUnwinderSharesTableCache(t *testing.T) {
	testutil.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "prog")
	cacheProg(t, bin, "00112233445566ff")
	m := mappingOf(t, bin)
	dir := filepath.Join(t.TempDir(), "cache")
	for round, want := range []struct{ built, read int64 }{{1, 0}, {0, 1}} {
		u := unwind.New(unwind.Options{})
		tables, err := NewUnwindTables(UnwindTableOptions{CacheDir: dir, Store: u.Store()})
		if err != nil {
			t.Skipf("the kernel cannot make the unwind tables' maps: %v", err)
		}
		ct, err := u.Store().Get(m.Key, m.Open)
		tables.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(ct.Entries) < 2 {
			t.Fatalf("round %d: table of %d entries", round, len(ct.Entries))
		}
		if got := (struct{ built, read int64 }{tables.disk.built.Load(), tables.disk.read.Load()}); got != want {
			t.Errorf("round %d (a new scorch process): built %d, read %d from the disk; want %d, %d", round, got.built, got.read, want.built, want.read)
		}
	}
}
