// Package web is scorch's HTTP service: the UI, the JSON API, the blocking
// capture routes compatible with `go tool pprof`, and the on-disk store of
// captures. Recording and host checks come in through the Recorder
// interface, so the service is tested with synthetic captures.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/web/store"
)

// Errors a Recorder returns, wrapped, to choose the HTTP status.
var (
	// ErrUnavailable: this host cannot run the collector (503).
	ErrUnavailable = errors.New("collector unavailable on this host")
	// ErrBadTarget: the process or thread named does not exist (400).
	ErrBadTarget = errors.New("bad target")
)

// Progress reports a running capture.
type Progress struct {
	Elapsed time.Duration
	Events  uint64
	Lost    uint64
}

// Collector says whether a collector can run here, and why not.
type Collector struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// Capabilities are what this host supports. Extra carries whatever else
// the recorder reports (sysctls, notes) to the JSON answer.
type Capabilities struct {
	Kernel     string               `json:"kernel"`
	BTF        bool                 `json:"btf"`
	Collectors map[string]Collector `json:"collectors"`
	Notes      []string             `json:"notes,omitempty"`
}

// Recorder runs captures. Record returns what was collected when ctx is
// cancelled, without error.
type Recorder interface {
	Record(ctx context.Context, p capture.Params, progress func(Progress)) (*capture.Capture, error)
	Capabilities(ctx context.Context) Capabilities
}

// EventChecker is a Recorder that can tell, before a capture starts,
// whether the event a capture names (a tracepoint, a perf event) exists on
// this host, so that a name that does not is a 400 at POST rather than a
// capture that fails. Its errors are wrapped as Record's (ErrBadTarget,
// ErrUnavailable).
type EventChecker interface {
	CheckEvent(ctx context.Context, p capture.Params) error
}

// Config is the service's configuration; zero fields take the defaults.
type Config struct {
	Listen        string // the address served, for the Host header check; default 127.0.0.1:7070
	AllowedHosts  []string
	DataDir       string // default ./scorch-data
	Token         string // when set, every route but /healthz needs it
	MaxConcurrent int    // running captures at once; default 4
	MaxDuration   time.Duration
	MaxHz         int
	MaxUpload     int64
	MaxBlocking   time.Duration // cap of seconds= on the blocking routes; default 300s
	BodyIdle      time.Duration // an upload that sends nothing for this long is cut; default 30s
	Keep          int           // retention: captures kept (0: all)
	KeepBytes     int64         // retention: bytes kept (0: no limit)
	CacheBytes    int64         // render cache budget; default 64 MiB
	Recorder      Recorder
	Logger        *slog.Logger
	Registry      *prometheus.Registry // default a new one
	// Host samples the host for /overview; default one started at the
	// first request.
	Host HostSampler
	// ProcessExists checks pid targets before a capture starts; default /proc.
	ProcessExists func(pid int) bool
	// HoldMemory, when set, is called while an import decodes: its heap
	// is bounded tightly until release (see internal/memgov).
	HoldMemory func() (release func())
}

// Defaults of the service.
const (
	DefaultListen        = "127.0.0.1:7070"
	DefaultDataDir       = "./scorch-data"
	DefaultMaxConcurrent = 4
	DefaultMaxDuration   = 10 * time.Minute
	DefaultMaxHz         = 5000
	DefaultMaxUpload     = 256 << 20
	DefaultMaxBlocking   = 300 * time.Second
	DefaultBodyIdle      = 30 * time.Second
	DefaultBlocking      = 30 * time.Second
	// Its own budget, not a share of --memory-limit: the limit (default
	// 512 MiB) must clear the live heap of the captures served (a
	// 1M-sample capture's views hold 210-230 MB), and the cache is kept
	// small beside it (with 64 MiB under the former 96 MiB limit the
	// cache alone held two thirds of it and the collector never paused).
	DefaultCacheBytes = 32 << 20
	maxJSONBody       = 1 << 20
	// What the imports decoding at once may cost in all (see importCost:
	// 64 MiB of input decode to about 200 MiB), and how many more may wait.
	importBudget = 64 << 20
	importQueue  = 16
	// Renderings waiting for a slot, and for how long at most, before the
	// answer is 503 with Retry-After: the wait and a rendering under load
	// (a few hundred ms) stay within a second.
	renderQueue   = 32
	renderMaxWait = 500 * time.Millisecond
)

// errOverloaded: the renderings' queue is full; answered 503 with
// Retry-After.
var errOverloaded = errorf(http.StatusServiceUnavailable, "the server is busy rendering other answers: retry in a second")

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = DefaultMaxDuration
	}
	if c.MaxHz <= 0 {
		c.MaxHz = DefaultMaxHz
	}
	if c.MaxUpload <= 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.MaxBlocking <= 0 {
		c.MaxBlocking = DefaultMaxBlocking
	}
	if c.BodyIdle <= 0 {
		c.BodyIdle = DefaultBodyIdle
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.ProcessExists == nil {
		c.ProcessExists = procExists
	}
}

// Server is the web service.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	cache   *renderCache
	loaded  *captureCache
	views   *views // derived from loaded captures, dropped with them
	metrics *metrics
	handler http.Handler
	tmpl    *templates
	// renders bounds the renderings running at once, and how many wait.
	renders *gate
	// imports bounds the imports decoding at once by what each may cost
	// (importCost within importBudget); 16 more wait, beyond that 429.
	imports *weightedGate

	mu      sync.Mutex
	running map[string]*job
	wg      sync.WaitGroup
	closing bool

	capsOnce sync.Once
	caps     Capabilities

	overviewState overviewState
}

// job is a running capture.
type job struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the capture is stored
	err    error         // the recorder's error, set before done closes
	// release ends the hold of the request waiting for the capture.
	release func()
}

// New opens the store and builds the service.
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.Recorder == nil {
		return nil, errors.New("web: no recorder configured")
	}
	st, err := store.Open(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   st,
		cache:   newRenderCache(cfg.CacheBytes),
		running: make(map[string]*job),
		tmpl:    tmpl,
		renders: newGate(max(2, runtime.GOMAXPROCS(0)), renderQueue),
		imports: newWeightedGate(importBudget, importQueue),
	}
	s.views = newViews()
	s.loaded = newCaptureCache(8, s.views.drop)
	s.metrics = newMetrics(cfg.Registry, s)
	s.handler = s.routes()
	if removed := st.Prune(cfg.Keep, cfg.KeepBytes); len(removed) > 0 {
		s.log.Info("retention removed captures", "ids", removed)
	}
	return s, nil
}

// Handler is the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Shutdown stops every running capture, waits until each is saved (or ctx
// ends), and refuses new ones.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, j := range s.running {
		j.cancel()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for running captures to be saved: %w", ctx.Err())
	}
}

func (s *Server) capabilities(ctx context.Context) Capabilities {
	s.capsOnce.Do(func() { s.caps = s.cfg.Recorder.Capabilities(ctx) })
	return s.caps
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// IsLoopback reports whether a listen address binds only loopback
// interfaces, which is what makes running without a token safe.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
