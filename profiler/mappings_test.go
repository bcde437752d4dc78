package profiler

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/symbolizer"
	"golang.org/x/sys/unix"
)

type mappingLog struct {
	mu     sync.Mutex
	events []MappingEvent
}

func (l *mappingLog) Mapping(ev MappingEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

const dlopenC = `
#include <dlfcn.h>
int main(void) {
	void *h = dlopen("libm.so.6", RTLD_NOW);
	return h == 0;
}
`

// The tracker reports what a short process maps, in order: its exec, the
// program, ld.so, the vDSO, libc, what it dlopens, then its exit; each
// file's build ID (or inode) is the file's.
//
// With an idle wait of an hour (a continuous capture waits a second) the
// records are the same: close wakes the reader and delivers what waits.
func TestMappingTrackerRecordsProcess(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", dlopenC, "-O1", "-Wl,--build-id")
	for _, idle := range []time.Duration{trackerIdle, time.Hour} {
		t.Run(idle.String(), func(t *testing.T) { testMappingTrackerRecordsProcess(t, bin, idle) })
	}
}

func testMappingTrackerRecordsProcess(t *testing.T, bin string, idle time.Duration) {
	var log mappingLog
	tr, err := openMappingTracker(idle, &log)
	if err != nil {
		t.Skipf("perf dummy events refused: %v", err)
	}
	tr.start()
	cmd := exec.Command(bin)
	if err := cmd.Run(); err != nil {
		tr.close()
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	time.Sleep(20 * time.Millisecond)
	closed := make(chan struct{})
	go func() { tr.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // microseconds with the wake; records from the host may end the wait too
		t.Fatalf("close did not end the reader's %v wait", idle)
	}

	var kinds []string
	var last uint64
	files := map[string]MappingEvent{}
	for _, ev := range log.events {
		if ev.Time < last {
			t.Errorf("event at %d after one at %d", ev.Time, last)
		}
		last = ev.Time
		if ev.PID != pid {
			continue
		}
		switch ev.Kind {
		case MappingFork:
			kinds = append(kinds, "fork")
		case MappingExec:
			kinds = append(kinds, "exec "+ev.Comm)
		case MappingExit:
			kinds = append(kinds, "exit")
		case MappingMapped:
			base := filepath.Base(ev.Mapping.Path)
			if len(kinds) == 0 || kinds[len(kinds)-1] != "mapped" {
				kinds = append(kinds, "mapped")
			}
			if _, ok := files[base]; !ok {
				files[base] = ev
			}
		}
	}
	if got := strings.Join(kinds, ", "); got != "fork, exec "+filepath.Base(bin)[:min(15, len(filepath.Base(bin)))]+", mapped, exit" {
		t.Errorf("events of pid %d: %s", pid, got)
	}
	for _, want := range []string{filepath.Base(bin), "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "[vdso]"} {
		ev, ok := files[want]
		if !ok {
			t.Errorf("no mapping of %s recorded; got %v", want, files)
			continue
		}
		m := ev.Mapping
		t.Logf("%s [%#x, %#x) offset %#x build id %x inode %d", m.Path, m.Start, m.End, m.Offset, m.BuildID, m.Inode)
		if want == "[vdso]" {
			continue
		}
		if m.BuildID == nil {
			var st syscall.Stat_t
			if err := syscall.Stat(m.Path, &st); err != nil || st.Ino != m.Inode {
				t.Errorf("%s: inode %d, the file's %d (%v)", m.Path, m.Inode, st.Ino, err)
			}
			continue
		}
		if got, want := hex.EncodeToString(m.BuildID), fileBuildID(t, m.Path); got != want {
			t.Errorf("%s: build id %s, the file's %s", m.Path, got, want)
		}
		if m.End <= m.Start || m.Offset%uint64(os.Getpagesize()) != 0 {
			t.Errorf("%s: range [%#x, %#x) offset %#x", m.Path, m.Start, m.End, m.Offset)
		}
	}
	if tr.lost.Load() != 0 {
		t.Errorf("%d records lost", tr.lost.Load())
	}
}

func fileBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatalf("%s has no build id", path)
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		t.Fatalf("%s: build id note: %v", path, err)
	}
	nameSize, descSize := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	off := 12 + (nameSize+3)&^3
	return hex.EncodeToString(b[off : off+descSize])
}

