package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Security-Policy", cspNone)
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// notFound answers 404 for a capture id the store does not know (ids in
// /api/captures/{id} routes have the shape validID checks).
func notFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "capture "+id+" not found")
}

// diskFull reports an error of a full file system or exhausted quota.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// fail answers an error: its status when it is an httpError, the status of
// the recorder's error classes, 500 otherwise.
func fail(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.msg)
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrBadTarget):
		writeError(w, http.StatusBadRequest, err.Error())
	case diskFull(err):
		writeError(w, http.StatusInsufficientStorage, err.Error()+" (the --data directory's file system is full: free space, delete captures or lower --keep/--keep-bytes)")
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) getCapabilities(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.capabilities(r.Context()))
}

func (s *Server) listCaptures(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.store.List())
}

func (s *Server) getCapture(w http.ResponseWriter, r *http.Request) {
	rec, err := s.store.Get(chi.URLParam(r, "id"))
	if err != nil {
		notFound(w, chi.URLParam(r, "id"))
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) deleteCapture(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if err := s.store.Delete(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			notFound(w, id)
			return
		}
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.loaded.drop(id)
	s.cache.drop(id)
	s.log.Info("capture deleted", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) stopCapture(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.store.Get(id); err != nil {
		notFound(w, id)
		return
	}
	if !s.stop(id) {
		writeError(w, http.StatusConflict, "capture "+id+" is not running")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) postCapture(w http.ResponseWriter, r *http.Request) {
	if err := postNames.check(r.URL.Query()); err != nil {
		fail(w, err)
		return
	}
	wait, err := parseBool("wait", r.URL.Query().Get("wait"))
	if err != nil {
		fail(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", maxJSONBody))
		return
	}
	ct, _, cterr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if cterr != nil && r.Header.Get("Content-Type") != "" {
		// ";;;" is no content type, not JSON.
		writeError(w, http.StatusUnsupportedMediaType, "content type "+quote(r.Header.Get("Content-Type"))+" is not valid: send application/json (or a form)")
		return
	}
	isForm := false
	var p capture.Params
	switch {
	case ct == "application/x-www-form-urlencoded" && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		isForm = true
		v, perr := url.ParseQuery(string(body))
		if perr != nil {
			writeError(w, http.StatusBadRequest, "form body is not valid: "+perr.Error())
			return
		}
		p, err = formParams(v)
	case ct == "" || ct == "application/json" || ct == "application/x-www-form-urlencoded":
		p, err = decodeParams(body)
	default:
		writeError(w, http.StatusUnsupportedMediaType, "content type "+quote(ct)+" is not accepted: send application/json (or a form)")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	if err := s.checkParams(r.Context(), &p); err != nil {
		fail(w, err)
		return
	}
	parent := context.Background()
	if wait {
		parent = r.Context()
		writeDeadline(w, time.Duration(p.Duration)+2*time.Minute)
	}
	rec, j, err := s.start(parent, p, wait)
	if err != nil {
		fail(w, err)
		return
	}
	defer s.release(j)
	if isForm {
		http.Redirect(w, r, "/captures/"+rec.ID, http.StatusSeeOther)
		return
	}
	w.Header().Set("Location", "/api/captures/"+rec.ID)
	if !wait {
		writeJSON(w, http.StatusAccepted, rec)
		return
	}
	if final, ok := s.await(w, r, rec.ID, j); ok {
		writeJSON(w, http.StatusCreated, final)
	}
}

// await waits for a capture the request started and returns its final
// record. false: the client went away, or the capture failed and that is
// answered.
func (s *Server) await(w http.ResponseWriter, r *http.Request, id string, j *job) (store.Record, bool) {
	select {
	case <-j.done:
	case <-r.Context().Done():
		return store.Record{}, false
	}
	if r.Context().Err() != nil {
		return store.Record{}, false
	}
	final, _ := s.store.Get(id)
	if final.Status != store.StatusDone {
		s.failRecord(w, final, j.err)
		return final, false
	}
	return final, true
}

// failRecord answers a capture that failed with the status of its error.
func (s *Server) failRecord(w http.ResponseWriter, rec store.Record, err error) {
	if err == nil {
		err = errors.New(rec.Error)
	}
	fail(w, fmt.Errorf("capture %s failed: %w", rec.ID, err))
}

func parseBool(name, s string) (bool, error) {
	switch s {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, errorf(http.StatusBadRequest, "%s %s is not valid: allowed values are true, false", name, quote(s))
}

// record runs a blocking capture for a GET route: the request's context
// cancels it when the client goes away. The capture is held from retention
// until the caller calls release (after answering with it).
func (s *Server) record(w http.ResponseWriter, r *http.Request, p capture.Params) (rec store.Record, release func(), ok bool) {
	if err := s.checkParams(r.Context(), &p); err != nil {
		fail(w, err)
		return store.Record{}, func() {}, false
	}
	writeDeadline(w, time.Duration(p.Duration)+2*time.Minute)
	rec, j, err := s.start(r.Context(), p, true)
	if err != nil {
		fail(w, err)
		return rec, func() {}, false
	}
	rec, ok = s.await(w, r, rec.ID, j)
	return rec, func() { s.release(j) }, ok
}

func (s *Server) debugPprof(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if t := v.Get("type"); t != "" && t != "cpu" {
		writeError(w, http.StatusBadRequest, "type "+quote(t)+" is not supported here: /debug/pprof/profile records cpu (use /api/captures for other types)")
		return
	}
	p, err := s.blockingParams(v, pprofNames, capture.CPU)
	if err != nil {
		fail(w, err)
		return
	}
	rec, release, ok := s.record(w, r, p)
	defer release()
	if !ok {
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	s.serveFormat(w, r, rec.ID, pprofOutput, url.Values{})
}

func (s *Server) blockingSVG(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := svgNames.check(v); err != nil {
		fail(w, err)
		return
	}
	if v.Get("type") == "" {
		writeError(w, http.StatusBadRequest, "type is required: allowed values are "+capture.TypeList())
		return
	}
	// Check the rendering options before spending seconds on a capture.
	if _, _, err := parseRender(renderValues(v)); err != nil {
		fail(w, err)
		return
	}
	p, err := s.blockingParams(v, svgNames, "")
	if err != nil {
		fail(w, err)
		return
	}
	rec, release, ok := s.record(w, r, p)
	defer release()
	if !ok {
		return
	}
	w.Header().Set("X-Scorch-Capture", rec.ID)
	s.serveFormat(w, r, rec.ID, svgOutput, renderValues(v))
}

// captureEvents pushes a running capture's record as server-sent events
// until it is finished.
func (s *Server) captureEvents(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	rec, err := s.store.Get(id)
	if err != nil {
		notFound(w, id)
		return
	}
	writeDeadline(w, s.cfg.MaxDuration+5*time.Minute)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	send := func(event string, rec store.Record) bool {
		b, _ := json.Marshal(rec)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if rec.Status != store.StatusRunning {
			send("done", rec)
			return
		}
		if !send("progress", rec) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if rec, err = s.store.Get(id); err != nil {
			return
		}
	}
}
