package symbolizer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/internal/mapped"
)

// dwarfCache keeps the decompressed DWARF sections of files whose sections
// are compressed (Debian's debug packages: libc6-dbg's are zlib), by build
// ID, for the next captures to map in place: decompressing libc's was
// 100-170 ms of CPU at each capture's first libc frame, the largest part of
// naming a whole host. Only the sections line tables and inlined calls read
// are kept (about 8.5 MiB for libc).
type dwarfCache struct {
	dir string
	max int64 // bytes of the directory; the oldest used files go first
	log *slog.Logger
}

// CacheDir is scorch's cache directory name: $XDG_CACHE_HOME/scorch/name
// or ~/.cache/scorch/name; "" when there is no cache directory.
func CacheDir(name string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "scorch", name)
}

// DefaultDWARFCacheDir is where record keeps decompressed DWARF sections.
func DefaultDWARFCacheDir() string { return CacheDir("dwarf") }

const (
	dwarfCacheMagic        = "scorchD1"
	defaultDWARFCacheBytes = 256 << 20
	dwarfCacheSuffix       = ".dwarf"
)

var dwarfCacheCRC = crc32.MakeTable(crc32.Castagnoli)

func (c *dwarfCache) path(id string) string { return filepath.Join(c.dir, id+dwarfCacheSuffix) }

// load maps the cached sections of the file with build ID id: want names
// them with their decompressed sizes. It returns them only when the file
// has every one at its size and with its checksum (a write cut short, a
// corrupt file: a miss), and the mapping they are in.
func (c *dwarfCache) load(id string, want map[string]uint64) (map[string][]byte, *mapped.File) {
	if c == nil || !validBuildID(id) || len(want) == 0 {
		return nil, nil
	}
	p := c.path(id)
	f, err := os.Open(p)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	mf, err := mapped.Map(f)
	if err != nil {
		return nil, nil
	}
	secs, err := parseDWARFCache(mf.Bytes(), want)
	if err != nil {
		c.log.Debug("dwarf cache", "file", p, "err", err)
		return nil, nil
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // used: the last to be pruned
	return secs, mf
}

// parseDWARFCache reads a cache file: the magic, the number of sections,
// for each its name and size, the CRC-32C of what precedes, then the
// sections, each at a multiple of 8, to the file's end. The sections are
// not checksummed: that would page in all of them (8.5 MiB for libc) where
// a capture reads a few units; files are synced before they are renamed
// into place, and one of another length than its header says is a miss.
func parseDWARFCache(b []byte, want map[string]uint64) (map[string][]byte, error) {
	if len(b) < len(dwarfCacheMagic)+4 || string(b[:len(dwarfCacheMagic)]) != dwarfCacheMagic {
		return nil, errors.New("not a DWARF cache file")
	}
	at := len(dwarfCacheMagic)
	n := int(binary.LittleEndian.Uint32(b[at:]))
	at += 4
	if n != len(want) {
		return nil, fmt.Errorf("%d sections, want %d", n, len(want))
	}
	type entry struct {
		name string
		size uint64
	}
	entries := make([]entry, 0, n)
	for range n {
		if at >= len(b) {
			return nil, errors.New("truncated")
		}
		l := int(b[at])
		at++
		if at+l+8 > len(b) {
			return nil, errors.New("truncated")
		}
		e := entry{name: string(b[at : at+l]), size: binary.LittleEndian.Uint64(b[at+l:])}
		at += l + 8
		if size, ok := want[e.name]; !ok || size != e.size {
			return nil, fmt.Errorf("section %s of %d bytes not wanted", e.name, e.size)
		}
		entries = append(entries, e)
	}
	if at+4 > len(b) || crc32.Checksum(b[:at], dwarfCacheCRC) != binary.LittleEndian.Uint32(b[at:]) {
		return nil, errors.New("header checksum mismatch")
	}
	at += 4
	out := make(map[string][]byte, n)
	for _, e := range entries {
		at = (at + 7) &^ 7
		if e.size > uint64(len(b)-min(at, len(b))) {
			return nil, errors.New("truncated")
		}
		if _, dup := out[e.name]; dup {
			return nil, fmt.Errorf("section %s twice", e.name)
		}
		out[e.name] = b[at : at+int(e.size) : at+int(e.size)]
		at += int(e.size)
	}
	if at != len(b) {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), at)
	}
	return out, nil
}

// store writes the decompressed sections of the file with build ID id,
// renamed into place once complete, and prunes the directory to its bound.
func (c *dwarfCache) store(id string, secs map[string][]byte) {
	if c == nil || !validBuildID(id) || len(secs) == 0 {
		return
	}
	if err := c.write(id, secs); err != nil {
		c.log.Debug("dwarf cache", "build_id", id, "err", err)
		return
	}
	c.prune()
}

func (c *dwarfCache) write(id string, secs map[string][]byte) error {
	names := make([]string, 0, len(secs))
	var total int64
	for name, d := range secs {
		if len(name) > 255 {
			return fmt.Errorf("section name %q too long", name)
		}
		names = append(names, name)
		total += int64(len(d))
	}
	if total > c.max/4 {
		return fmt.Errorf("%d bytes: more than a quarter of the cache", total)
	}
	slices.Sort(names)
	var hdr bytes.Buffer
	hdr.WriteString(dwarfCacheMagic)
	hdr.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(names))))
	for _, name := range names {
		hdr.WriteByte(byte(len(name)))
		hdr.WriteString(name)
		hdr.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(secs[name]))))
	}
	hdr.Write(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(hdr.Bytes(), dwarfCacheCRC)))
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, id+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	at := int64(hdr.Len())
	bufs := [][]byte{hdr.Bytes()}
	pad := make([]byte, 8)
	for _, name := range names {
		if p := (8 - at%8) % 8; p > 0 {
			bufs = append(bufs, pad[:p])
			at += p
		}
		bufs = append(bufs, secs[name])
		at += int64(len(secs[name]))
	}
	for _, b := range bufs {
		if _, err := tmp.Write(b); err != nil {
			tmp.Close()
			return err
		}
	}
	// Synced before the rename: a crash leaves the old file or the whole
	// new one, not one with blocks never written.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path(id))
}

// prune removes the least recently used files while the directory is
// above its bound, and temporary files left by writes that did not finish
// (older than a minute: not another capture's write under way).
func (c *dwarfCache) prune() {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(c.dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".tmp"):
			if time.Since(info.ModTime()) > time.Minute {
				os.Remove(p)
			}
		case strings.HasSuffix(e.Name(), dwarfCacheSuffix):
			files = append(files, file{p, info.Size(), info.ModTime()})
			total += info.Size()
		}
	}
	slices.SortFunc(files, func(a, b file) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= c.max {
			break
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
}
