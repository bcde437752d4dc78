package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

// httpError carries a status with a message for the client.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// checkParams applies defaults and the server's limits, and checks that the
// host can run the collector and that the targets exist.
func (s *Server) checkParams(ctx context.Context, p *capture.Params) error {
	if p.Type == "" {
		return errorf(http.StatusBadRequest, "type is required: allowed values are %s", capture.TypeList())
	}
	if len(p.Command) > 0 {
		return errorf(http.StatusBadRequest, "command targets are not allowed over HTTP: give pid, tid or comm")
	}
	p.Defaults()
	limits := capture.Limits{MaxDuration: s.cfg.MaxDuration, MaxHz: s.cfg.MaxHz, MaxDurationSetting: "--max-duration", MaxHzSetting: "--max-hz"}
	if err := p.Check(limits); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if p.Duration == 0 || time.Duration(p.Duration) < 0 {
		return errorf(http.StatusBadRequest, "duration must be positive, up to %s (--max-duration)", s.cfg.MaxDuration)
	}
	for _, pid := range p.PIDs {
		if !s.cfg.ProcessExists(pid) {
			return errorf(http.StatusBadRequest, "pid %d does not exist on this host", pid)
		}
	}
	for _, tid := range p.TIDs {
		if !s.cfg.ProcessExists(tid) {
			return errorf(http.StatusBadRequest, "tid %d does not exist on this host", tid)
		}
	}
	caps := s.capabilities(ctx)
	if c, ok := caps.Collectors[string(p.Type)]; ok && !c.Available {
		return errorf(http.StatusServiceUnavailable, "collector %s is unavailable on this host: %s", p.Type, c.Reason)
	}
	if ec, ok := s.cfg.Recorder.(EventChecker); ok {
		if err := ec.CheckEvent(ctx, *p); err != nil {
			return err
		}
	}
	return nil
}

func procExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// start registers a capture and runs it in the background. The returned
// channel closes when the capture is stored. parent is the context the
// capture runs under besides the server's own stop (a blocking request's
// context, so a client that disconnects cancels it). hold keeps the capture
// from retention until the request answering with it calls s.release(j).
func (s *Server) start(parent context.Context, p capture.Params, hold bool) (store.Record, *job, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return store.Record{}, nil, errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	if len(s.running) >= s.cfg.MaxConcurrent {
		s.mu.Unlock()
		return store.Record{}, nil, errorf(http.StatusTooManyRequests, "%d captures are running, the limit of concurrent captures is %d (--max-concurrent): wait for one to finish", len(s.running), s.cfg.MaxConcurrent)
	}
	now := time.Now()
	rec := store.Record{
		ID:     store.NewID(now),
		Type:   p.Type,
		Status: store.StatusRunning,
		Params: p,
		Start:  now,
		Unit:   p.Type.Unit(p.Event),
		Source: "bpf",
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stopParent := context.AfterFunc(parent, cancel)
	j := &job{cancel: cancel, done: make(chan struct{}), release: func() {}}
	if hold {
		j.release = s.store.Hold(rec.ID)
	}
	s.running[rec.ID] = j
	s.wg.Add(1)
	s.mu.Unlock()

	if err := s.store.Begin(rec); err != nil {
		// No room for even the record: refuse rather than record data that
		// cannot be kept.
		s.log.Error("capture folder", "id", rec.ID, "err", err)
		s.mu.Lock()
		delete(s.running, rec.ID)
		s.mu.Unlock()
		s.wg.Done()
		stopParent()
		cancel()
		j.release()
		return store.Record{}, nil, fmt.Errorf("starting capture: %w", err)
	}
	s.metrics.running.Inc()
	s.log.Info("capture started", "id", rec.ID, "type", p.Type, "duration", time.Duration(p.Duration), "target", rec.Target())
	go func() {
		defer s.wg.Done()
		defer close(j.done)
		defer stopParent()
		defer cancel()
		j.err = s.run(ctx, rec)
	}()
	return rec, j, nil
}

// run records, then stores the capture and its final record.
func (s *Server) run(ctx context.Context, rec store.Record) error {
	id := rec.ID
	c, err := s.cfg.Recorder.Record(ctx, rec.Params, func(p Progress) {
		s.store.Update(id, func(r *store.Record) {
			r.Elapsed = p.Elapsed.Seconds()
			r.Samples = p.Events
			r.Lost = p.Lost
		})
	})
	end := time.Now()
	rec.End = &end
	rec.Elapsed = 0
	if err == nil && c == nil {
		err = errors.New("the recorder returned no capture")
	}
	if err != nil {
		rec.Status = store.StatusFailed
		rec.Error = err.Error()
		s.log.Warn("capture failed", "id", id, "err", err)
		if ferr := s.store.Finish(rec, nil); ferr != nil {
			s.log.Error("saving failed capture", "id", id, "err", ferr)
		}
	} else {
		c.Meta.ID = id
		rec.Status = store.StatusDone
		rec.Samples = c.Meta.Stats.Samples
		rec.Lost = c.Meta.Stats.Lost
		rec.Seconds = c.Meta.Duration.Seconds()
		rec.Warnings = c.Meta.Warnings
		if !c.Meta.Start.IsZero() {
			rec.Start = c.Meta.Start
		}
		if ferr := s.store.Finish(rec, c); ferr != nil {
			s.log.Error("saving capture", "id", id, "err", ferr)
			rec.Status = store.StatusFailed
			err = fmt.Errorf("saving the capture: %w", ferr) // the request's answer: 507 when the disk is full
		} else {
			s.loaded.put(id, c)
		}
		s.log.Info("capture done", "id", id, "samples", rec.Samples, "lost", rec.Lost, "seconds", rec.Seconds)
	}
	s.metrics.finished(rec)
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
	s.metrics.running.Dec()
	s.prune()
	return err
}

// release lets retention remove a capture a request has answered with, and
// applies retention now that it may.
func (s *Server) release(j *job) {
	j.release()
	s.prune()
}

func (s *Server) prune() {
	if removed := s.store.Prune(s.cfg.Keep, s.cfg.KeepBytes); len(removed) > 0 {
		for _, id := range removed {
			s.loaded.drop(id)
			s.cache.drop(id)
		}
		s.log.Info("retention removed captures", "ids", removed)
	}
}

// stop cancels a running capture; what was collected is kept.
func (s *Server) stop(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.running[id]
	if ok {
		j.cancel()
	}
	return ok
}

// load returns a stored capture, from memory when it was used recently.
func (s *Server) load(id string) (*capture.Capture, error) {
	if c := s.loaded.get(id); c != nil {
		return c, nil
	}
	rec, err := s.store.Get(id)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "capture %s not found", id)
	}
	if rec.Status == store.StatusRunning {
		return nil, errorf(http.StatusConflict, "capture %s is still running: its data is available when it is done", id)
	}
	if rec.Status != store.StatusDone {
		return nil, errorf(http.StatusConflict, "capture %s is %s: it has no data (%s)", id, rec.Status, rec.Error)
	}
	c, err := s.loaded.load(id, s.store.Load)
	if err != nil {
		return nil, errorf(http.StatusConflict, "%s", err.Error())
	}
	return c, nil
}
