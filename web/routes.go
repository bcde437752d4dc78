package web

import (
	"io/fs"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/scorch-dev/scorch/web/store"
)

// routes is the service's route table.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(defaultDeadline, s.recoverer, s.requestLog, securityHeaders, s.hostCheck, s.auth, sameOrigin)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if wantsPage(r) {
			s.errorPage(w, http.StatusNotFound, "there is no page at "+quote(r.URL.Path))
			return
		}
		writeError(w, http.StatusNotFound, "no route "+quote(r.URL.Path)+": see / for the UI and the README for the API")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+quote(r.URL.Path))
	})

	r.Get("/healthz", s.healthz)                                                                      // GET /healthz
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})) // GET /metrics
	static, _ := fs.Sub(assets, "static")
	r.Handle("/assets/*", http.StripPrefix("/assets/", http.FileServer(http.FS(static)))) // GET /assets/{file}

	// UI pages
	r.Get("/", s.homePage)                 // GET /
	r.Get("/overview", s.overviewPage)     // GET /overview
	r.Get("/captures/{id}", s.capturePage) // GET /captures/{id}
	r.Get("/compare", s.comparePage)       // GET /compare?base=ID&compare=ID
	r.Get("/import", s.importPage)         // GET /import

	r.Route("/api", func(r chi.Router) {
		r.Get("/capabilities", s.getCapabilities) // GET /api/capabilities
		r.Post("/captures", s.postCapture)        // POST /api/captures[?wait=true]
		r.Get("/captures", s.listCaptures)        // GET /api/captures
		r.Post("/imports", s.postImport)          // POST /api/imports
		r.Get("/flamegraph.svg", s.blockingSVG)   // GET /api/flamegraph.svg?type=cpu&seconds=5
		r.Route("/captures/{id}", func(r chi.Router) {
			r.Use(validID)
			r.Get("/", s.getCapture)                               // GET /api/captures/{id}
			r.Delete("/", s.deleteCapture)                         // DELETE /api/captures/{id}
			r.Post("/stop", s.stopCapture)                         // POST /api/captures/{id}/stop
			r.Get("/events", s.captureEvents)                      // GET /api/captures/{id}/events (server-sent progress)
			r.Get("/flamegraph.svg", s.renderRoute("svg"))         // GET /api/captures/{id}/flamegraph.svg
			r.Get("/folded", s.renderRoute("folded"))              // GET /api/captures/{id}/folded
			r.Get("/profile.pb.gz", s.renderRoute("pprof"))        // GET /api/captures/{id}/profile.pb.gz
			r.Get("/speedscope.json", s.renderRoute("speedscope")) // GET /api/captures/{id}/speedscope.json
			r.Get("/capture", s.captureFile)                       // GET /api/captures/{id}/capture
			for _, h := range captureRouteHooks {
				h(s, r)
			}
		})
		for _, h := range apiRouteHooks {
			h(s, r)
		}
	})
	r.Get("/debug/pprof/profile", s.debugPprof) // GET /debug/pprof/profile?seconds=N
	return r
}

// Route hooks: the heatmap and diff views register their routes here from
// their own files (web/heatmap*.go), in an init function:
//
//	func init() { captureRouteHooks = append(captureRouteHooks, func(s *Server, r chi.Router) {
//		r.Get("/heatmap.json", s.heatmapJSON) // GET /api/captures/{id}/heatmap.json
//	}) }
//
// captureRouteHooks get the /api/captures/{id} router (the id is already
// validated), apiRouteHooks the /api router (for /api/diff.svg).
var (
	captureRouteHooks []func(s *Server, r chi.Router)
	apiRouteHooks     []func(s *Server, r chi.Router)
)

// validID answers 404 for ids that cannot name a capture, before any
// handler sees them.
func validID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !store.ValidID(chi.URLParam(r, "id")) {
			writeError(w, http.StatusNotFound, "capture "+quote(chi.URLParam(r, "id"))+" not found: ids look like 20260102-150405-0a1b2c3d")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// defaultDeadline bounds how long writing any answer may take; routes that
// wait for a capture extend it.
func defaultDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeDeadline(w, 2*time.Minute)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}
