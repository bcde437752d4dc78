package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/heatmap"
	"github.com/scorch-dev/scorch/output"
	"github.com/scorch-dev/scorch/web/store"
)

// heatmapJSON answers FlameScope's sub-second offset heatmap of a capture.
func (s *Server) heatmapJSON(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	r = s.untransformedEvents(r, id)
	v := r.URL.Query()
	if err := heatmapNames.check(v); err != nil {
		fail(w, err)
		return
	}
	rows, err := heatmap.ParseRows(v.Get("rows"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	norm, err := heatmap.ParseNorm(v.Get("norm"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q, err := capture.ParseQuery(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ts, err := parseTransforms(v)
	if err != nil {
		fail(w, err)
		return
	}
	if _, err := s.store.Get(id); err != nil {
		notFound(w, id)
		return
	}
	v.Del("from")
	v.Del("to")
	s.ServeRendered(w, r, cacheKey(id, "heatmap", v), heatmapOutput.ContentType, heatmapOutput.Name, func(out io.Writer, _ string) error {
		c, err := s.load(id)
		if err != nil {
			return err
		}
		if norm == "threads" {
			return s.threadsHeatmap(out, c, ts, q, rows)
		}
		if err := heatmapOutput.Write(out, s.views.transformed.get(c, ts), output.View{Query: q, Rows: rows}); err != nil {
			if errors.Is(err, heatmap.ErrNoTimestamps) {
				return errorf(http.StatusBadRequest, "%v", err)
			}
			return errorf(http.StatusBadRequest, "capture %s: %v", id, err)
		}
		return nil
	})
}

// threadsHeatmap writes the heatmap with norm=threads: each cell the
// average number of threads off CPU during it.
func (s *Server) threadsHeatmap(out io.Writer, c *capture.Capture, ts []capture.Transform, q capture.Query, rows int) error {
	if !c.Meta.Type.Info().Interval {
		return errorf(http.StatusBadRequest, "%v (this is a %s capture)", heatmap.ErrNotIntervals, c.Meta.Type)
	}
	h, err := heatmap.Compute(s.views.transformed.get(c, ts), q, rows)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	t, err := h.PerThread()
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return json.NewEncoder(out).Encode(t)
}

// diffSVG answers the differential flame graph of two captures, or of two
// ranges of one capture.
func (s *Server) diffSVG(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := diffNames.check(v); err != nil {
		fail(w, err)
		return
	}
	ids := [2]string{v.Get("base"), v.Get("compare")}
	for i, name := range []string{"base", "compare"} {
		if ids[i] == "" {
			writeError(w, http.StatusBadRequest, name+" is missing: give the ids of the base and compare captures (they may be the same, with different ranges)")
			return
		}
		if _, err := s.store.Get(ids[i]); !store.ValidID(ids[i]) || err != nil {
			writeError(w, http.StatusNotFound, name+" capture "+quote(ids[i])+" not found")
			return
		}
	}
	if _, err := capture.ParseQuery(sideValues(v, "")); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var qs [2]capture.Query
	for i, side := range []string{"base", "compare"} {
		q, err := capture.ParseQuery(sideValues(v, side))
		if err != nil {
			writeError(w, http.StatusBadRequest, side+"_from/"+side+"_to: "+err.Error())
			return
		}
		qs[i] = q
	}
	opts, err := flamegraph.ParseOptions(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ts, err := parseTransforms(v)
	if err != nil {
		fail(w, err)
		return
	}
	s.ServeRendered(w, r, cacheKey(ids[0]+","+ids[1], "diff.svg", v), svgOutput.ContentType, svgOutput.Name, func(out io.Writer, nonce string) error {
		opts.ScriptNonce = nonce
		cs, err := s.diffCaptures(ids, qs, ts)
		if err != nil {
			return err
		}
		return flamegraph.RenderDiff(out, cs[0], cs[1], qs[0], qs[1], opts)
	})
}

// sideValues is the filter query of one side of a diff: the shared filters
// with that side's from and to (none for side "").
func sideValues(v url.Values, side string) url.Values {
	out := url.Values{}
	for _, k := range capture.QueryParams {
		if k == "from" || k == "to" {
			continue
		}
		if vals, ok := v[k]; ok {
			out[k] = vals
		}
	}
	if side == "" {
		return out
	}
	// Several ranges a side: base_from and base_to repeated, in pairs.
	if f := v[side+"_from"]; len(f) > 0 {
		out["from"] = f
	}
	if t := v[side+"_to"]; len(t) > 0 {
		out["to"] = t
	}
	return out
}
