package profiler

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// tableCache keeps the BPF unwinder's compact tables on disk, one file per
// file identity (the symbolizer's key: device, inode, size and mtime), so
// that the next scorch process maps them instead of building them again
// (scorch's own table alone takes a few hundred ms of CPU). A file that
// changes gets another key; one rewritten in place with the same size and
// mtime is caught by its build ID, kept with the table and checked at
// each read. The zero value (no directory) caches nothing.
type tableCache struct {
	dir      string
	maxBytes int64
	// read and built count the tables taken from the directory and those
	// built (then written to it).
	read, built atomic.Int64
}

// DefaultUnwindCacheDir is where record keeps unwind tables:
// $XDG_CACHE_HOME/scorch/unwind or ~/.cache/scorch/unwind; "" when there
// is no home.
func DefaultUnwindCacheDir() string { return symbolizer.CacheDir("unwind") }

// defaultUnwindCacheBytes bounds the cache directory: the oldest used
// tables go first.
const defaultUnwindCacheBytes = 256 << 20

// tableMagic changes with what a table's rules mean (U2: CFAFPSwitch).
const tableMagic = "scorchU2"

// tableCacheCRC is the checksum of a cached table: a write cut short (a
// full disk; files are renamed into place, not synced) is a miss.
var tableCacheCRC = crc32.MakeTable(crc32.Castagnoli)

// path is where key's table is kept: a name of its format's too, so that
// builds of two formats on one host (a baseline benchmarked beside) keep
// their own files rather than replace each other's at every capture.
func (c *tableCache) path(key string) string {
	h := sha256.Sum256([]byte(tableMagic + "\x00" + key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16])+".tab")
}

// table returns the table of the file m maps: from the cache when it has
// one for this file, else built and then cached.
func (c *tableCache) table(m symbolizer.ExecMapping) (*unwind.CompactTable, error) {
	if m.Open == nil {
		return nil, errors.New("opening file for CFI: no file")
	}
	ra, closer, err := m.Open()
	if err != nil {
		return nil, fmt.Errorf("opening file for CFI: %w", err)
	}
	if closer != nil {
		defer closer.Close()
	}
	return c.build(cmp.Or(m.ModuleKey, m.Key), ra)
}

// build returns the table of the file ra reads, known by key (the shared
// store's key: the build ID when the file has one, else its identity).
func (c *tableCache) build(key string, ra io.ReaderAt) (*unwind.CompactTable, error) {
	if c.dir == "" {
		c.built.Add(1)
		return unwind.BuildCompact(ra)
	}
	id := symbolizer.FileBuildID(ra)
	if t := c.load(key, id); t != nil {
		c.read.Add(1)
		return t, nil
	}
	c.built.Add(1)
	t, err := unwind.BuildCompact(ra)
	if err == nil {
		c.write(key, id, t)
	}
	return t, err
}

// load returns the cached table of key made from a file with build ID id,
// or nil.
func (c *tableCache) load(key, id string) *unwind.CompactTable {
	p := c.path(key)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	t, gotKey, gotID, err := decodeTable(b)
	if err != nil || gotKey != key || gotID != id {
		return nil
	}
	// Its mtime is when it was last used: the bound removes the oldest.
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return t
}

// write caches t, then trims the directory to its bound. Failures only
// cost a rebuild next time.
func (c *tableCache) write(key, id string, t *unwind.CompactTable) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(c.dir, ".tab-*")
	if err != nil {
		return
	}
	_, err = f.Write(encodeTable(t, key, id))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path(key))
	}
	if err != nil {
		os.Remove(f.Name())
		return
	}
	c.trim()
}

// trim removes the least recently used tables beyond the bound.
func (c *tableCache) trim() {
	max := c.maxBytes
	if max <= 0 {
		max = defaultUnwindCacheBytes
	}
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type file struct {
		name string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".tab") {
			continue
		}
		if info, err := e.Info(); err == nil {
			files = append(files, file{e.Name(), info.Size(), info.ModTime()})
			total += info.Size()
		}
	}
	slices.SortFunc(files, func(a, b file) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= max {
			break
		}
		if os.Remove(filepath.Join(c.dir, f.name)) == nil {
			total -= f.size
		}
	}
}

// encodeTable is a table's cache file: magic, the file's key and build
// ID, the table's header, its entries and rules in their map layout, and
// a CRC of all that.
func encodeTable(t *unwind.CompactTable, key, id string) []byte {
	b := make([]byte, 0, 64+len(key)+len(id)+len(t.Entries)*unwind.EntrySize+len(t.Rules)*unwind.RuleSize)
	b = append(b, tableMagic...)
	for _, s := range []string{key, id, t.Key, t.Arch.Name} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.LittleEndian.AppendUint64(b, t.Base)
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Unsupported))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Entries)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Rules)))
	b = t.AppendEntries(b)
	b = t.AppendRules(b)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, tableCacheCRC))
}

var errBadTableFile = errors.New("not a cached unwind table")

// decodeTable reads what encodeTable wrote: the table, the file's key and
// build ID.
func decodeTable(b []byte) (t *unwind.CompactTable, key, id string, err error) {
	if len(b) < len(tableMagic)+4 || !bytes.HasPrefix(b, []byte(tableMagic)) {
		return nil, "", "", errBadTableFile
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, tableCacheCRC) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, "", "", errBadTableFile
	}
	r := body[len(tableMagic):]
	str := func() (string, bool) {
		if len(r) < 4 {
			return "", false
		}
		n := binary.LittleEndian.Uint32(r)
		if uint64(n) > uint64(len(r)-4) {
			return "", false
		}
		s := string(r[4 : 4+n])
		r = r[4+n:]
		return s, true
	}
	var strs [4]string
	for i := range strs {
		var ok bool
		if strs[i], ok = str(); !ok {
			return nil, "", "", errBadTableFile
		}
	}
	t = &unwind.CompactTable{Key: strs[2]}
	found := false
	for _, a := range unwind.Arches {
		if a.Name == strs[3] {
			t.Arch, found = a, true
		}
	}
	if !found || len(r) < 20 {
		return nil, "", "", errBadTableFile
	}
	t.Base = binary.LittleEndian.Uint64(r)
	t.Unsupported = int(binary.LittleEndian.Uint32(r[8:]))
	ne, nr := uint64(binary.LittleEndian.Uint32(r[12:])), uint64(binary.LittleEndian.Uint32(r[16:]))
	r = r[20:]
	if uint64(len(r)) != ne*unwind.EntrySize+nr*unwind.RuleSize {
		return nil, "", "", errBadTableFile
	}
	t.Entries = make([]unwind.Entry, ne)
	for i := range t.Entries {
		t.Entries[i] = unwind.Entry{PC: binary.LittleEndian.Uint32(r), Rule: binary.LittleEndian.Uint32(r[4:])}
		r = r[unwind.EntrySize:]
	}
	t.Rules = make([]unwind.Rule, nr)
	for i := range t.Rules {
		t.Rules[i] = unwind.Rule{
			CFA: unwind.CFARule(r[0]), RA: unwind.RARule(r[1]), FP: unwind.FPRule(r[2]),
			CFAOffset: int32(binary.LittleEndian.Uint32(r[4:])),
			RAOffset:  int32(binary.LittleEndian.Uint32(r[8:])),
			FPOffset:  int32(binary.LittleEndian.Uint32(r[12:])),
		}
		r = r[unwind.RuleSize:]
	}
	for _, e := range t.Entries {
		if e.Rule >= uint32(nr) {
			return nil, "", "", errBadTableFile
		}
	}
	return t, strs[0], strs[1], nil
}
