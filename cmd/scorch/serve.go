package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/host"
	"github.com/scorch-dev/scorch/internal/cache"
	"github.com/scorch-dev/scorch/internal/memgov"
	"github.com/scorch-dev/scorch/internal/peakheap"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
	"github.com/scorch-dev/scorch/web"
)

// profilerRecorder runs captures with the BPF profiler, sharing one
// symbolizer across them.
type profilerRecorder struct {
	sym *symbolizer.Symbolizer
	unw *unwind.Unwinder // CFI tables, shared like the symbols
	// tables are the BPF unwinder's, made at the first capture that uses
	// them and shared by the next.
	tables profiler.LazyUnwindTables
	log    *slog.Logger
	ring   int
}

// newProfilerRecorder shares the unwinder's table store with the BPF
// unwinder's tables: a file's table is built once for both.
func newProfilerRecorder(sym *symbolizer.Symbolizer, unw *unwind.Unwinder, log *slog.Logger, ring int) *profilerRecorder {
	p := &profilerRecorder{sym: sym, unw: unw, log: log, ring: ring}
	p.tables.Store = unw.Store()
	return p
}

func (p *profilerRecorder) Record(ctx context.Context, params capture.Params, progress func(web.Progress)) (*capture.Capture, error) {
	var tables *profiler.UnwindTables
	if params.Unwind == "" || params.Unwind == "auto" {
		tables = p.tables.Get(p.log)
	}
	c, err := profiler.Record(ctx, params, profiler.Options{
		Symbolizer:   p.sym,
		Unwinder:     p.unw,
		UnwindTables: tables,
		Logger:       p.log,
		RingBytes:    p.ring,
		Progress: func(pr profiler.Progress) {
			progress(web.Progress{Elapsed: pr.Elapsed, Events: pr.Events, Lost: pr.Lost})
		},
	})
	if wrapped := recorderError(err); wrapped != err {
		return nil, wrapped
	}
	return c, err
}

// recorderError wraps the profiler's error classes as the service's.
func recorderError(err error) error {
	switch {
	case errors.Is(err, profiler.ErrUnavailable), errors.Is(err, profiler.ErrPermission):
		return fmt.Errorf("%w: %w", web.ErrUnavailable, err)
	case errors.Is(err, profiler.ErrBadTarget):
		return fmt.Errorf("%w: %w", web.ErrBadTarget, err)
	}
	return err
}

// The service checks event names before a capture starts.
var _ web.EventChecker = (*profilerRecorder)(nil)

// CheckEvent refuses an event (tracepoint, perf event) this host lacks.
func (p *profilerRecorder) CheckEvent(ctx context.Context, params capture.Params) error {
	return recorderError(profiler.CheckEvent(params))
}

// The service exports the symbolizer's cache counters on /metrics.
var _ web.SymbolizerStats = (*profilerRecorder)(nil)

// SymbolizerCacheStats reports the shared symbolizer's cache use.
func (p *profilerRecorder) SymbolizerCacheStats() cache.Stats { return p.sym.CacheStats() }

func (p *profilerRecorder) Capabilities(ctx context.Context) web.Capabilities {
	caps := profiler.Capabilities(ctx)
	out := web.Capabilities{Kernel: caps.Kernel, BTF: caps.BTF, Collectors: make(map[string]web.Collector), Notes: caps.Notes}
	for name, c := range caps.Collectors {
		out.Collectors[name] = web.Collector{Available: c.Available, Reason: c.Reason}
	}
	return out
}

// serveUnwindTableBytes bounds the unwind tables serve keeps on its heap
// (the user-space unwinder's store, which the BPF unwinder's loader builds
// through): once in the BPF maps a table is read again only for a process's
// stack copies while its tables load, or for a file evicted from the maps
// and mapped again. At the unwinder's default 16 MiB, the tables of a busy
// host's large binaries were 14 MB of serve's heap under load with a
// capture running.
const serveUnwindTableBytes = 4 << 20

