package profiler

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/scorch-dev/scorch/symbolizer"
	"golang.org/x/sys/unix"
)

// MappingEventKind says what a MappingEvent reports.
type MappingEventKind uint8

const (
	// MappingMapped: PID mapped Mapping.Path's [Start, End) at Offset
	// executable (mmap, mprotect to exec, or the exec loading the program,
	// its interpreter and the vDSO); Path is "" for anonymous memory (JIT
	// code).
	MappingMapped MappingEventKind = iota + 1
	// MappingExec: PID called exec (Comm is its new name); the mappings of
	// its old image are gone, those of the new one follow.
	MappingExec
	// MappingFork: PID was forked from Parent and starts with its mappings.
	MappingFork
	// MappingExit: PID exited.
	MappingExit
)

// MappingEvent is one thing the kernel reported about the executable
// mappings of a process.
type MappingEvent struct {
	Kind    MappingEventKind
	PID     uint32
	Parent  uint32 // MappingFork
	Time    uint64 // CLOCK_MONOTONIC ns: the clock of the BPF records' timestamps
	Comm    string // MappingExec
	Mapping symbolizer.Mapping
}

// MappingListener hears of the mappings processes make as they make them,
// in time order, from one goroutine: what a process maps is known even if
// it exits before /proc/PID/maps is read (the symbolizer's processes are
// fed this way), and what loads unwind tables per mapping can subscribe to
// the same record (Options.Mappings). Mapping returns quickly: the records
// wait in a per-CPU ring meanwhile.
type MappingListener interface {
	Mapping(ev MappingEvent)
}

// mappingTracker reads the kernel's mmap2, comm (exec), fork and exit
// records of every process, from a dummy software perf event on each CPU
// (what perf record does for the same purpose; no kprobes needed), and
// hands them to its listeners in time order.
type mappingTracker struct {
	rings     []*perfRing
	epfd      int
	wake      int           // eventfd in the epoll set: close wakes the reader's wait
	idle      time.Duration // the longest wait: records held back by the cutoff wait this long at most
	buildIDs  bool          // the kernel gives build IDs in mmap2 records
	listeners []MappingListener

	mu      sync.Mutex // serializes reading and delivery
	pending []MappingEvent
	buf     []byte

	records atomic.Uint64 // records read
	lost    atomic.Uint64 // records the kernel lost (ring full)
	done    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

// mappingRingPages is each CPU's ring (a power of two pages): mmap records
// are small (about 100 bytes) and read within milliseconds.
const mappingRingPages = 32

// perfAttrBuildID asks mmap2 records for the build ID instead of the inode
// (Linux 5.12); unix has no name for the bit.
const perfAttrBuildID = 1 << 34

// openMappingTracker opens the dummy events on every online CPU. An error
// means the kernel refused them (perf_event_paranoid, no CAP_PERFMON, or no
// dummy event before Linux 3.19): the caller then reads /proc alone.
//
// idle is the longest the reader waits without a wakeup: a record made
// just before a quiet spell is delivered that late unless a reader of
// samples flushes first (session.read does when it wakes).
func openMappingTracker(idle time.Duration, listeners ...MappingListener) (*mappingTracker, error) {
	cpus, err := OnlineCPUs()
	if err != nil {
		return nil, err
	}
	t := &mappingTracker{listeners: listeners, done: make(chan struct{}), buildIDs: true, idle: max(idle, time.Millisecond), epfd: -1, wake: -1}
	if t.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if t.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		t.closeRings()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	wake := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, t.wake, &wake); err != nil {
		t.closeRings()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	for _, cpu := range cpus {
		fd, err := t.open(cpu)
		if errors.Is(err, unix.ENODEV) {
			continue // offline since
		}
		if err != nil {
			t.closeRings()
			return nil, fmt.Errorf("perf dummy event on cpu %d: %w", cpu, err)
		}
		r, err := mapPerfRing(fd, mappingRingPages)
		if err != nil {
			unix.Close(fd)
			t.closeRings()
			return nil, err
		}
		t.rings = append(t.rings, r)
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(len(t.rings) - 1)}
		if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			t.closeRings()
			return nil, fmt.Errorf("epoll: %w", err)
		}
	}
	return t, nil
}

