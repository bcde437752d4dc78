package web

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
	"github.com/scorch-dev/scorch/output"
)

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
		if k != "token" && !slices.Contains(viewerNames, k) {
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

// serveFormat renders a stored capture (or takes the rendering from the
// cache) and writes it.
func (s *Server) serveFormat(w http.ResponseWriter, r *http.Request, id string, out *output.Format, v url.Values) {
	if err := renderNames.check(v); err != nil {
		fail(w, err)
		return
	}
	q, opts, err := parseRender(v)
	if err != nil {
		fail(w, err)
		return
	}
	ts, err := parseTransforms(v)
	if err != nil {
		fail(w, err)
		return
	}
	s.ServeRendered(w, r, cacheKey(id, out.Name, v), out.ContentType, out.Name, func(w io.Writer, nonce string) error {
		opts.ScriptNonce = nonce
		c, err := s.load(id)
		if err != nil {
			return err
		}
		if err := c.CheckRange(q); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		c = c.Transform(ts)
		return out.Write(w, c, output.View{Query: q, Graph: opts})
	})
}

// ServeRendered answers from the render cache, or renders with fn, caches
// and answers. format names the rendering in metrics; answers are kept
// gzipped (but those of output formats gzipped already, pprof) and sent as
// they are to clients that accept gzip. Every answer of an SVG rendering
// gets a nonce of its own, which its CSP names: fn must set
// Options.ScriptNonce to the nonce it is given (a stand-in, replaced per
// answer; other formats get "").
func (s *Server) ServeRendered(w http.ResponseWriter, r *http.Request, key, contentType, format string, fn func(out io.Writer, nonce string) error) {
	gzipped := false
	if out, err := output.Lookup(format); err == nil {
		gzipped = out.Gzipped
	}
	val, hit, err := s.cache.get(key, func() (*rendered, error) {
		// Renderings are CPU-bound and hold their whole answer in memory:
		// a few at a time finish sooner than many at once, and bound memory.
		if err := s.renders.enterWithin(r.Context(), renderMaxWait); err != nil {
			if errors.Is(err, errBusy) {
				return nil, errOverloaded
			}
			return nil, err
		}
		defer s.renders.leave()
		start := time.Now()
		if contentType == svgType {
			// Rendered under a random stand-in for the nonce, cut there.
			nonce := randomHex(16)
			nw := newNoncedWriter(nonce)
			bw := bufio.NewWriterSize(nw, 64<<10)
			if err := fn(bw, nonce); err != nil {
				return nil, err
			}
			if err := bw.Flush(); err != nil {
				return nil, err
			}
			n, err := nw.Close()
			if err != nil {
				return nil, err
			}
			s.metrics.observeRender(format, start)
			return &rendered{nonced: n}, nil
		}
		var buf chunkBuf
		out := io.Writer(&buf)
		var zw *gzip.Writer
		if !gzipped {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			out = zw
		}
		if err := fn(out, ""); err != nil {
			return nil, err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return nil, err
			}
		}
		s.metrics.observeRender(format, start)
		val := &rendered{body: buf.done(), gzipped: zw != nil}
		return val, nil
	})
	if err != nil {
		if errors.Is(err, errOverloaded) {
			w.Header().Set("Retry-After", "1")
		}
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
	if val.nonced != nil {
		nonce := randomHex(16)
		h.Set("Content-Security-Policy", cspSVG(nonce))
		if !acceptsGzip(r) {
			val.nonced.plainTo(w, nonce)
			return
		}
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.FormatInt(val.nonced.length(len(nonce)), 10))
		val.nonced.writeTo(w, nonce)
		return
	}
	if !val.gzipped {
		h.Set("Content-Length", strconv.FormatInt(chunksLen(val.body), 10))
		writeChunks(w, val.body)
		return
	}
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.FormatInt(chunksLen(val.body), 10))
		writeChunks(w, val.body)
		return
	}
	zr, err := gzip.NewReader(chunksReader(val.body))
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

// renderRoute serves a stored capture in one of the output formats
// (output.Formats); SVG is shown, the others are downloads.
func (s *Server) renderRoute(format string) http.HandlerFunc {
	out := formatOf(format)
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if _, err := s.store.Get(id); err != nil {
			notFound(w, id)
			return
		}
		if out.ContentType != svgType {
			w.Header().Set("Content-Disposition", `attachment; filename="`+id+"-"+out.File+`"`)
		}
		s.serveFormat(w, r, id, out, r.URL.Query())
	}
}

// svgType is the content type of the SVG renderings, which run a script
// under a nonce of their own.
const svgType = "image/svg+xml"

// formatOf is the output format of a route; routes name known formats.
func formatOf(name string) *output.Format {
	out, err := output.Lookup(name)
	if err != nil {
		panic("web: route of an unknown output format: " + err.Error())
	}
	return out
}

// The output formats the web serves outside renderRoute.
var (
	svgOutput     = formatOf("svg")
	pprofOutput   = formatOf("pprof")
	heatmapOutput = formatOf("heatmap-json")
)

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