// byteSize is a flag such as 256MiB, 1GiB or a plain number of bytes.
type byteSize struct{ n int64 }

func (b *byteSize) String() string { return strconv.FormatInt(b.n, 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("%q is not a size: give bytes or a number with KiB, MiB or GiB", s)
	}
	b.n = n * mult
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var (
		listen        = fs.String("listen", web.DefaultListen, "address to listen on; a non-loopback address needs --token-file or --insecure")
		data          = fs.String("data", web.DefaultDataDir, "directory of the stored captures")
		tokenFile     = fs.String("token-file", "", "file holding the bearer token every request but /healthz must carry")
		insecure      = fs.Bool("insecure", false, "allow a non-loopback --listen without a token")
		allowHosts    = fs.String("allow-host", "", "extra host names the Host header may carry (comma-separated)")
		maxConcurrent = fs.Int("max-concurrent", web.DefaultMaxConcurrent, "captures running at once")
		maxDuration   = fs.Duration("max-duration", web.DefaultMaxDuration, "longest capture allowed")
		maxHz         = fs.Int("max-hz", web.DefaultMaxHz, fmt.Sprintf("highest sampling frequency allowed (%d..%d)", capture.MinHz, capture.MaxHz))
		keep          = fs.Int("keep", 0, "retention: keep at most this many captures, oldest removed first (0: all)")
		logFormat     = fs.String("log", "text", "log format: text or json")
		dwarfCache    = fs.String("dwarf-cache", symbolizer.DefaultDWARFCacheDir(), "directory keeping the decompressed DWARF sections of debug files (libc's) for file:line, mapped instead of decompressed into the heap at each capture; empty: decompress them each time")
		maxUpload     = byteSize{web.DefaultMaxUpload}
		keepBytes     byteSize
		ringSize      = byteSize{8 << 20}
		renderCache   = byteSize{web.DefaultCacheBytes}
		symbolCache   = byteSize{64 << 20}
		memLimit      = byteSize{512 << 20} // above twice a 1M-sample capture's live heap (GOGC's target): below the live heap the collector never stops
	)
	fs.Var(&symbolCache, "symbol-cache", "memory for parsed symbol tables shared by all captures, e.g. 64MiB")
	remote := addRemoteFlags(fs) // scorch agent's flags: push to an engine while serving
	fs.Var(&memLimit, "memory-limit", "soft limit of the service's Go memory (the garbage collector works harder near it; 0: none), e.g. 512MiB; below the live heap of the captures it serves the collector runs without end")
	fs.Var(&renderCache, "render-cache", "memory for rendered answers (kept gzipped), e.g. 64MiB")
	fs.Var(&ringSize, "ring-size", "BPF ring buffer per capture, e.g. 8MiB; the service keeps it small to bound its memory (0: the profiler's default)")
	fs.Var(&maxUpload, "max-upload", "largest import accepted, e.g. 256MiB")
	fs.Var(&keepBytes, "keep-bytes", "retention: keep at most this many bytes of captures, e.g. 10GiB (0: no limit)")
	setUsage(fs, stderr, "scorch serve [--listen 127.0.0.1:7070] [--data ./scorch-data] [flags]")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scorch serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "scorch serve: "+format+"\n", a...)
		return exitUsage
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageErr("--listen %q is not HOST:PORT, e.g. 127.0.0.1:7070", *listen)
	}
	if *maxConcurrent < 1 || *maxConcurrent > 64 {
		return usageErr("--max-concurrent %d is out of range: allowed 1..64", *maxConcurrent)
	}
	if *maxDuration <= 0 || *maxDuration > 24*time.Hour {
		return usageErr("--max-duration %s is out of range: allowed more than 0 up to 24h", *maxDuration)
	}
	if *maxHz < capture.MinHz || *maxHz > capture.MaxHz {
		return usageErr("--max-hz %d is out of range: allowed %d..%d", *maxHz, capture.MinHz, capture.MaxHz)
	}
	if maxUpload.n <= 0 {
		return usageErr("--max-upload must be more than 0")
	}
	if ringSize.n != 0 && (ringSize.n < 64<<10 || ringSize.n > 1<<30) {
		return usageErr("--ring-size %d is out of range: allowed 64KiB..1GiB, or 0 for the profiler's default", ringSize.n)
	}
	if renderCache.n < 1<<20 {
		return usageErr("--render-cache %d is too small: give at least 1MiB", renderCache.n)
	}
	if *keep < 0 {
		return usageErr("--keep %d must not be negative", *keep)
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	switch *logFormat {
	case "text":
	case "json":
		handler = slog.NewJSONHandler(stderr, nil)
	default:
		return usageErr("--log %q is not supported: allowed values are text, json", *logFormat)
	}
	log := slog.New(handler)

	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "scorch serve: reading --token-file: %v\n", err)
			return exitFailure
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return usageErr("the token in %s is %d characters long: use at least 16 (e.g. openssl rand -hex 16)", *tokenFile, len(token))
		}
	}
	if !web.IsLoopback(*listen) && token == "" && !*insecure {
		return usageErr("--listen %s is reachable from other hosts: give --token-file FILE so that requests need a token, or --insecure to serve without one", *listen)
	}
	var hosts []string
	for _, h := range strings.Split(*allowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}

	// A long-running service must not keep garbage or every symbol table it
	// ever parsed: bound both (a capture's own data is what it is).
	// --memory-limit is the Go soft limit; while an import decodes, the
	// limit follows the live heap so that its peak is returned.
	gov := memgov.Start(memgov.Options{Ceiling: memLimit.n})
	defer gov.Stop()
	defer peakheap.FromEnv()()
	// The host overview's sampler runs as long as the service: its 15
	// minutes of history are there when someone opens /overview.
	hostSampler := host.NewSampler(host.Options{})
	go hostSampler.Run(ctx)
	symbolCache.n = remote.symbolCache(fs, symbolCache.n)
	sym := symbolizer.New(symbolizer.Options{Logger: log, CacheBytes: symbolCache.n, Lines: true, DWARFCache: *dwarfCache})
	defer sym.Close()
	reg := prometheus.NewRegistry()
	agentDone, err := remote.startWithServe(ctx, reg, log, sym)
	if err != nil {
		return usageErr("%v", err)
	}
	defer agentDone()
	srv, err := web.New(web.Config{
		Registry:      reg,
		Listen:        *listen,
		AllowedHosts:  hosts,
		DataDir:       *data,
		Token:         token,
		MaxConcurrent: *maxConcurrent,
		MaxDuration:   *maxDuration,
		MaxHz:         *maxHz,
		MaxUpload:     maxUpload.n,
		Keep:          *keep,
		KeepBytes:     keepBytes.n,
		CacheBytes:    renderCache.n,
		HoldMemory:    gov.Hold,
		Recorder:      newProfilerRecorder(sym, unwind.New(unwind.Options{Logger: log, CacheBytes: serveUnwindTableBytes}), log, int(ringSize.n)),
		Logger:        log,
		Host:          hostSampler,
	})
	if err != nil {
		fmt.Fprintf(stderr, "scorch serve: %v\n", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "scorch serve: %v\n", err)
		return exitFailure
	}
	ln = web.LimitListener(ln, web.DefaultMaxConnections)
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Minute, // uploads of up to --max-upload on slow links
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("scorch serving", "url", "http://"+ln.Addr().String()+"/", "data", *data, "token", token != "")
	fmt.Fprintf(stdout, "scorch: serving on http://%s/ (captures in %s)\n", ln.Addr(), *data)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "scorch serve: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	log.Info("stopping: saving running captures")
	stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := exitOK
	if err := srv.Shutdown(stopCtx); err != nil {
		log.Error("stopping captures", "err", err)
		code = exitFailure
	}
	if err := hs.Shutdown(stopCtx); err != nil {
		log.Warn("closing connections", "err", err)
		hs.Close()
	}
	log.Info("stopped")
	return code
}
