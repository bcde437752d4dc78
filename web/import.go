package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/internal/bounded"
	"github.com/scorch-dev/scorch/web/store"
)

// importAnswer is the capture's JSON plus what the import read.
type importAnswer struct {
	store.Record
	Import importSummary `json:"import"`
}

type importSummary struct {
	Format       string `json:"format"`
	Lines        int    `json:"lines,omitempty"`
	BadLines     int    `json:"bad_lines,omitempty"`
	FirstBadLine int    `json:"first_bad_line,omitempty"`
	FirstBadText string `json:"first_bad_text,omitempty"`
}

func (s *Server) postImport(w http.ResponseWriter, r *http.Request) {
	writeDeadline(w, 10*time.Minute)
	if r.ContentLength > s.cfg.MaxUpload {
		s.tooLarge(w, &http.MaxBytesError{Limit: s.cfg.MaxUpload})
		return
	}
	body := &overReader{r: newIdleBody(w, http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload), s.cfg.BodyIdle)}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	// Wait for room before decoding: imports decode at once while what
	// they may cost fits the budget (see importCost).
	br := bufio.NewReaderSize(body, 512)
	cost := s.importCost(r, ct, br)
	if err := s.imports.enter(r.Context(), cost); err != nil {
		if errors.Is(err, errBusy) {
			running, waiting := s.imports.counts()
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many imports at once: %d running and %d waiting; retry later", running, waiting))
		}
		return
	}
	defer s.imports.leave(cost)
	if s.cfg.HoldMemory != nil {
		defer s.cfg.HoldMemory()()
	}
	var in io.Reader = br
	fromForm := false
	if ct == "multipart/form-data" {
		// MultipartReader reads r.Body as it is now: the limited one.
		r.Body = io.NopCloser(br)
		mr, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, "multipart body is not valid: "+err.Error())
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				if s.tooLarge(w, err) {
					return
				}
				writeError(w, http.StatusBadRequest, "multipart body has no field \"file\": send the file in a field named file, or as the raw body")
				return
			}
			if part.FormName() == "file" {
				in = part
				break
			}
		}
		fromForm = strings.Contains(r.Header.Get("Accept"), "text/html")
	}
	// --max-upload bounds what the upload decompresses to and the counts it
	// claims as well as its own size.
	c, rep, err := formats.Import(in, formats.ImportOptions{MaxBytes: s.cfg.MaxUpload})
	if body.over {
		err = body.err
	}
	if err != nil {
		if s.tooLarge(w, err) {
			return
		}
		writeError(w, http.StatusBadRequest, "import failed: "+err.Error()+" (accepted: perf script, folded stacks, pprof or a scorch capture file)")
		return
	}
	if c == nil {
		writeError(w, http.StatusBadRequest, "import failed: nothing could be read (accepted: perf script, folded stacks, pprof or a scorch capture file)")
		return
	}
	now := time.Now()
	rec := store.Record{
		ID:       store.NewID(now),
		Type:     c.Meta.Type,
		Status:   store.StatusDone,
		Params:   c.Meta.Params,
		Start:    c.Meta.Start,
		End:      &now,
		Samples:  c.Meta.Stats.Samples,
		Lost:     c.Meta.Stats.Lost,
		Unit:     c.Meta.Unit,
		Source:   c.Meta.Source,
		Seconds:  c.Meta.Duration.Seconds(),
		Warnings: c.Meta.Warnings,
	}
	if rec.Start.IsZero() {
		rec.Start = now
	}
	if rec.Params.Type == "" {
		rec.Params.Type = rec.Type
	}
	var sum importSummary
	if rep != nil {
		sum = importSummary{Format: rep.Format, Lines: rep.Lines, BadLines: rep.BadLines, FirstBadLine: rep.FirstBadLine, FirstBadText: rep.FirstBadText}
		if rec.Source == "" {
			rec.Source = rep.Format
		}
		if rep.BadLines > 0 {
			rec.Warnings = append(rec.Warnings, fmt.Sprintf("%d lines could not be read, the first is line %d", rep.BadLines, rep.FirstBadLine))
		}
	}
	c.Meta.ID = rec.ID
	// Held from retention until answered: pruned in between, the answer
	// was 201 with an empty id.
	release := s.store.Hold(rec.ID)
	defer func() { release(); s.prune() }()
	if err := s.store.Finish(rec, c); err != nil {
		// A failed import is not a capture: nothing of it is kept.
		s.store.Discard(rec.ID)
		fail(w, fmt.Errorf("storing the import: %w", err))
		return
	}
	// Not kept decoded: an import may be hundreds of MiB decoded, and the
	// cache of decoded captures counts entries, not bytes; the first view
	// loads it.
	s.metrics.finished(rec)
	s.log.Info("capture imported", "id", rec.ID, "format", sum.Format, "samples", rec.Samples)
	s.prune()
	rec, _ = s.store.Get(rec.ID)
	if fromForm {
		http.Redirect(w, r, "/captures/"+rec.ID, http.StatusSeeOther)
		return
	}
	w.Header().Set("Location", "/api/captures/"+rec.ID)
	writeJSON(w, http.StatusCreated, importAnswer{Record: rec, Import: sum})
}

// importCost is what an import may cost while it decodes, counted against
// importBudget: its size when it says it (Content-Length) and is neither
// gzipped nor a form, else --max-upload, the most a gzip may inflate to
// and a binary format is read whole within. Decoding takes about three
// times the input (a 64 MiB folded file: 176 MiB), so the budget lets
// small imports through beside each other and runs big ones one at a
// time. The first bytes are peeked before any slot is taken.
func (s *Server) importCost(r *http.Request, ct string, br *bufio.Reader) int64 {
	n := r.ContentLength
	if n <= 0 || ct == "multipart/form-data" {
		return s.cfg.MaxUpload
	}
	if head, _ := br.Peek(2); bounded.IsGzip(head) {
		return s.cfg.MaxUpload
	}
	return min(n, s.cfg.MaxUpload)
}

func (s *Server) tooLarge(w http.ResponseWriter, err error) bool {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload is over the limit of %s (--max-upload)", humanBytes(s.cfg.MaxUpload)))
		return true
	}
	if errors.Is(err, bounded.ErrTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("import refused: %v (--max-upload %s bounds the upload, what it decompresses to and what decoding it costs)", err, humanBytes(s.cfg.MaxUpload)))
		return true
	}
	return false
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// overReader remembers that the body went over the upload limit, even when
// the importer does not wrap the error it got.
type overReader struct {
	r    io.Reader
	over bool
	err  error
}

func (o *overReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		o.over, o.err = true, err
	}
	return n, err
}