// perfRecord builds a record with the sample_id trailer (pid, tid, time).
func perfRecord(typ uint32, misc uint16, body []byte, pid uint32, ts uint64) []byte {
	le := binary.LittleEndian
	for len(body)%8 != 0 {
		body = append(body, 0)
	}
	rec := le.AppendUint32(nil, typ)
	rec = le.AppendUint16(rec, misc)
	rec = le.AppendUint16(rec, uint16(8+len(body)+16))
	rec = append(rec, body...)
	rec = le.AppendUint32(rec, pid)
	rec = le.AppendUint32(rec, pid)
	return le.AppendUint64(rec, ts)
}

func mmap2Body(pid uint32, addr, n, pgoff uint64, id []byte, ino uint64, prot uint32, name string) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, pid)
	b = le.AppendUint32(b, pid)
	b = le.AppendUint64(b, addr)
	b = le.AppendUint64(b, n)
	b = le.AppendUint64(b, pgoff)
	if id != nil {
		u := make([]byte, 24)
		u[0] = byte(len(id))
		copy(u[4:], id)
		b = append(b, u...)
	} else {
		b = le.AppendUint32(b, 8)
		b = le.AppendUint32(b, 1)
		b = le.AppendUint64(b, ino)
		b = le.AppendUint64(b, 0)
	}
	b = le.AppendUint32(b, prot)
	b = le.AppendUint32(b, 0)
	return append(append(b, name...), 0)
}

func taskBody(pid, ppid, tid, ptid uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, pid)
	b = le.AppendUint32(b, ppid)
	b = le.AppendUint32(b, tid)
	b = le.AppendUint32(b, ptid)
	return le.AppendUint64(b, 99)
}

func TestParsePerfRecord(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	comm := append([]byte{7, 0, 0, 0, 8, 0, 0, 0}, "prog\x00"...)
	tests := []struct {
		name string
		rec  []byte
		want *MappingEvent
	}{
		{"mmap2 with build id", perfRecord(perfRecordMmap2, unix.PERF_RECORD_MISC_MMAP_BUILD_ID,
			mmap2Body(7, 0x1000, 0x2000, 0x3000, id, 0, unix.PROT_READ|unix.PROT_EXEC, "/usr/lib/libc.so.6"), 7, 5),
			&MappingEvent{Kind: MappingMapped, PID: 7, Time: 5, Mapping: symbolizer.Mapping{Start: 0x1000, End: 0x3000, Offset: 0x3000, Path: "/usr/lib/libc.so.6", BuildID: id}}},
		{"mmap2 with inode", perfRecord(perfRecordMmap2, 0,
			mmap2Body(7, 0x1000, 0x1000, 0, nil, 42, unix.PROT_EXEC, "/bin/x"), 7, 6),
			&MappingEvent{Kind: MappingMapped, PID: 7, Time: 6, Mapping: symbolizer.Mapping{Start: 0x1000, End: 0x2000, Path: "/bin/x", Major: 8, Minor: 1, Inode: 42}}},
		{"mmap2 of anonymous memory", perfRecord(perfRecordMmap2, 0, mmap2Body(7, 0x1000, 0x1000, 0, nil, 0, unix.PROT_EXEC, "//anon"), 7, 6),
			&MappingEvent{Kind: MappingMapped, PID: 7, Time: 6, Mapping: symbolizer.Mapping{Start: 0x1000, End: 0x2000, Major: 8, Minor: 1}}},
		{"mmap2 not executable", perfRecord(perfRecordMmap2, 0, mmap2Body(7, 0x1000, 0x1000, 0, nil, 42, unix.PROT_READ, "/bin/x"), 7, 6), nil},
		{"mmap2 of no length", perfRecord(perfRecordMmap2, 0, mmap2Body(7, 0x1000, 0, 0, nil, 42, unix.PROT_EXEC, "/bin/x"), 7, 6), nil},
		{"mmap2 build id too long", perfRecord(perfRecordMmap2, unix.PERF_RECORD_MISC_MMAP_BUILD_ID,
			mmap2Body(7, 0x1000, 0x1000, 0, append(id, 1), 0, unix.PROT_EXEC, "/bin/x"), 7, 6), nil},
		{"exec", perfRecord(perfRecordComm, unix.PERF_RECORD_MISC_COMM_EXEC, comm, 7, 9),
			&MappingEvent{Kind: MappingExec, PID: 7, Time: 9, Comm: "prog"}},
		{"comm without exec", perfRecord(perfRecordComm, 0, comm, 7, 9), nil},
		{"fork of a process", perfRecord(perfRecordFork, 0, taskBody(8, 7, 8, 7), 8, 10),
			&MappingEvent{Kind: MappingFork, PID: 8, Parent: 7, Time: 10}},
		{"new thread", perfRecord(perfRecordFork, 0, taskBody(7, 7, 9, 7), 7, 10), nil},
		{"process exit", perfRecord(perfRecordExit, 0, taskBody(8, 7, 8, 7), 8, 11),
			&MappingEvent{Kind: MappingExit, PID: 8, Time: 11}},
		{"thread exit", perfRecord(perfRecordExit, 0, taskBody(7, 7, 9, 7), 7, 11), nil},
		{"size not the record's", perfRecord(perfRecordExit, 0, taskBody(8, 7, 8, 7), 8, 11)[:30], nil},
		{"short", []byte{10, 0, 0, 0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parsePerfRecord(tc.rec)
			if tc.want == nil {
				if ok {
					t.Errorf("parsed %+v, want refused", got)
				}
				return
			}
			if !ok {
				t.Fatal("refused")
			}
			if got.Kind != tc.want.Kind || got.PID != tc.want.PID || got.Parent != tc.want.Parent || got.Time != tc.want.Time ||
				got.Comm != tc.want.Comm || got.Mapping.Start != tc.want.Mapping.Start || got.Mapping.End != tc.want.Mapping.End ||
				got.Mapping.Offset != tc.want.Mapping.Offset || got.Mapping.Path != tc.want.Mapping.Path ||
				got.Mapping.Inode != tc.want.Mapping.Inode || got.Mapping.Major != tc.want.Mapping.Major ||
				hex.EncodeToString(got.Mapping.BuildID) != hex.EncodeToString(tc.want.Mapping.BuildID) {
				t.Errorf("got %+v, want %+v", got, *tc.want)
			}
		})
	}
	if n, ok := parsePerfLost(perfRecord(perfRecordLost, 0, []byte{1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}, 0, 0)); !ok || n != 5 {
		t.Errorf("lost record: %d %v", n, ok)
	}
}