// open opens the dummy event on one CPU, without build IDs if the kernel
// does not know the bit.
func (t *mappingTracker) open(cpu int) (int, error) {
	for {
		attr := unix.PerfEventAttr{
			Type:        unix.PERF_TYPE_SOFTWARE,
			Config:      unix.PERF_COUNT_SW_DUMMY,
			Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Sample_type: unix.PERF_SAMPLE_TID | unix.PERF_SAMPLE_TIME,
			Bits: unix.PerfBitMmap | unix.PerfBitMmap2 | unix.PerfBitComm | unix.PerfBitCommExec | unix.PerfBitTask |
				unix.PerfBitSampleIDAll | unix.PerfBitUseClockID | unix.PerfBitWatermark,
			// Wake the reader only when a quarter of the ring is used: it
			// wakes at its idle timeout anyway, and the rings are read at
			// once when a BPF exec record needs what came before or the
			// sample reader wakes; a wakeup per record would cost every
			// mmap on the host an interrupt.
			Wakeup:  uint32(mappingRingPages * unix.Getpagesize() / 4),
			Clockid: unix.CLOCK_MONOTONIC,
		}
		if t.buildIDs {
			attr.Bits |= perfAttrBuildID
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if errors.Is(err, unix.EINVAL) && t.buildIDs {
			t.buildIDs = false
			continue
		}
		return fd, err
	}
}

// start reads the rings until close.
func (t *mappingTracker) start() {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		events := make([]unix.EpollEvent, len(t.rings)+1)
		ms := int(t.idle / time.Millisecond)
		for {
			select {
			case <-t.done:
				return
			default:
			}
			// The timeout delivers records held back by the cutoff. Each
			// wait is a blocking system call the Go runtime hands its P
			// away for: the agent's 5 ms waits were a good part of its CPU.
			_, err := unix.EpollWait(t.epfd, events, ms)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			// A record is written within microseconds of its timestamp:
			// those older than the cutoff are in their rings by now, so
			// that records read later are not earlier than what was
			// delivered.
			t.flush(monotonicNow() - uint64(time.Millisecond))
		}
	}()
}

// flush reads every ring and delivers, in time order, the records up to
// upTo (CLOCK_MONOTONIC ns). A reader about to act on something that
// happened at upTo (a BPF exec record) flushes first, so that what the
// process mapped before is known.
func (t *mappingTracker) flush(upTo uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.read()
	t.deliver(upTo)
}

// read appends the records of every ring to pending.
func (t *mappingTracker) read() {
	for _, r := range t.rings {
		t.buf = r.read(t.buf[:0], func(rec []byte) {
			t.records.Add(1)
			if ev, ok := parsePerfRecord(rec); ok {
				t.pending = append(t.pending, ev)
			} else if n, ok := parsePerfLost(rec); ok {
				t.lost.Add(n)
			}
		})
	}
}

// deliver hands the pending records up to upTo to the listeners.
func (t *mappingTracker) deliver(upTo uint64) {
	if len(t.pending) == 0 {
		return
	}
	slices.SortStableFunc(t.pending, func(a, b MappingEvent) int { return cmp.Compare(a.Time, b.Time) })
	n := 0
	for n < len(t.pending) && t.pending[n].Time <= upTo {
		for _, l := range t.listeners {
			l.Mapping(t.pending[n])
		}
		n++
	}
	t.pending = slices.Delete(t.pending, 0, n)
}

// close stops the reader, delivers every record left and closes the rings.
func (t *mappingTracker) close() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	close(t.done)
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(t.wake, one[:]) // ends the reader's wait
	t.wg.Wait()
	t.mu.Lock()
	t.read()
	t.deliver(^uint64(0))
	t.stopped = true
	t.closeRings()
	t.mu.Unlock()
}

func (t *mappingTracker) closeRings() {
	for _, r := range t.rings {
		r.close()
	}
	t.rings = nil
	if t.epfd >= 0 {
		unix.Close(t.epfd)
		t.epfd = -1
	}
	if t.wake >= 0 {
		unix.Close(t.wake)
		t.wake = -1
	}
}

// perfRing is a perf event's mmap'ed ring of records.
type perfRing struct {
	fd   int
	mem  []byte
	meta *unix.PerfEventMmapPage
	data []byte
}

func mapPerfRing(fd, pages int) (*perfRing, error) {
	ps := unix.Getpagesize()
	mem, err := unix.Mmap(fd, 0, (pages+1)*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap perf ring: %w", err)
	}
	r := &perfRing{fd: fd, mem: mem, meta: (*unix.PerfEventMmapPage)(unsafe.Pointer(&mem[0]))}
	off, size := r.meta.Data_offset, r.meta.Data_size
	if size == 0 { // kernels before 4.1: data follows the first page
		off, size = uint64(ps), uint64(pages*ps)
	}
	r.data = mem[off : off+size]
	return r, nil
}

