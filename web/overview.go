package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/scorch-dev/scorch/host"
)

// The host overview: the USE table of the host's resources, the top
// processes and the kernel errors, live, each finding with the capture that
// explains it (GET /overview, GET /api/overview.json, its events; routes.go).

// HostSampler is what the overview needs of the host sampler (host.Sampler).
type HostSampler interface {
	Overview(minutes int) host.Overview
	Generation() uint64
	Changed() <-chan struct{}
}

// Minutes of series the overview answers.
const (
	DefaultOverviewMinutes = 5
	MaxOverviewMinutes     = 15
)

// overviewState is the sampler and the encoded answers of its latest
// sample, one per minutes value: 50 clients polling cost one encoding.
type overviewState struct {
	once    sync.Once
	sampler HostSampler

	mu    sync.Mutex
	gen   uint64
	cache map[int][]byte
}

func (s *Server) hostSampler() HostSampler {
	o := &s.overviewState
	o.once.Do(func() {
		o.sampler = s.cfg.Host
		if o.sampler == nil {
			// Tests and embedders without a sampler of their own: one that
			// lives as long as the process.
			hs := host.NewSampler(host.Options{})
			go hs.Run(context.Background())
			o.sampler = hs
		}
	})
	return o.sampler
}

// overviewBytes is the encoded overview of the latest sample. A sampler
// that has not taken two samples yet (rates need two) is waited for, up
// to wait.
func (s *Server) overviewBytes(ctx context.Context, minutes int, wait time.Duration) []byte {
	hs := s.hostSampler()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for hs.Generation() < 2 {
		select {
		case <-hs.Changed():
		case <-deadline.C:
			goto ready
		case <-ctx.Done():
			goto ready
		}
	}
ready:
	o := &s.overviewState
	o.mu.Lock()
	defer o.mu.Unlock()
	gen := hs.Generation()
	if gen != o.gen || o.cache == nil {
		o.gen, o.cache = gen, make(map[int][]byte)
	}
	if b, ok := o.cache[minutes]; ok {
		return b
	}
	b, err := json.Marshal(hs.Overview(minutes))
	if err != nil {
		b = []byte(`{"error":` + strconv.Quote(err.Error()) + `}`)
	}
	o.cache[minutes] = b
	return b
}

func parseMinutes(r *http.Request) (int, error) {
	v := r.URL.Query().Get("minutes")
	if v == "" {
		return DefaultOverviewMinutes, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxOverviewMinutes {
		return 0, errorf(http.StatusBadRequest, "minutes %s is out of range: allowed 1..%d", quote(v), MaxOverviewMinutes)
	}
	return n, nil
}

func (s *Server) overviewJSON(w http.ResponseWriter, r *http.Request) {
	minutes, err := parseMinutes(r)
	if err != nil {
		fail(w, err)
		return
	}
	b := s.overviewBytes(r.Context(), minutes, 3*time.Second)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// overviewEvents sends the overview at every sample as server-sent events
// ("overview"), until the client goes.
func (s *Server) overviewEvents(w http.ResponseWriter, r *http.Request) {
	minutes, err := parseMinutes(r)
	if err != nil {
		fail(w, err)
		return
	}
	writeDeadline(w, 24*time.Hour)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	hs := s.hostSampler()
	for {
		b := s.overviewBytes(r.Context(), minutes, 3*time.Second)
		sent := hs.Generation()
		if _, err := fmt.Fprintf(w, "event: overview\ndata: %s\n\n", b); err != nil || rc.Flush() != nil {
			return
		}
		for hs.Generation() == sent {
			select {
			case <-r.Context().Done():
				return
			case <-hs.Changed():
			}
		}
	}
}

var overviewTmpl = sync.OnceValues(func() (*template.Template, error) {
	return template.ParseFS(assets, "templates/layout.html", "templates/overview.html")
})

// overviewPage is the page; its script draws the JSON and follows the events.
func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	tmpl, err := overviewTmpl()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "overview template: "+err.Error())
		return
	}
	s.hostSampler() // start sampling with the first visit at the latest
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", cspPage)
	h.Set("Cache-Control", "no-store")
	if err := tmpl.ExecuteTemplate(w, "overview.html", map[string]any{"Title": "overview", "Page": "overview", "Minutes": DefaultOverviewMinutes}); err != nil {
		s.log.Error("template", "page", "overview", "err", err)
	}
}
