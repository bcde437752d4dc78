// Package mapped maps files read-only, so that large sections of the
// binaries being profiled (a Go binary's .gopclntab, DWARF) are read in
// place instead of copied onto the heap: the pages are the page cache's,
// shared with every other reader of the file, and the kernel reclaims
// them under pressure.
//
// A mapped file stays mapped while its *File is reachable; slices of it
// must only be used through a path that keeps the *File alive (hold it
// next to them, runtime.KeepAlive at the end of the use). A file
// truncated under a mapping faults on access: callers reading mapped
// bytes turn that into a panic with debug.SetPanicOnFault and recover.
package mapped

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// maxBytes bounds what one mapping may cover.
const maxBytes = 1 << 40

// File is a read-only mapping of a whole file.
type File struct {
	data    []byte
	cleanup runtime.Cleanup
}

// Map maps f read-only. f may be closed afterwards.
func Map(f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("map %s: not a regular file", f.Name())
	}
	size := st.Size()
	if size <= 0 || size > maxBytes {
		return nil, fmt.Errorf("map %s: size %d", f.Name(), size)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	var data []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = unix.Mmap(int(fd), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	}); err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	if merr != nil {
		return nil, fmt.Errorf("map %s: %w", f.Name(), merr)
	}
	// Lookups touch a few pages here and there: no read-ahead around
	// them into the resident set.
	_ = unix.Madvise(data, unix.MADV_RANDOM)
	m := &File{data: data}
	m.cleanup = runtime.AddCleanup(m, func(b []byte) { _ = unix.Munmap(b) }, data)
	return m, nil
}

// Unmap unmaps the file now instead of when m is collected, so that the
// pages a one-off pass touched leave the resident set at once (a table
// built from a file's sections). No slice of the mapping may be used
// after; a second Unmap does nothing.
func (m *File) Unmap() {
	if m == nil || m.data == nil {
		return
	}
	m.cleanup.Stop()
	_ = unix.Munmap(m.data)
	m.data = nil
}

// DropResident takes the pages read so far out of the process's resident
// set (they stay in the page cache, and a later read faults them in
// again): after a pass over a whole section, such as a symbol table's
// load, only the pages later lookups touch are resident.
func (m *File) DropResident() {
	if m != nil && m.data != nil {
		_ = unix.Madvise(m.data, unix.MADV_DONTNEED)
	}
}

// ReadAhead lets the kernel read ahead of the pages faulted in, for a
// pass that reads sections in order (a mapping is random access
// otherwise: a page read from disk per fault).
func (m *File) ReadAhead() {
	if m != nil && m.data != nil {
		_ = unix.Madvise(m.data, unix.MADV_NORMAL)
	}
}

// Bytes is the whole mapping.
func (m *File) Bytes() []byte {
	if m == nil {
		return nil
	}
	return m.data
}

// ErrNotMapped says a section cannot be read in place: it is compressed,
// has no bytes in the file, or lies outside it.
var ErrNotMapped = errors.New("section not readable in place")

// Section returns the bytes of an ELF section of the mapped file in place.
func (m *File) Section(s *elf.Section) ([]byte, error) {
	if m == nil || s == nil || s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 || len(s.Name) > 7 && s.Name[:7] == ".zdebug" {
		return nil, ErrNotMapped
	}
	end := s.Offset + s.FileSize
	if s.FileSize != s.Size || end < s.Offset || end > uint64(len(m.data)) {
		return nil, ErrNotMapped
	}
	return m.data[s.Offset:end:end], nil
}