func FuzzParsePerfRecord(f *testing.F) {
	f.Add(perfRecord(perfRecordMmap2, unix.PERF_RECORD_MISC_MMAP_BUILD_ID,
		mmap2Body(7, 0x1000, 0x2000, 0, []byte{1, 2, 3}, 0, unix.PROT_EXEC, "/lib/x.so"), 7, 5))
	f.Add(perfRecord(perfRecordMmap2, 0, mmap2Body(7, 0x1000, 0x2000, 0, nil, 4, unix.PROT_EXEC, "/lib/x.so"), 7, 5))
	f.Add(perfRecord(perfRecordComm, unix.PERF_RECORD_MISC_COMM_EXEC, []byte("\x07\x00\x00\x00\x07\x00\x00\x00sh\x00"), 7, 5))
	f.Add(perfRecord(perfRecordFork, 0, taskBody(8, 7, 8, 7), 8, 1))
	f.Fuzz(func(t *testing.T, rec []byte) {
		ev, ok := parsePerfRecord(rec)
		if ok && ev.Kind == MappingMapped && (ev.Mapping.End <= ev.Mapping.Start || ev.Mapping.Path == "" || len(ev.Mapping.BuildID) > 20) {
			t.Errorf("bad mapping accepted: %+v", ev.Mapping)
		}
		parsePerfLost(rec)
	})
}

// A capture's Options.Mappings hears what its command maps: the hook what
// loads unwind tables per mapping subscribes with.
func TestRecordMappingListener(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", dlopenC, "-O1", "-Wl,--build-id")
	var log mappingLog
	c, err := Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 99, Command: []string{bin},
		Duration: capture.Duration(20 * time.Second)}, Options{Mappings: &log})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Stats.Counters.Get(capture.MappingRecords) == 0 {
		t.Error("no mapping records counted")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var pid uint32
	for _, ev := range log.events {
		if ev.Kind == MappingExec && strings.HasPrefix(filepath.Base(bin), ev.Comm) {
			pid = ev.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no exec of %s heard in %d events", bin, len(log.events))
	}
	seen := map[string]bool{}
	for _, ev := range log.events {
		if ev.PID == pid && ev.Kind == MappingMapped {
			seen[filepath.Base(ev.Mapping.Path)] = true
		}
		if ev.PID == pid && ev.Kind == MappingExit {
			seen["exit"] = true
		}
	}
	for _, want := range []string{filepath.Base(bin), "libc.so.6", "libm.so.6", "exit"} {
		if !seen[want] {
			t.Errorf("the listener did not hear %s of pid %d: %v", want, pid, seen)
		}
	}
}
