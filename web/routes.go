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
	r.Use(defaultDeadline, s.recoverer, s.requestLog, securityHeaders, s.hostCheck, s.auth, sameOrigin, headAsGet)
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
		// Other sites' pages may not make the API render or record.
		r.Use(crossSiteGET(false))
		r.Get("/capabilities", s.getCapabilities)                        // GET /api/capabilities
		r.Post("/captures", s.postCapture)                               // POST /api/captures[?wait=true]
		r.Get("/captures", s.listCaptures)                               // GET /api/captures
		r.Post("/imports", s.postImport)                                 // POST /api/imports
		r.With(crossSiteGET(true)).Get("/flamegraph.svg", s.blockingSVG) // GET /api/flamegraph.svg?type=cpu&seconds=5
		r.Get("/overview.json", s.overviewJSON)                          // GET /api/overview.json[?minutes=5]
		r.Get("/overview/events", s.overviewEvents)                      // GET /api/overview/events (server-sent overview.json at every sample)
		r.Get("/diff.svg", s.diffSVG)                                    // GET /api/diff.svg?base=ID&compare=ID
		r.Get("/diff/functions.json", s.diffFunctionsJSON)               // GET /api/diff/functions.json?base=ID&compare=ID
		r.Get("/diff/tree.json", s.diffTreeJSON)                         // GET /api/diff/tree.json?base=ID&compare=ID
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
			r.Get("/heatmap.json", s.heatmapJSON)                  // GET /api/captures/{id}/heatmap.json?rows=50
			r.Get("/functions.json", s.functionsJSON)              // GET /api/captures/{id}/functions.json
			r.Get("/sandwich.json", s.sandwichJSON)                // GET /api/captures/{id}/sandwich.json?fn=NAME
			r.Get("/tree.json", s.treeJSON)                        // GET /api/captures/{id}/tree.json
			r.Get("/summary.json", s.summaryJSON)                  // GET /api/captures/{id}/summary.json
			r.Get("/threads.json", s.threadsJSON)                  // GET /api/captures/{id}/threads.json[?bucket=0.1&limit=25&by=thread]
			r.Get("/stackchart.json", s.stackchartJSON)            // GET /api/captures/{id}/stackchart.json?tid=N&from=&to=&width=PX
		})
	})
	r.With(crossSiteGET(true)).Get("/debug/pprof/profile", s.debugPprof) // GET /debug/pprof/profile?seconds=N
	return r
}

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

// headAsGet routes HEAD to the GET routes (the server sends the headers
// only), where chi answered 405.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			if rctx := chi.RouteContext(r.Context()); rctx != nil {
				rctx.RouteMethod = http.MethodGet
			}
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
