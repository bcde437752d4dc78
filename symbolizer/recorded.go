package symbolizer

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Mapping is an executable mapping as the kernel reported it when the
// process made it (a perf PERF_RECORD_MMAP2): what keeps the libraries of
// a process that exits before its maps are read.
type Mapping struct {
	Start, End uint64 // [Start, End) in the process's address space
	Offset     uint64 // file offset of Start
	Path       string // as the process sees it; "[vdso]" for the vDSO
	// Major, Minor and Inode identify the file; 0 when the kernel gave the
	// build ID instead.
	Major, Minor uint32
	Inode        uint64
	BuildID      []byte // nil when the kernel did not read it
}

// RecordedProcess returns a process known only from the kernel's records:
// one that exited (or was never seen in /proc) before its snapshot. Its
// mappings come from AddMapping; its files are opened through its root
// while /proc still has it, through the host's root after, and kept only
// when their inode or build ID is the recorded one.
func (s *Symbolizer) RecordedProcess(pid int, comm string) *Process {
	dir := s.procDir(pid)
	p := &Process{PID: pid, Comm: comm, NSpid: pid, UID: -1, s: s, dir: dir, gone: true}
	if fd, err := unix.Open(dir+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		p.root = os.NewFile(uintptr(fd), dir+"/root")
	} else if fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		p.root = os.NewFile(uintptr(fd), "/")
	}
	// A perf map or jitdump left behind is trusted only if root wrote it.
	p.perf.uid, p.perf.euid = 0, 0
	p.perf.path = fmt.Sprintf("/tmp/perf-%d.map", pid)
	p.jit.uid, p.jit.euid = 0, 0
	p.jit.path = fmt.Sprintf("/tmp/jit-%d.dump", pid)
	empty := []procMapping{}
	p.maps.Store(&empty)
	return p
}

func (s *Symbolizer) procDir(pid int) string {
	return s.opts.ProcRoot + "/" + strconv.Itoa(pid)
}

// AddMapping adds a mapping the process made after its snapshot (or
// RecordedProcess). A mapping it overlaps replaced it (MAP_FIXED, or a
// range unmapped and reused); one already known is left alone, so the same
// record may come both from /proc and from the kernel.
func (p *Process) AddMapping(r Mapping) {
	if r.End <= r.Start {
		return
	}
	m := mapping{start: r.Start, end: r.End, perms: "r-xp", offset: r.Offset,
		devMajor: r.Major, devMinor: r.Minor, inode: r.Inode, path: r.Path}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return // Close released the files: a new one would never be
	}
	old := p.mappings()
	for _, o := range old {
		if o.start == m.start && o.end == m.end && o.offset == m.offset && o.path == m.path {
			return
		}
	}
	pm := procMapping{mapping: m, slot: &modSlot{}}
	if len(m.path) > 0 && m.path[0] == '/' {
		pm.file = p.s.openRecorded(p, m, r.BuildID)
		if pm.file == nil {
			p.s.log.Debug("cannot open recorded mapping", "pid", p.PID, "path", m.path)
		}
	}
	out := make([]procMapping, 0, len(old)+1)
	for _, o := range old {
		if o.start < m.end && m.start < o.end {
			// Frames taken before may still be symbolized with it: its
			// file stays open until Close.
			p.retired = append(p.retired, o)
			continue
		}
		out = append(out, o)
	}
	out = append(out, pm)
	slices.SortFunc(out, func(a, b procMapping) int { return cmp.Compare(a.start, b.start) })
	p.maps.Store(&out)
	if p.Exe == "" && pm.file != nil {
		// The first file an exec maps is the program.
		p.Exe = m.path
	}
}

// openRecorded opens a recorded mapping's file: through /proc while the
// process is there (map_files finds deleted files too), else by path in
// its root, checked against the recorded inode or build ID.
func (s *Symbolizer) openRecorded(p *Process, m mapping, buildID []byte) *sharedFile {
	if sf := s.openMapped(p.dir, p.root, m); sf != nil {
		if len(buildID) == 0 || m.inode != 0 || sf.buildID() == hex.EncodeToString(buildID) {
			return sf
		}
		s.unref(sf)
	}
	return nil
}

// MappingAt returns the mapping of the process that holds addr and the
// module's own address (Frame.Offset's terms) at the mapping's start.
// Anonymous mappings (JIT code) and unreadable files have none.
func (p *Process) MappingAt(addr uint64) (m Mapping, vaddr uint64, ok bool) {
	if p == nil {
		return Mapping{}, 0, false
	}
	pm := p.find(addr)
	if pm == nil || pm.path == "" || pm.path[0] == '[' && pm.path != "[vdso]" {
		return Mapping{}, 0, false
	}
	mod := p.module(pm)
	if mod == nil || len(mod.loads) == 0 {
		return Mapping{}, 0, false
	}
	var e uint64
	if pm.path == "[vdso]" {
		e = mod.elfAddr(addr - pm.start)
	} else {
		e = mod.elfAddr(addr - pm.start + pm.offset)
	}
	m = Mapping{Start: pm.start, End: pm.end, Offset: pm.offset, Path: pm.path,
		Major: pm.devMajor, Minor: pm.devMinor, Inode: pm.inode}
	if mod.buildID != "" {
		m.BuildID, _ = hex.DecodeString(mod.buildID)
	}
	return m, e - (addr - pm.start), true
}