// read calls fn with each record in the ring (buf holds one that wraps
// around the end) and frees their space.
func (r *perfRing) read(buf []byte, fn func(rec []byte)) []byte {
	head := atomic.LoadUint64(&r.meta.Data_head)
	tail := r.meta.Data_tail
	size := uint64(len(r.data))
	for tail+8 <= head {
		at := tail % size
		var hdr [8]byte
		for i := range hdr {
			hdr[i] = r.data[(at+uint64(i))%size]
		}
		n := uint64(binary.LittleEndian.Uint16(hdr[6:]))
		if n < 8 || tail+n > head {
			break
		}
		var rec []byte
		if at+n <= size {
			rec = r.data[at : at+n]
		} else {
			buf = append(buf[:0], r.data[at:]...)
			buf = append(buf, r.data[:n-(size-at)]...)
			rec = buf
		}
		fn(rec)
		tail += n
	}
	atomic.StoreUint64(&r.meta.Data_tail, tail)
	return buf
}

func (r *perfRing) close() {
	unix.Munmap(r.mem)
	unix.Close(r.fd)
}

// Perf record types (include/uapi/linux/perf_event.h).
const (
	perfRecordLost  = 2
	perfRecordComm  = 3
	perfRecordExit  = 4
	perfRecordFork  = 7
	perfRecordMmap2 = 10
)

// parsePerfRecord decodes an mmap2, comm (exec), fork or exit record of a
// dummy event with sample_id_all and sample_type TID|TIME (the time is the
// last 8 bytes). Other records, and records of threads rather than
// processes, are not reported.
func parsePerfRecord(rec []byte) (MappingEvent, bool) {
	le := binary.LittleEndian
	if len(rec) < 8 || int(le.Uint16(rec[6:])) != len(rec) {
		return MappingEvent{}, false
	}
	typ, misc := le.Uint32(rec), le.Uint16(rec[4:])
	if len(rec) < 8+8+16 {
		return MappingEvent{}, false
	}
	body := rec[8 : len(rec)-16]
	ev := MappingEvent{PID: le.Uint32(rec[8:]), Time: le.Uint64(rec[len(rec)-8:])}
	switch typ {
	case perfRecordMmap2:
		// pid, tid, addr, len, pgoff, {maj, min, ino, ino_generation} or
		// {build_id_size, 3 reserved, build_id[20]}, prot, flags, filename.
		if len(body) < 64+1 {
			return ev, false
		}
		prot := le.Uint32(body[56:])
		if prot&unix.PROT_EXEC == 0 {
			return ev, false
		}
		addr, n := le.Uint64(body[8:]), le.Uint64(body[16:])
		m := symbolizer.Mapping{Start: addr, End: addr + n, Offset: le.Uint64(body[24:]), Path: cString(body[64:])}
		if m.End <= m.Start || m.Path == "" {
			return ev, false
		}
		if m.Path == "//anon" {
			m.Path = "" // anonymous (JIT code), as /proc/PID/maps shows it
		}
		if misc&unix.PERF_RECORD_MISC_MMAP_BUILD_ID != 0 {
			size := int(body[32])
			if size > 20 {
				return ev, false
			}
			m.BuildID = append([]byte(nil), body[36:36+size]...)
		} else {
			m.Major, m.Minor, m.Inode = le.Uint32(body[32:]), le.Uint32(body[36:]), le.Uint64(body[40:])
		}
		ev.Kind, ev.Mapping = MappingMapped, m
		return ev, true
	case perfRecordComm:
		if misc&unix.PERF_RECORD_MISC_COMM_EXEC == 0 || len(body) < 9 {
			return ev, false
		}
		ev.Kind, ev.Comm = MappingExec, cString(body[8:])
		return ev, true
	case perfRecordFork, perfRecordExit:
		// pid, ppid, tid, ptid, time: a process, not a thread, when pid is
		// tid and (fork) its parent is another process.
		if len(body) < 16 {
			return ev, false
		}
		pid, ppid, tid := le.Uint32(body), le.Uint32(body[4:]), le.Uint32(body[8:])
		if pid != tid {
			return ev, false
		}
		if typ == perfRecordExit {
			ev.Kind = MappingExit
			return ev, true
		}
		if pid == ppid {
			return ev, false
		}
		ev.Kind, ev.Parent = MappingFork, ppid
		return ev, true
	}
	return ev, false
}

// parsePerfLost decodes a lost record: id, count.
func parsePerfLost(rec []byte) (uint64, bool) {
	if len(rec) < 24 || binary.LittleEndian.Uint32(rec) != perfRecordLost {
		return 0, false
	}
	return binary.LittleEndian.Uint64(rec[16:]), true
}
