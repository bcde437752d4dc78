// Package store keeps scorch's captures on disk: one folder per capture
// under a data directory, each holding a versioned record and the capture
// file. A capture is written under a temporary name and renamed when
// complete, so a crash leaves either a finished folder or a temporary one
// that the next Open turns into a failed record.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// Statuses of a capture.
const (
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
	StatusDamaged = "damaged"
)

// FormatVersion is the version of the on-disk record.
const FormatVersion = 1

const (
	recordFile  = "record.json"
	captureFile = "capture.scorch"
	tmpPrefix   = ".tmp-"
	maxRecord   = 1 << 20

	errInterrupted = "interrupted: the server stopped before the capture finished"
)

// ErrNotFound is returned for an unknown capture id.
var ErrNotFound = errors.New("capture not found")

// Record describes one capture; it is also the capture's JSON in the API.
type Record struct {
	ID       string         `json:"id"`
	Type     capture.Type   `json:"type"`
	Status   string         `json:"status"`
	Params   capture.Params `json:"params"`
	Start    time.Time      `json:"start"`
	End      *time.Time     `json:"end,omitempty"`
	Samples  uint64         `json:"samples"`
	Lost     uint64         `json:"lost"`
	Error    string         `json:"error,omitempty"`
	Unit     string         `json:"unit,omitempty"`
	Source   string         `json:"source,omitempty"` // "bpf", or the imported format
	Seconds  float64        `json:"duration_seconds"` // length of the capture
	Bytes    int64          `json:"bytes,omitempty"`  // size of the capture file
	Warnings []string       `json:"warnings,omitempty"`
	// Progress of a running capture.
	Elapsed float64 `json:"elapsed_seconds,omitempty"`
}

