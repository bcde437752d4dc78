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
	"strconv"
	"strings"
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

// The fields of POST /api/captures, for error messages.
var paramFields = []string{"type", "duration", "hz", "pid", "tid", "comm", "event", "unwind", "state", "min_block", "max_block", "view"}

// decodeParams reads capture parameters from a JSON body. pid and tid may
// be a number, a list or a comma-separated string.
func decodeParams(body []byte) (capture.Params, error) {
	var p capture.Params
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return p, errorf(http.StatusBadRequest, "body is not a JSON object: %v", err)
	}
	allowed := make(map[string]bool)
	for _, f := range paramFields {
		allowed[f] = true
	}
	for k := range raw {
		if !allowed[k] {
			return p, errorf(http.StatusBadRequest, "unknown field %q: allowed fields are %s", k, strings.Join(paramFields, ", "))
		}
	}
	for _, k := range []string{"pid", "tid"} {
		v, ok := raw[k]
		if !ok {
			continue
		}
		ids, err := parseIDList(k, v)
		if err != nil {
			return p, err
		}
		raw[k], _ = json.Marshal(ids)
	}
	norm, _ := json.Marshal(raw)
	if err := json.Unmarshal(norm, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return p, errorf(http.StatusBadRequest, "field %s has the wrong type: expected %s", te.Field, te.Type)
		}
		return p, errorf(http.StatusBadRequest, "%v", err)
	}
	return p, nil
}

// parseIDList reads pid or tid of a JSON body: a number, a list of
// numbers or a comma-separated string.
func parseIDList(name string, v json.RawMessage) ([]int, error) {
	var n int
	if err := json.Unmarshal(v, &n); err == nil {
		return []int{n}, nil
	}
	var list []int
	if err := json.Unmarshal(v, &list); err == nil {
		return list, nil
	}
	var str string
	if err := json.Unmarshal(v, &str); err != nil {
		return nil, badIDs(name)
	}
	return parseIDString(name, str)
}

// parseIDString reads a comma-separated list of ids.
func parseIDString(name, str string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(str, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, badIDs(name)
		}
		ids = append(ids, n)
	}
	return ids, nil
}

func badIDs(name string) error {
	return errorf(http.StatusBadRequest, "%s must be a positive number, a list of numbers or a comma-separated string of numbers", name)
}

// setIDs sets p's pids or tids (k "pid" or "tid") from a form or query
// field, a comma-separated list.
func setIDs(p *capture.Params, k, str string) error {
	ids, err := parseIDString(k, str)
	if err != nil {
		return err
	}
	if k == "pid" {
		p.PIDs = ids
	} else {
		p.TIDs = ids
	}
	return nil
}

// formParams reads the UI's new-capture form.
func formParams(v url.Values) (capture.Params, error) {
	var p capture.Params
	p.Type = capture.Type(v.Get("type"))
	if d := v.Get("duration"); d != "" {
		dur, err := capture.ParseDuration(d)
		if err != nil {
			return p, errorf(http.StatusBadRequest, "%v", err)
		}
		p.Duration = capture.Duration(dur)
	}
	if h := v.Get("hz"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil {
			return p, errorf(http.StatusBadRequest, "hz %q is not a number: allowed %d..%d", h, capture.MinHz, capture.MaxHz)
		}
		p.Hz = n
	}
	target := v.Get("target")
	for _, k := range []string{"pid", "tid"} {
		if target == "" || target == k {
			if err := setIDs(&p, k, v.Get(k)); err != nil {
				return p, err
			}
		}
	}
	if target == "" || target == "comm" {
		p.Comm = strings.TrimSpace(v.Get("comm"))
	}
	p.Event = v.Get("event")
	p.Unwind = v.Get("unwind")
	p.State = v.Get("state")
	p.View = v.Get("view")
	for _, k := range []string{"min_block", "max_block"} {
		if d := v.Get(k); d != "" {
			dur, err := capture.ParseDuration(d)
			if err != nil {
				return p, errorf(http.StatusBadRequest, "%s: %v", k, err)
			}
			if k == "min_block" {
				p.MinBlock = capture.Duration(dur)
			} else {
				p.MaxBlock = capture.Duration(dur)
			}
		}
	}
	return p, nil
}

func (s *Server) postCapture(w http.ResponseWriter, r *http.Request) {
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
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
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

// blockingParams reads the capture of the blocking GET routes: seconds
// (default 30, capped), type, target and frequency.
func (s *Server) blockingParams(v url.Values, typ capture.Type) (capture.Params, error) {
	p := capture.Params{Type: typ}
	if t := v.Get("type"); t != "" {
		p.Type = capture.Type(t)
	}
	secs := DefaultBlocking
	if str := v.Get("seconds"); str != "" {
		f, err := strconv.ParseFloat(str, 64)
		max := s.cfg.MaxBlocking.Seconds()
		if err != nil || !(f > 0) || f > max {
			return p, errorf(http.StatusBadRequest, "seconds %s is out of range: allowed more than 0 up to %g", quote(str), max)
		}
		secs = time.Duration(f * float64(time.Second))
	}
	p.Duration = capture.Duration(secs)
	if h := v.Get("hz"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil {
			return p, errorf(http.StatusBadRequest, "hz %s is not a number: allowed %d..%d", quote(h), capture.MinHz, s.cfg.MaxHz)
		}
		p.Hz = n
	}
	for _, k := range []string{"pid", "tid"} {
		if err := setIDs(&p, k, v.Get(k)); err != nil {
			return p, err
		}
	}
	p.Comm = v.Get("comm")
	p.Event = v.Get("event")
	p.Unwind = v.Get("unwind")
	return p, nil
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
	p, err := s.blockingParams(v, capture.CPU)
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
	if v.Get("type") == "" {
		writeError(w, http.StatusBadRequest, "type is required: allowed values are "+capture.TypeList())
		return
	}
	// Check the rendering options before spending seconds on a capture.
	if _, _, err := parseRender(v); err != nil {
		fail(w, err)
		return
	}
	p, err := s.blockingParams(v, "")
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

// renderValues keeps the query parameters that shape a rendering, leaving
// out those of the capture itself (pid there is a target, not a filter).
func renderValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vals := range v {
		switch k {
		case "layout", "reverse", "sort", "minwidth", "title", "s", "idle", "view", "width", "palette":
			out[k] = vals
		}
	}
	return out
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
