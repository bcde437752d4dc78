package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/timeline"
)

// The time views: threads.json (activity tracks per thread or process)
// and stackchart.json (one thread's stacks over time). Both take the
// analysis routes' filters and transforms, so tracks and charts follow the
// page's view; answers are cached like the other analysis routes'.

// timelineView loads the capture and its view through the transforms.
func (s *Server) timelineView(id string, vw view) (c, tv *capture.Capture, err error) {
	if c, err = s.load(id); err != nil {
		return nil, nil, err
	}
	if !c.Meta.Timestamps {
		return nil, nil, errorf(http.StatusBadRequest, "%v", timeline.ErrNoTimestamps)
	}
	if err := c.CheckRange(vw.q); err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return c, s.views.transformed.get(c, vw.ts), nil
}

// timelineError is a 400 for what the parameters asked that the capture
// cannot give.
func timelineError(err error) error {
	var he *httpError
	if errors.As(err, &he) {
		return err
	}
	return errorf(http.StatusBadRequest, "%v", err)
}

func threadsOptions(v url.Values) (timeline.ThreadsOptions, error) {
	var o timeline.ThreadsOptions
	var err error
	if o.Bucket, err = timeline.ParseSeconds("bucket", v.Get("bucket")); err != nil {
		return o, errorf(http.StatusBadRequest, "%v", err)
	}
	if o.Limit, err = intParam(v, "limit", timeline.DefaultLimit, 1, timeline.MaxLimit); err != nil {
		return o, err
	}
	o.By = v.Get("by")
	if o.By != "" && !slices.Contains(timeline.Groupings, o.By) {
		return o, errorf(http.StatusBadRequest, "by %s is not supported: allowed values are %s", quote(o.By), strings.Join(timeline.Groupings, ", "))
	}
	return o, nil
}

func (s *Server) threadsJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	r = s.untransformedEvents(r, id)
	s.eventsRoute(w, r, "threads-json", []string{"bucket", "limit", "by", "norm"}, func(v url.Values, vw view, out io.Writer) error {
		o, err := threadsOptions(v)
		if err != nil {
			return err
		}
		norm := v.Get("norm")
		if norm != "" && !slices.Contains(timeline.Norms, norm) {
			return errorf(http.StatusBadRequest, "norm %s is not supported: allowed values are %s (threads for off-CPU types)", quote(norm), strings.Join(timeline.Norms, ", "))
		}
		if out == nil {
			return nil
		}
		c, tv, err := s.timelineView(id, vw)
		if err != nil {
			return err
		}
		t, err := timeline.ComputeThreads(c, tv, vw.q, o)
		if err != nil {
			return timelineError(err)
		}
		if norm == "threads" {
			pt, err := timeline.PerThread(t)
			if err != nil {
				return errorf(http.StatusBadRequest, "%v", err)
			}
			return json.NewEncoder(out).Encode(pt)
		}
		return json.NewEncoder(out).Encode(t)
	})
}

func (s *Server) stackchartJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	s.eventsRoute(w, r, "stackchart-json", []string{"width"}, func(v url.Values, vw view, out io.Writer) error {
		if len(vw.q.TIDs) != 1 {
			return errorf(http.StatusBadRequest, "tid must name one thread (threads.json lists them), not %d", len(vw.q.TIDs))
		}
		width, err := intParam(v, "width", timeline.DefaultWidth, 1, timeline.MaxWidth)
		if err != nil || out == nil {
			return err
		}
		c, tv, err := s.timelineView(id, vw)
		if err != nil {
			return err
		}
		sc, err := timeline.ComputeStackChart(c, tv, vw.q, timeline.StackOptions{TID: vw.q.TIDs[0], Width: width})
		if err != nil {
			return timelineError(err)
		}
		return json.NewEncoder(out).Encode(sc)
	})
}
