package symbolizer

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

const recordedC = `
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int recorded_leaf(int x) { return x * 7 + 1; }
int main(void) {
	printf("recorded_leaf %p\n", (void *)recorded_leaf);
	printf("memset %p\n", (void *)memset);
	printf("ready\n");
	fflush(stdout);
	getchar();
	return recorded_leaf(2) == 0;
}
`

// A process known only from the kernel's mapping records (it exited before
// its maps were read) is named from them: its program's symbols and libc's,
// files opened by path and checked against the recorded inode.
func TestRecordedProcessAfterExit(t *testing.T) {
	bin := buildC(t, t.TempDir(), "recorded", recordedC)
	fx := start(t, bin)
	pid := fx.pid()
	mb, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	maps, _ := parseMaps(bytes.NewReader(mb))
	fx.stop() // gone: /proc has nothing left of it

	s := New(Options{Logger: discardLogger()})
	p := s.RecordedProcess(pid, "recorded")
	defer p.Close()
	var records []Mapping
	for _, m := range maps {
		if m.exec() {
			records = append(records, Mapping{Start: m.start, End: m.end, Offset: m.offset, Path: m.path,
				Major: m.devMajor, Minor: m.devMinor, Inode: m.inode})
		}
	}
	for _, r := range records {
		p.AddMapping(r)
		p.AddMapping(r) // the same record twice (from /proc and the kernel) is one mapping
	}
	if got := len(p.mappings()); got != len(records) {
		t.Fatalf("%d mappings after adding %d records twice", got, len(records))
	}
	if p.Exe != bin {
		t.Errorf("Exe = %q, want %q", p.Exe, bin)
	}
	for _, name := range []string{"recorded_leaf", "memset"} {
		fr := s.User(p, fx.addrs[name], false)
		if got := fr[len(fr)-1].Name; got != name && !(name == "memset" && bytes.Contains([]byte(got), []byte("memset"))) {
			t.Errorf("%s at %#x named %q (%+v)", name, fx.addrs[name], got, fr)
		}
	}

	// A record of another inode at the path is not that file: the frame
	// keeps its module and offset but no name.
	q := s.RecordedProcess(pid, "recorded")
	defer q.Close()
	for _, r := range records {
		if r.Path == bin {
			r.Inode++
		}
		q.AddMapping(r)
	}
	if fr := s.User(q, fx.addrs["recorded_leaf"], false); fr[0].Name != "" {
		t.Errorf("a mapping of another inode was named %q", fr[0].Name)
	}

	// A mapping over part of another replaces it (MAP_FIXED): the old
	// range's addresses there belong to the new file.
	var leaf Mapping
	for _, r := range records {
		if r.Path == bin && fx.addrs["recorded_leaf"] >= r.Start && fx.addrs["recorded_leaf"] < r.End {
			leaf = r
		}
	}
	p.AddMapping(Mapping{Start: leaf.Start, End: leaf.End, Offset: 0, Path: "//anon"})
	if fr := s.User(p, fx.addrs["recorded_leaf"], false); fr[0].Name != "" || fr[0].Module == bin {
		t.Errorf("after a mapping over it, recorded_leaf's address still names %+v", fr[0])
	}
}
