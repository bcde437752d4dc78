package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFile writes to path through a temporary file renamed at the end, so
// nothing half-written is left; an empty path writes to stdout. A path that
// names something other than a regular file (a device such as /dev/null, a
// FIFO, a symlink such as /dev/stdout) is written in place: renaming over it
// would replace it, and as root that turns /dev/null into a file for the
// whole host.
func writeFile(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(stdout)
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("-o %s: is a directory", path)
		}
		return writeInPlace(path, write)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	// CreateTemp makes the file private; the output is an ordinary file.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeInPlace opens an existing non-regular path for writing without
// creating or replacing it. O_TRUNC matters only for a symlink to a regular
// file; devices and FIFOs ignore it.
func writeInPlace(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
