package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/formats"
)

// renderParams are the query parameters of the rendered routes; any other
// is refused so that a typo does not silently show the wrong graph.
var renderParams = map[string]bool{
	"from": true, "to": true, "pid": true, "tid": true, "comm": true, "cpu": true, "idle": true, "view": true,
	"layout": true, "reverse": true, "sort": true, "minwidth": true, "title": true, "s": true, "token": true,
	"width": true, "palette": true, "x": true, "d": true, "i": true,
}

// viewerParams are state of the SVG's own script (zoom, case): they do not
// change the rendering.
var viewerParams = map[string]bool{"token": true, "x": true, "d": true, "i": true}

func parseRender(v url.Values) (capture.Query, flamegraph.Options, error) {
	q, err := capture.ParseQuery(v)
	if err != nil {
		return q, flamegraph.Options{}, errorf(http.StatusBadRequest, "%v", err)
	}
	opts, err := flamegraph.ParseOptions(v)
	if err != nil {
		return q, opts, errorf(http.StatusBadRequest, "%v", err)
	}
	return q, opts, nil
}

// cacheKey is the capture id (ids, comma-separated, when the answer is
// derived from several captures: renderCache.drop forgets it when any of
// them is deleted), the format and the canonical query (sorted, token left
// out), so equal requests share one rendering.
func cacheKey(id, format string, v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if !viewerParams[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(id + "|" + format)
	for _, k := range keys {
		for _, val := range v[k] {
			b.WriteString("|" + url.QueryEscape(k) + "=" + url.QueryEscape(val))
		}
	}
	return b.String()
}

// Content types and download names of the rendered formats.
var formatTypes = map[string]struct{ contentType, file string }{
	"svg":        {"image/svg+xml", "flamegraph.svg"},
	"folded":     {"text/plain; charset=utf-8", "folded.txt"},
	"pprof":      {"application/octet-stream", "profile.pb.gz"},
	"speedscope": {"application/json", "speedscope.json"},
}

// serveFormat renders a stored capture (or takes the rendering from the
// cache) and writes it.
func (s *Server) serveFormat(w http.ResponseWriter, r *http.Request, id, format string, v url.Values) {
	for k := range v {
		if !renderParams[k] {
			writeError(w, http.StatusBadRequest, "unknown parameter "+quote(k)+": allowed are from, to, pid, tid, comm, cpu, idle, view, layout, reverse, sort, minwidth, title, s, width, palette")
			return
		}
	}
	q, opts, err := parseRender(v)
	if err != nil {
		fail(w, err)
		return
	}
	s.ServeRendered(w, r, cacheKey(id, format, v), formatTypes[format].contentType, format, func(out io.Writer, nonce string) error {
		opts.ScriptNonce = nonce
		c, err := s.load(id)
		if err != nil {
			return err
		}
		if err := c.CheckRange(q); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		switch format {
		case "svg":
			return flamegraph.Render(out, c, q, opts)
		case "folded":
			return formats.WriteFolded(out, c, q)
		case "pprof":
			return formats.WritePprof(out, c, q)
		default:
			return formats.WriteSpeedscope(out, c, q)
		}
	})
}

// ServeRendered answers from the render cache, or renders with fn, caches
// and answers. Answers are kept gzipped (but pprof, gzipped already) and
// sent as they are to clients that accept gzip. SVG renderings get a
// nonce of their own, which their CSP names: fn must set
// Options.ScriptNonce to the nonce it is given.
func (s *Server) ServeRendered(w http.ResponseWriter, r *http.Request, key, contentType, format string, fn func(out io.Writer, nonce string) error) {
	val, hit, err := s.cache.get(key, func() (*rendered, error) {
		// Renderings are CPU-bound and hold their whole answer in memory:
		// a few at a time finish sooner than many at once, and bound memory.
		s.renderSem <- struct{}{}
		defer func() { <-s.renderSem }()
		start := time.Now()
		nonce := ""
		if format == "svg" {
			nonce = randomHex(16)
		}
		var buf bytes.Buffer
		out := io.Writer(&buf)
		var zw *gzip.Writer
		if format != "pprof" {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			out = zw
		}
		if err := fn(out, nonce); err != nil {
			return nil, err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return nil, err
			}
		}
		s.metrics.observeRender(format, start)
		val := &rendered{body: buf.Bytes(), gzipped: zw != nil}
		if nonce != "" {
			val.csp = cspSVG(nonce)
		}
		return val, nil
	})
	if err != nil {
		fail(w, err)
		return
	}
	if hit {
		s.metrics.cacheHits.Inc()
	} else {
		s.metrics.cacheMisses.Inc()
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("Vary", "Accept-Encoding")
	if val.csp != "" {
		h.Set("Content-Security-Policy", val.csp)
	}
	if !val.gzipped {
		h.Set("Content-Length", strconv.Itoa(len(val.body)))
		w.Write(val.body)
		return
	}
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(val.body)))
		w.Write(val.body)
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(val.body))
	if err != nil {
		fail(w, err)
		return
	}
	io.Copy(w, zr)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// renderRoute serves a stored capture in one of the rendered formats.
func (s *Server) renderRoute(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if _, err := s.store.Get(id); err != nil {
			notFound(w, id)
			return
		}
		if format != "svg" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+id+"-"+formatTypes[format].file+`"`)
		}
		s.serveFormat(w, r, id, format, r.URL.Query())
	}
}

// captureFile sends the stored capture file as it is.
func (s *Server) captureFile(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	rec, err := s.store.Get(id)
	if err != nil {
		notFound(w, id)
		return
	}
	f, err := s.store.OpenFile(id)
	if err != nil {
		writeError(w, http.StatusConflict, "capture "+id+" is "+rec.Status+": it has no data")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.scorch"`)
	http.ServeContent(w, r, "", rec.Start, f)
}