// Target is a short description of what the capture profiled.
func (r Record) Target() string {
	p := r.Params
	switch {
	case len(p.PIDs) > 0:
		return "pid " + joinInts(p.PIDs)
	case len(p.TIDs) > 0:
		return "tid " + joinInts(p.TIDs)
	case p.Comm != "":
		return "comm " + p.Comm
	case r.Source != "" && r.Source != "bpf":
		return "import (" + r.Source + ")"
	}
	return "whole host"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

type diskRecord struct {
	Format int    `json:"format"`
	Record Record `json:"record"`
}

var idPattern = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[0-9a-f]{8}$`)

// ValidID reports whether s has the shape of a capture id, which keeps
// request paths out of the file system's reach.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// idTime is the time an id was made at, to the second (zero if it does
// not parse).
func idTime(id string) time.Time {
	t, _ := time.Parse("20060102-150405", id[:15])
	return t
}

// NewID makes a sortable, unguessable capture id.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Store is the set of captures under one directory. Its methods are safe
// for concurrent use.
type Store struct {
	dir  string
	log  *slog.Logger
	mu   sync.Mutex
	recs map[string]*Record
	// held: captures a request is answering, which retention skips.
	held map[string]int
	// pruneMu makes Prune calls one at a time: two at once each deleted
	// what they counted, over-deleting.
	pruneMu sync.Mutex
}

// Open reads every capture under dir, creating dir when missing. Records
// that cannot be read are listed as damaged; temporary folders left by a
// crash become failed records.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	s := &Store{dir: dir, log: log, recs: make(map[string]*Record), held: make(map[string]int)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading data directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		if id, ok := strings.CutPrefix(name, tmpPrefix); ok && ValidID(id) {
			s.recoverTemp(id)
			continue
		}
		if !ValidID(name) {
			continue
		}
		s.recs[name] = s.loadRecord(name)
	}
	return s, nil
}

// loadRecord reads a finished folder; anything wrong makes it damaged.
func (s *Store) loadRecord(id string) *Record {
	damaged := func(why string) *Record {
		s.log.Warn("damaged capture", "id", id, "reason", why)
		return &Record{ID: id, Status: StatusDamaged, Error: why, Start: idTime(id)}
	}
	folder := filepath.Join(s.dir, id)
	r, err := readRecord(filepath.Join(folder, recordFile))
	if err != nil {
		return damaged(err.Error())
	}
	if r.ID != id {
		return damaged(fmt.Sprintf("record names capture %q, not its folder %q", r.ID, id))
	}
	if r.Status == StatusDone {
		fi, err := os.Stat(filepath.Join(folder, captureFile))
		if err != nil {
			return damaged("capture file missing")
		}
		if r.Bytes != 0 && fi.Size() != r.Bytes {
			return damaged(fmt.Sprintf("capture file is %d bytes, the record says %d", fi.Size(), r.Bytes))
		}
	}
	if r.Status == StatusRunning {
		r.Status = StatusFailed
		r.Error = errInterrupted
	}
	return r
}

// recoverTemp turns a crashed capture's temporary folder into a failed
// record without data. A record that already says why it failed (the disk
// filled while saving) keeps that reason; otherwise it was interrupted.
func (s *Store) recoverTemp(id string) {
	tmp := filepath.Join(s.dir, tmpPrefix+id)
	r, err := readRecord(filepath.Join(tmp, recordFile))
	if err != nil {
		r = &Record{ID: id, Start: idTime(id)}
	}
	r.ID = id
	if r.Status != StatusFailed || r.Error == "" {
		r.Status = StatusFailed
		r.Error = errInterrupted
	}
	r.Bytes = 0
	if err := s.saveFailed(r); err != nil {
		// Listed anyway (from memory) so that it can be deleted.
		s.log.Warn("recovering interrupted capture", "id", id, "err", err)
	} else {
		s.log.Info("interrupted capture marked failed", "id", id, "reason", r.Error)
	}
	s.recs[id] = r
}

// parseRecord decodes an on-disk record, checking its version and id.
func parseRecord(data []byte) (*Record, error) {
	var d diskRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("record unreadable: %w", err)
	}
	if d.Format != FormatVersion {
		return nil, fmt.Errorf("record format %d is not supported: this scorch reads format %d", d.Format, FormatVersion)
	}
	if !ValidID(d.Record.ID) {
		return nil, fmt.Errorf("record has an invalid id %q", d.Record.ID)
	}
	switch d.Record.Status {
	case StatusRunning, StatusDone, StatusFailed, StatusDamaged:
	default:
		return nil, fmt.Errorf("record has an unknown status %q", d.Record.Status)
	}
	return &d.Record, nil
}

func readRecord(path string) (*Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("record missing: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecord))
	if err != nil {
		return nil, fmt.Errorf("reading record: %w", err)
	}
	return parseRecord(data)
}

// Begin registers a running capture and leaves a temporary folder behind,
// so that a crash during the capture is reported after a restart.
func (s *Store) Begin(r Record) error {
	r.Status = StatusRunning
	tmp := filepath.Join(s.dir, tmpPrefix+r.ID)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("creating capture folder: %w", err)
	}
	// Padded, so that the failed record can later replace it in place
	// without new blocks: the disk may be full by then.
	data := marshalRecord(&r)
	if len(data) < recordPad {
		data = append(data, bytes.Repeat([]byte(" "), recordPad-len(data))...)
	}
	if err := writeFileSync(filepath.Join(tmp, recordFile), data); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	s.mu.Lock()
	s.recs[r.ID] = &r
	s.mu.Unlock()
	return nil
}

// recordPad is the size a running capture's record.json is padded to.
const recordPad = 8 << 10

// Update changes a record in memory only (progress of a running capture).
func (s *Store) Update(id string, f func(*Record)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[id]; ok {
		f(r)
	}
}

// Finish stores a capture's final record and, when c is not nil, its data:
// written to the temporary folder, synced, then renamed into place.
//
// When saving fails (the disk is full: the error matches syscall.ENOSPC) the
// partial data is removed and the capture is kept as failed with that
// error, on disk when the padded record of Begin can be rewritten in place.
func (s *Store) Finish(r Record, c *capture.Capture) error {
	err := s.writeFolder(&r, c)
	if err != nil {
		r.Status = StatusFailed
		r.Error = "saving the capture: " + err.Error()
		r.Bytes = 0
		if ferr := s.saveFailed(&r); ferr != nil {
			s.log.Warn("saving failed capture", "id", r.ID, "err", ferr)
		}
	}
	s.mu.Lock()
	s.recs[r.ID] = &r
	s.mu.Unlock()
	return err
}

func (s *Store) writeFolder(r *Record, c *capture.Capture) error {
	tmp := filepath.Join(s.dir, tmpPrefix+r.ID)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("creating capture folder: %w", err)
	}
	if c != nil {
		var buf bytes.Buffer
		if err := capture.Write(&buf, c); err != nil {
			return fmt.Errorf("encoding capture: %w", err)
		}
		if err := writeFileSync(filepath.Join(tmp, captureFile), buf.Bytes()); err != nil {
			_ = os.Remove(filepath.Join(tmp, captureFile))
			return err
		}
		r.Bytes = int64(buf.Len())
	}
	if err := writeFileSync(filepath.Join(tmp, recordFile), marshalRecord(r)); err != nil {
		return err
	}
	final := filepath.Join(s.dir, r.ID)
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("moving capture into place: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// saveFailed stores r, a failed capture without data, using no new disk
// space: the partial capture file is removed and the temporary folder's
// record is overwritten in place, then the folder is moved into place.
func (s *Store) saveFailed(r *Record) error {
	tmp := filepath.Join(s.dir, tmpPrefix+r.ID)
	_ = os.Remove(filepath.Join(tmp, captureFile))
	if _, err := os.Stat(tmp); err != nil {
		return s.writeFolder(r, nil)
	}
	if err := overwriteFile(filepath.Join(tmp, recordFile), marshalRecord(r)); err != nil {
		return err
	}
	final := filepath.Join(s.dir, r.ID)
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("moving capture into place: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// overwriteFile writes data over an existing file's first bytes and cuts
// it there: blocks already allocated are reused.
func overwriteFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Discard forgets a capture that should not be listed (an import whose
// data could not be saved) and removes whatever of it is on disk.
func (s *Store) Discard(id string) {
	s.mu.Lock()
	delete(s.recs, id)
	s.mu.Unlock()
	_ = os.RemoveAll(filepath.Join(s.dir, tmpPrefix+id))
	_ = os.RemoveAll(filepath.Join(s.dir, id))
}

func marshalRecord(r *Record) []byte {
	rec := *r
	rec.Elapsed = 0
	b, _ := json.MarshalIndent(diskRecord{Format: FormatVersion, Record: rec}, "", "  ")
	return append(b, '\n')
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Get returns a copy of a record.
func (s *Store) Get(id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return Record{}, ErrNotFound
	}
	return *r, nil
}

// Len is the number of captures in the store.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// List returns every record, newest first.
func (s *Store) List() []Record {
	s.mu.Lock()
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, *r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Load reads a finished capture's data. A capture file that does not decode
// marks the record damaged.
func (s *Store) Load(id string) (*capture.Capture, error) {
	r, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusDone {
		return nil, fmt.Errorf("capture %s is %s: it has no data", id, r.Status)
	}
	f, err := os.Open(filepath.Join(s.dir, id, captureFile))
	if err != nil {
		s.markDamaged(id, "capture file missing")
		return nil, fmt.Errorf("capture %s is damaged: %w", id, err)
	}
	defer f.Close()
	c, err := capture.Read(f)
	if err != nil {
		s.markDamaged(id, err.Error())
		return nil, fmt.Errorf("capture %s is damaged: %w", id, err)
	}
	c.Meta.ID = id
	return c, nil
}

// OpenFile returns the capture file for download.
func (s *Store) OpenFile(id string) (*os.File, error) {
	r, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusDone {
		return nil, fmt.Errorf("capture %s is %s: it has no data", id, r.Status)
	}
	return os.Open(filepath.Join(s.dir, id, captureFile))
}

func (s *Store) markDamaged(id, why string) {
	s.log.Warn("damaged capture", "id", id, "reason", why)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return
	}
	r.Status = StatusDamaged
	r.Error = why
	// Kept on disk: it showed "done" again after every restart until read.
	if err := writeFileSync(filepath.Join(s.dir, id, recordFile), marshalRecord(r)); err != nil {
		s.log.Warn("recording damaged capture", "id", id, "err", err)
	}
}

func (s *Store) isHeld(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[id] > 0
}

// Delete removes a capture that is not running.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	r, ok := s.recs[id]
	if !ok {
		s.mu.Unlock()
		return ErrNotFound
	}
	if r.Status == StatusRunning {
		s.mu.Unlock()
		return fmt.Errorf("capture %s is running: stop it before deleting", id)
	}
	delete(s.recs, id)
	s.mu.Unlock()
	// A capture that failed to save may still have its temporary folder,
	// which would come back as a capture after a restart.
	if err := os.RemoveAll(filepath.Join(s.dir, tmpPrefix+id)); err != nil {
		return fmt.Errorf("removing capture %s: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, id)); err != nil {
		return fmt.Errorf("removing capture %s: %w", id, err)
	}
	return nil
}

// Hold keeps id out of Prune's reach until release is called (a request
// answering with the capture: a capture removed in between answered 201
// with an empty id, or 500). Holds nest; release is safe to call twice.
func (s *Store) Hold(id string) (release func()) {
	s.mu.Lock()
	s.held[id]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.held[id]--; s.held[id] <= 0 {
				delete(s.held, id)
			}
			s.mu.Unlock()
		})
	}
}

// Prune removes the oldest finished captures until at most keep remain
// and their files use at most keepBytes; zero means no limit. Running and
// held captures are never removed (they count towards the limits, so the
// store may stay over them until they are released and Prune runs again).
// Calls are serialised. It returns the removed ids.
func (s *Store) Prune(keep int, keepBytes int64) []string {
	if keep <= 0 && keepBytes <= 0 {
		return nil
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	list := s.List()
	var kept []Record
	for _, r := range list {
		if r.Status != StatusRunning {
			kept = append(kept, r)
		}
	}
	// Oldest stored first out: ids begin with the second the capture was
	// stored, while an import keeps the start time of its recording, which
	// may be years old (by start time a new import would be removed at
	// once). Within one second, captures go by start.
	slices.SortFunc(kept, func(a, b Record) int {
		const stamp = len("20060102-150405")
		if c := strings.Compare(b.ID[:min(stamp, len(b.ID))], a.ID[:min(stamp, len(a.ID))]); c != 0 {
			return c
		}
		return b.Start.Compare(a.Start)
	})
	var total int64
	for _, r := range kept {
		total += r.Bytes
	}
	var removed []string
	for i := len(kept) - 1; i >= 0; i-- {
		over := (keep > 0 && len(kept)-len(removed) > keep) || (keepBytes > 0 && total > keepBytes)
		if !over {
			break
		}
		if s.isHeld(kept[i].ID) {
			continue
		}
		if err := s.Delete(kept[i].ID); err != nil {
			s.log.Warn("retention", "id", kept[i].ID, "err", err)
			continue
		}
		total -= kept[i].Bytes
		removed = append(removed, kept[i].ID)
	}
	return removed
}
