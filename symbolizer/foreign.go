package symbolizer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Size caps of files other users name: the perf map a JIT writes, the
// binaries and debug files a process maps.
const (
	foreignMaxELF = 8 << 30
)

// openForeign is the one way to open a file whose name another user
// controls (a process's perf map in /tmp, the files it maps, debug files in
// its root). It resolves p inside root (the process's /proc/PID/root, so a
// container's absolute symlinks stay in the container), never blocks
// (O_NONBLOCK: a FIFO planted at the name would otherwise hang the open,
// and every capture touching the process with it), and returns only a
// regular file of at most maxSize bytes. noFollow refuses symlinks
// anywhere in the path. fallbackDir is /proc/PID, used when openat2 is
// missing.
func openForeign(root *os.File, fallbackDir, p string, noFollow bool, maxSize int64) (*os.File, error) {
	if root == nil {
		return nil, errors.New("no root")
	}
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		return nil, errors.New("empty path")
	}
	flags := uint64(unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY)
	resolve := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if noFollow {
		flags |= unix.O_NOFOLLOW
		resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	var f *os.File
	how := unix.OpenHow{Flags: flags, Resolve: resolve}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	switch {
	case errors.Is(err, unix.ENOSYS):
		fd, err := unix.Open(filepath.Join(fallbackDir, "root", rel), int(flags), 0)
		if err != nil {
			return nil, err
		}
		f = os.NewFile(uintptr(fd), p)
	case err != nil:
		return nil, err
	default:
		f = os.NewFile(uintptr(fd), p)
	}
	if err := checkRegular(f, maxSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return f, nil
}

// checkRegular refuses anything but a regular file of at most maxSize bytes.
func checkRegular(f *os.File, maxSize int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file (mode %#o)", st.Mode&unix.S_IFMT)
	}
	if st.Size > maxSize {
		return fmt.Errorf("%d bytes, over the limit of %d", st.Size, maxSize)
	}
	return nil
}
