package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

type templates struct {
	pages map[string]*template.Template
}

func parseTemplates() (*templates, error) {
	t := &templates{pages: make(map[string]*template.Template)}
	for _, name := range []string{"home", "capture", "compare", "import", "error"} {
		p, err := template.ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
		t.pages[name] = p
	}
	return t, nil
}

// page renders a template with the page CSP: scripts only from /assets.
func (s *Server) page(w http.ResponseWriter, name string, data any) {
	tmpl := s.tmpl.pages[name]
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", cspPage)
	h.Set("Cache-Control", "no-store")
	if err := tmpl.ExecuteTemplate(w, name+".html", data); err != nil {
		s.log.Error("template", "page", name, "err", err)
	}
}

// recView adds what the pages show about a record.
type recView struct {
	store.Record
	StartText, DurationText string
	PlannedSeconds          float64
	StartUnix               int64
}

func viewOf(r store.Record) recView {
	v := recView{Record: r, PlannedSeconds: time.Duration(r.Params.Duration).Seconds(), StartUnix: r.Start.UnixMilli()}
	if !r.Start.IsZero() {
		v.StartText = r.Start.Local().Format("2006-01-02 15:04:05")
	}
	switch {
	case r.Status == store.StatusRunning:
		v.DurationText = fmt.Sprintf("%.0fs of %gs", r.Elapsed, v.PlannedSeconds)
	case r.Seconds > 0:
		v.DurationText = fmt.Sprintf("%.1fs", r.Seconds)
	default:
		v.DurationText = "–"
	}
	return v
}

type typeView struct {
	Name      string
	Available bool
	Reason    string
}

func (s *Server) homePage(w http.ResponseWriter, r *http.Request) {
	caps := s.capabilities(r.Context())
	var types []typeView
	for _, t := range capture.Types {
		tv := typeView{Name: string(t), Available: true}
		if c, ok := caps.Collectors[string(t)]; ok {
			tv.Available, tv.Reason = c.Available, c.Reason
		}
		types = append(types, tv)
	}
	var list []recView
	for _, rec := range s.store.List() {
		list = append(list, viewOf(rec))
	}
	s.page(w, "home", map[string]any{
		"Title": "captures", "Page": "home", "Caps": caps, "Types": types, "Captures": list,
		"MaxDuration": s.cfg.MaxDuration.String(), "MaxHz": s.cfg.MaxHz,
	})
}

// pageQueryKeys are the filter, transform and rendering parameters the
// capture page passes on to the graph (filters and transforms to the
// downloads too).
var pageQueryKeys = append(append(slices.Clone(capture.QueryParams), transformNames...), "layout", "reverse", "minwidth", "s")

func (s *Server) capturePage(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	rec, err := s.store.Get(id)
	if !store.ValidID(id) || err != nil {
		s.errorPage(w, http.StatusNotFound, "capture "+quote(id)+" not found: it may have been deleted, or the link is wrong")
		return
	}
	in := r.URL.Query()
	q := make(map[string]string)
	graph, data := url.Values{}, url.Values{}
	for _, k := range pageQueryKeys {
		v := in.Get(k)
		if v == "" {
			continue
		}
		if k == "t" { // repeatable
			graph[k], data[k] = in[k], in[k]
			continue
		}
		q[k] = v
		graph.Set(k, v)
		if slices.Contains(capture.QueryParams, k) {
			data.Set(k, v)
		}
	}
	// Filters that do not parse are shown on the page instead of a broken graph.
	filterErr := ""
	if _, _, err := parseRender(graph); err != nil {
		filterErr = err.Error()
	} else if _, err := parseTransforms(graph); err != nil {
		filterErr = err.Error()
	}
	pj, _ := json.MarshalIndent(rec.Params, "", "  ")
	s.page(w, "capture", map[string]any{
		"Title": "capture " + id, "Page": "capture", "Rec": viewOf(rec), "Done": rec.Status == store.StatusDone,
		"Q": q, "FilterQuery": qs(graph), "DataQuery": qs(data), "FilterError": filterErr, "ParamsJSON": string(pj),
	})
}

func qs(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) {
	in := r.URL.Query()
	var done []recView
	for _, rec := range s.store.List() {
		if rec.Status == store.StatusDone {
			done = append(done, viewOf(rec))
		}
	}
	data := map[string]any{
		"Title": "compare", "Page": "compare", "Captures": done,
		"Base": in.Get("base"), "Compare": in.Get("compare"),
		"BaseFrom": in.Get("base_from"), "BaseTo": in.Get("base_to"),
		"CompareFrom": in.Get("compare_from"), "CompareTo": in.Get("compare_to"),
	}
	if in.Get("base") != "" && in.Get("compare") != "" {
		v := url.Values{}
		for _, k := range []string{"base", "compare", "base_from", "base_to", "compare_from", "compare_to"} {
			if in.Get(k) != "" {
				v.Set(k, in.Get(k))
			}
		}
		data["DiffURL"] = "/api/diff.svg?" + v.Encode()
		// The workspace shows the compare capture with the base as its
		// diff: graph, table with deltas, sandwich.
		ws := url.Values{"base": {in.Get("base")}}
		for from, to := range map[string]string{"base_from": "base_from", "base_to": "base_to", "compare_from": "from", "compare_to": "to"} {
			if in.Get(from) != "" {
				ws.Set(to, in.Get(from))
			}
		}
		data["WorkspaceURL"] = "/captures/" + url.PathEscape(in.Get("compare")) + "?" + ws.Encode()
	}
	s.page(w, "compare", data)
}

func (s *Server) importPage(w http.ResponseWriter, r *http.Request) {
	s.page(w, "import", map[string]any{"Title": "import", "Page": "import", "MaxUpload": humanBytes(s.cfg.MaxUpload)})
}

// errorPage answers a browser's request with a page that says what went
// wrong (the API answers JSON).
func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", cspPage)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.tmpl.pages["error"].ExecuteTemplate(w, "error.html", map[string]any{
		"Title": http.StatusText(status), "Page": "error", "Status": status, "StatusText": http.StatusText(status), "Message": msg,
	}); err != nil {
		s.log.Error("template", "page", "error", "err", err)
	}
}

// wantsPage reports whether a request is a browser's navigation to a page
// rather than a call of the API.
func wantsPage(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/api/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}
