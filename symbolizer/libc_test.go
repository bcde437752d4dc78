package symbolizer

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runtimeAddr converts an ELF address of the file at path into the address
// where the process maps it, from the raw maps and program headers.
func runtimeAddr(t *testing.T, pid int, path string, vaddr uint64) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fileOff uint64
	found := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			fileOff, found = vaddr-p.Vaddr+p.Off, true
		}
	}
	if !found {
		t.Fatalf("%#x not in a PT_LOAD of %s", vaddr, path)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	maps, _ := parseMaps(bytes.NewReader(b))
	for _, m := range maps {
		if m.path == path && fileOff >= m.offset && fileOff < m.offset+m.end-m.start {
			return m.start + fileOff - m.offset
		}
	}
	t.Fatalf("%s offset %#x not mapped", path, fileOff)
	return 0
}

// libcOf returns the libc path the process maps.
func libcOf(t *testing.T, p *Process) string {
	t.Helper()
	for _, m := range p.mappings() {
		if strings.HasPrefix(filepath.Base(m.path), "libc.so") || strings.HasPrefix(filepath.Base(m.path), "libc-") {
			return m.path
		}
	}
	t.Skip("fixture does not map a libc")
	return ""
}

// libc's internal sort function is named with libc6-dbg and is not
// misnamed as a neighbouring export without it.
func TestLibcInternal(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "fixture", cFixture)
	fx := start(t, bin)

	probe := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	pp, err := probe.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	libc := libcOf(t, pp)
	pp.Close()
	id := fileBuildID(t, libc)
	dbgPath := filepath.Join("/usr/lib/debug/.build-id", id[:2], id[2:]+".debug")
	df, err := elf.Open(dbgPath)
	if err != nil {
		t.Skipf("libc debug symbols not installed (apt-get install libc6-dbg): %v", err)
	}
	syms, err := df.Symbols()
	df.Close()
	if err != nil {
		t.Fatal(err)
	}
	var msort elf.Symbol
	for _, s := range syms {
		if s.Name == "msort_with_tmp" || strings.HasPrefix(s.Name, "msort_with_tmp.") {
			msort = s
			break
		}
	}
	if msort.Value == 0 || msort.Size < 8 {
		t.Skip("msort_with_tmp not in this libc's debug symbols")
	}
	addr := runtimeAddr(t, fx.pid(), libc, msort.Value+msort.Size/2)
	var qsort elf.Symbol
	for _, s := range syms {
		if s.Name == "qsort" && s.Size > 4 {
			qsort = s
		}
	}
	if qsort.Value == 0 {
		t.Fatal("qsort not in libc's debug symbols")
	}
	qsortAddr := runtimeAddr(t, fx.pid(), libc, qsort.Value+2)

	tests := []struct {
		name      string
		debugDirs []string
		want      string
	}{
		{"with libc6-dbg", []string{"/usr/lib/debug"}, msort.Name},
		{"dynsym only", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{DebugDirs: tt.debugDirs, DebuginfodURLs: []string{}})
			defer s.Close()
			p, err := s.Snapshot(fx.pid())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			fr := s.User(p, addr, false)[0]
			if fr.Name != tt.want || fr.Module != libc || fr.BuildID != id {
				t.Errorf("got %+v, want name %q in %s", fr, tt.want, libc)
			}
			if fr.Offset != msort.Value+msort.Size/2 {
				t.Errorf("offset %#x, want %#x", fr.Offset, msort.Value+msort.Size/2)
			}
			// An exported function is named from .dynsym alone.
			if fr := s.User(p, qsortAddr, false)[0]; fr.Name != "qsort" {
				t.Errorf("exported qsort: got %+v", fr)
			}
		})
	}
}

// A debuginfod server started on loopback serves a stripped fixture's debug
// file; the symbolizer fetches it, caches it on disk and names functions.
func TestDebuginfod(t *testing.T) {
	server := needTool(t, "debuginfod")
	dir := t.TempDir()
	bin := buildC(t, dir, "fixture", cFixture, "-fPIE", "-pie")
	id := fileBuildID(t, bin)
	serve := filepath.Join(dir, "serve")
	os.MkdirAll(serve, 0o755)
	dbg := stripWithDebug(t, bin)
	if err := os.Rename(dbg, filepath.Join(serve, "fixture.debug")); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(server, "-F", "-p", fmt.Sprint(port), "-d", filepath.Join(dir, "db.sqlite"), "-t", "1", "-g", "0", serve)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Wait for the scan to index the file (generous: CI may be slow).
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url + "/buildid/" + id + "/debuginfo")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("debuginfod did not serve %s in time; its log:\n%s", id, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	cache := filepath.Join(dir, "cache")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{url}, DebuginfodCache: cache})
	defer s.Close()
	fx := start(t, bin)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, name := range []string{"alpha_leaf", "beta_middle", "gamma_static"} {
		if fr := s.User(p, fx.addrs[name]+1, false)[0]; fr.Name != name {
			t.Errorf("got %q, want %q", fr.Name, name)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, id, "debuginfo")); err != nil {
		t.Errorf("not cached on disk: %v", err)
	}
}
