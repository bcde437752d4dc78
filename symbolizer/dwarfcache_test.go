package symbolizer

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A file whose DWARF sections are compressed is decompressed once: the
// next Symbolizer with the same DWARF cache maps the sections from it and
// names every line-table address (file:line, inlined calls) as the eager
// reading of the file does; a cache file with a corrupt header, or of
// another length than it says, is a miss, read again from the file and
// written anew. A binary built here with
// compressed sections, and libc's debug file when installed.
func TestDWARFCache(t *testing.T) {
	needTool(t, "gcc")
	dir := t.TempDir()
	var srcs []string
	for name, src := range map[string]string{"a.c": lazyUnitA, "b.c": lazyUnitB, "c.c": lazyUnitC, "lazy.h": lazyHeader} {
		p := writeFile(t, filepath.Join(dir, name), src)
		if filepath.Ext(name) == ".c" {
			srcs = append(srcs, p)
		}
	}
	slices.Sort(srcs)
	bin := filepath.Join(dir, "lazy-gz")
	run(t, "gcc", append([]string{"-O2", "-g", "-gz=zlib", "-Wl,--build-id", "-o", bin}, srcs...)...)
	files := []struct{ name, path string }{{"compressed binary", bin}}
	if id := fileBuildIDOrEmpty(libcPath); len(id) > 2 {
		files = append(files, struct{ name, path string }{"libc debug file", filepath.Join("/usr/lib/debug/.build-id", id[:2], id[2:]+".debug")})
	}
	for _, tc := range files {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(tc.path)
			if err != nil {
				t.Skipf("%s: %v", tc.path, err)
			}
			defer f.Close()
			ef, err := openELF(f)
			if err != nil {
				t.Fatal(err)
			}
			if s := ef.Section(".debug_info"); s == nil || s.Flags&elf.SHF_COMPRESSED == 0 {
				t.Skipf("%s: .debug_info is not compressed", tc.path)
			}
			id := buildID(ef)
			d, err := openDWARF(ef)
			if err != nil {
				t.Fatal(err)
			}
			lt, err := readLineTable(d)
			if err != nil {
				t.Fatal(err)
			}
			b := newInlineBuilder()
			if err := b.add(d, nil); err != nil {
				t.Fatal(err)
			}
			it, err := b.finish()
			if err != nil {
				t.Fatal(err)
			}
			cacheDir := filepath.Join(t.TempDir(), "dwarf")
			// read reads f's DWARF with a new Symbolizer on cacheDir,
			// checks its frames against the eager reading, and reports
			// whether its sections came from the cache.
			read := func(t *testing.T) bool {
				t.Helper()
				s := New(Options{Lines: true, DWARFCache: cacheDir, DebugDirs: []string{}, DebuginfodURLs: []string{}, Logger: discardLogger()})
				md := s.readDWARF(ef, f, debugLocator{label: tc.path})
				if md == nil {
					t.Fatal("no DWARF")
				}
				step := max(1, len(lt.addrs)/5000)
				for i := 0; i < len(lt.addrs); i += step {
					a := lt.addrs[i]
					fr := Frame{Name: "physical", Module: "m", Offset: a}
					if got, want := md.frames(fr, a), expandInlined(fr, a, lt, it); !slices.Equal(got, want) {
						t.Fatalf("%#x: %+v\nwant %+v", a, got, want)
					}
				}
				return md.ds.cached != nil
			}
			if read(t) {
				t.Fatal("first reading from an empty cache")
			}
			p := filepath.Join(cacheDir, id+dwarfCacheSuffix)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatalf("no cache file written: %v", err)
			}
			if !read(t) {
				t.Fatal("second reading not from the cache")
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			bad := slices.Clone(data)
			bad[14] ^= 0xff // in the first section's name
			cases := map[string][]byte{"corrupt header": bad, "cut short": data[:len(data)-1], "longer": append(slices.Clone(data), 0), "empty": nil}
			for name, content := range cases {
				if err := os.WriteFile(p, content, 0o600); err != nil {
					t.Fatal(err)
				}
				if read(t) {
					t.Fatalf("%s cache file used", name)
				}
				if st2, err := os.Stat(p); err != nil || st2.Size() != st.Size() {
					t.Fatalf("%s cache file not written anew: %v", name, err)
				}
				if !read(t) {
					t.Fatalf("after a %s cache file: the one written anew not used", name)
				}
			}
		})
	}
}

// The cache directory stays within its bound: the least recently used
// files go first, and temporary files of writes that did not finish.
func TestDWARFCachePrune(t *testing.T) {
	dir := t.TempDir()
	c := &dwarfCache{dir: dir, max: 150, log: discardLogger()}
	sec := map[string][]byte{"info": make([]byte, 30)} // 62-byte files
	c.store("aa01", sec)
	c.store("aa02", sec)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "aa01"+dwarfCacheSuffix), old, old)
	os.Chtimes(filepath.Join(dir, "aa02"+dwarfCacheSuffix), old.Add(time.Minute), old.Add(time.Minute))
	if _, m := c.load("aa01", map[string]uint64{"info": 30}); m == nil { // used: now the newest
		t.Fatal("aa01 not read back")
	}
	stale := filepath.Join(dir, "aa09.123.tmp")
	os.WriteFile(stale, []byte("x"), 0o600)
	os.Chtimes(stale, old, old)
	c.store("aa03", sec)
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{"aa01.dwarf", "aa03.dwarf"}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q (the least recently used and the stale temporary file removed)", left, want)
	}
	if secs, _ := c.load("aa03", map[string]uint64{"info": 31}); secs != nil {
		t.Error("a section of another size read from the cache")
	}
}
