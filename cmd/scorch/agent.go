package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/fleet"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// remoteFlags are the flags of `scorch agent` that `scorch serve` shares,
// so one process can serve the UI and push to an engine.
type remoteFlags struct {
	remote, kind, tokenFile, user, passwordFile, caFile, serverName string
	headers, labels                                                 multiFlag
	types, seriesBy, spoolDir, unwind, host                         string
	every, minBlock, timeout, flush                                 time.Duration
	hz, maxSamples, maxSeries                                       int
	queueSize, spoolSize, maxProfile                                byteSize
}

// multiFlag is a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func addRemoteFlags(fs *flag.FlagSet) *remoteFlags {
	f := &remoteFlags{queueSize: byteSize{16 << 20}, spoolSize: byteSize{256 << 20}, maxProfile: byteSize{int64(fleet.DefaultLimits.MaxBytes)}}
	fs.StringVar(&f.remote, "remote", "", "URL of the engine to push profiles to, e.g. http://pyroscope:4040, grpc://parca:7070, grpc://otel-collector:4317")
	fs.StringVar(&f.kind, "remote-kind", "", "the engine's protocol: "+strings.Join(fleet.RemoteKinds, ", "))
	fs.StringVar(&f.tokenFile, "remote-token-file", "", "file holding a bearer token for the remote")
	fs.StringVar(&f.user, "remote-user", "", "basic auth user (Grafana Cloud: the stack's profiles instance id)")
	fs.StringVar(&f.passwordFile, "remote-password-file", "", "file holding the basic auth password (Grafana Cloud: an access policy token)")
	fs.Var(&f.headers, "remote-header", "extra header NAME=VALUE on every push, e.g. X-Scope-OrgID=tenant (repeatable)")
	fs.StringVar(&f.caFile, "remote-ca-file", "", "PEM file of the CA that signs the remote's TLS certificate")
	fs.StringVar(&f.serverName, "remote-server-name", "", "TLS server name to verify, when it differs from the URL's host")
	fs.DurationVar(&f.timeout, "remote-timeout", 10*time.Second, "time allowed for one push")
	fs.StringVar(&f.types, "types", "cpu", "profile types, comma-separated: cpu, offcpu, offwake, mem (page faults)")
	fs.DurationVar(&f.every, "every", fleet.DefaultEvery, "length of a profiling window: one profile per service and type each window (1s..10m)")
	fs.IntVar(&f.hz, "hz", fleet.DefaultHz, "CPU samples per second per CPU")
	fs.DurationVar(&f.minBlock, "min-block", fleet.DefaultMinBlock, "offcpu, offwake: shorter blocked intervals are not recorded, so a busy host stays cheap")
	fs.StringVar(&f.unwind, "unwind", capture.DefaultUnwind, "user stack unwinding: fp (cheapest, but frames called through libc without frame pointers are lost), auto, dwarf")
	fs.StringVar(&f.host, "host", "", "the host label (default: the host name; a DaemonSet passes the node name)")
	fs.Var(&f.labels, "label", "extra label NAME=VALUE on every series, e.g. env=prod (repeatable)")
	fs.StringVar(&f.seriesBy, "series-by", string(fleet.BySevice), "one series per: service (bounded), pid or tid (adds pid and tid labels; many series)")
	fs.IntVar(&f.maxSamples, "max-samples", fleet.DefaultLimits.MaxSamples, "samples per profile; the smallest are merged into one [trimmed] sample (Pyroscope's limit: 16000)")
	fs.Var(&f.maxProfile, "max-profile-size", "uncompressed size of one profile, e.g. 4MiB (Pyroscope's limit)")
	fs.IntVar(&f.maxSeries, "max-series", fleet.DefaultLimits.MaxSeries, "series per window and type; the smallest are merged into service_name=other")
	fs.Var(&f.queueSize, "queue-size", "memory for profiles waiting for the remote, e.g. 16MiB; the oldest are dropped (or spooled) past it")
	fs.StringVar(&f.spoolDir, "spool-dir", "", "directory for profiles that do not fit in memory and for those left at exit (sent on the next start)")
	fs.Var(&f.spoolSize, "spool-size", "limit of --spool-dir, e.g. 256MiB")
	fs.DurationVar(&f.flush, "flush-timeout", fleet.DefaultFlush, "on SIGTERM, time allowed to push what is queued")
	return f
}

// agentConfig checks the flags and builds the agent's configuration; the
// error names the flag and the allowed values.
func (f *remoteFlags) agentConfig() (fleet.Config, error) {
	var cfg fleet.Config
	if f.remote == "" {
		return cfg, errors.New("--remote URL is required, e.g. --remote http://127.0.0.1:4040 --remote-kind pyroscope")
	}
	if f.kind == "" {
		return cfg, fmt.Errorf("--remote-kind is required: allowed values are %s", strings.Join(fleet.RemoteKinds, ", "))
	}
	kinds, err := fleet.ParseTypes(f.types)
	if err != nil {
		return cfg, fmt.Errorf("--types: %w", err)
	}
	if f.every < time.Second || f.every > 10*time.Minute {
		return cfg, fmt.Errorf("--every %s is out of range: allowed 1s..10m", f.every)
	}
	if f.hz < capture.MinHz || f.hz > 1000 {
		return cfg, fmt.Errorf("--hz %d is out of range: allowed %d..1000", f.hz, capture.MinHz)
	}
	if f.minBlock < 0 {
		return cfg, fmt.Errorf("--min-block %s must not be negative", f.minBlock)
	}
	if _, err := unwind.ParseMode(f.unwind); err != nil {
		return cfg, fmt.Errorf("--unwind: %w", err)
	}
	if f.maxSamples < 2 || f.maxSeries < 2 {
		return cfg, fmt.Errorf("--max-samples %d and --max-series %d must be at least 2", f.maxSamples, f.maxSeries)
	}
	if f.maxProfile.n < 64<<10 {
		return cfg, fmt.Errorf("--max-profile-size %d is too small: give at least 64KiB", f.maxProfile.n)
	}
	if f.queueSize.n < 64<<10 || f.queueSize.n > 1<<30 {
		return cfg, fmt.Errorf("--queue-size %d is out of range: allowed 64KiB..1GiB", f.queueSize.n)
	}
	if f.timeout <= 0 || f.flush <= 0 {
		return cfg, fmt.Errorf("--remote-timeout and --flush-timeout must be more than 0")
	}
	hdr := make(map[string]string)
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("--remote-header %q: give NAME=VALUE, e.g. X-Scope-OrgID=tenant", h)
		}
		if strings.EqualFold(k, "Authorization") {
			return cfg, errors.New("--remote-header Authorization: secrets come from files: use --remote-token-file or --remote-password-file")
		}
		hdr[k] = v
	}
	for _, l := range f.labels {
		lab, err := fleet.ParseLabel(l)
		if err != nil {
			return cfg, err
		}
		cfg.Labels = append(cfg.Labels, lab)
	}
	rc := fleet.RemoteConfig{Kind: f.kind, URL: f.remote, TokenFile: f.tokenFile, User: f.user, PasswordFile: f.passwordFile,
		Headers: hdr, CAFile: f.caFile, ServerName: f.serverName}
	if cfg.Remote, err = fleet.NewRemote(rc); err != nil {
		return cfg, err
	}
	cfg.Kinds, cfg.Every, cfg.Hz, cfg.MinBlock, cfg.Unwind = kinds, f.every, f.hz, f.minBlock, f.unwind
	cfg.SeriesBy = fleet.SeriesBy(f.seriesBy)
	cfg.Limits = fleet.Limits{MaxSamples: f.maxSamples, MaxBytes: int(f.maxProfile.n), MaxSeries: f.maxSeries}
	cfg.Queue = fleet.QueueConfig{MaxBytes: int(f.queueSize.n), SpoolDir: f.spoolDir, SpoolBytes: f.spoolSize.n, Timeout: f.timeout}
	cfg.Flush = f.flush
	cfg.Host = f.host
	return cfg, nil
}

// plaintextSecret is true when credentials would cross the network in the clear.
func (f *remoteFlags) plaintextSecret() bool {
	u, err := url.Parse(f.remote)
	if err != nil || u.Scheme == "https" || u.Scheme == "grpcs" {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loop := host == "localhost" || ip != nil && ip.IsLoopback()
	return !loop && (f.tokenFile != "" || f.passwordFile != "")
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	rf := addRemoteFlags(fs)
	var (
		listen      = fs.String("listen", "127.0.0.1:7071", "address of /metrics and /healthz (empty: none)")
		procRoot    = fs.String("proc-root", "/", "where the host's /proc and container runtime files are (a container mounts them elsewhere)")
		logFormat   = fs.String("log", "text", "log format: text or json")
		ringSize    = byteSize{1 << 20}
		symbolCache = byteSize{agentSymbolCache}
		memLimit    byteSize
	)
	fs.Var(&ringSize, "ring-size", "BPF ring buffer per collector, e.g. 1MiB (enough at low rates)")
	fs.Var(&symbolCache, "symbol-cache", "memory for parsed symbol tables, e.g. 256MiB; too small a cache re-parses large binaries every window")
	fs.Var(&memLimit, "memory-limit", "soft limit of the agent's Go memory, e.g. 512MiB (default none); well above --symbol-cache, or the garbage collector spins")
	setUsage(fs, stderr, "scorch agent --remote URL --remote-kind pyroscope|parca|otlp [--types cpu,offcpu,offwake,mem] [flags]")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "scorch agent: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if ringSize.n < 64<<10 || ringSize.n > 1<<30 {
		return usageErr("--ring-size %d is out of range: allowed 64KiB..1GiB", ringSize.n)
	}
	if *listen != "" {
		if _, _, err := net.SplitHostPort(*listen); err != nil {
			return usageErr("--listen %q is not HOST:PORT, e.g. 127.0.0.1:7071", *listen)
		}
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(stderr, nil)
	default:
		return usageErr("--log %q is not supported: allowed values are text, json", *logFormat)
	}
	log := slog.New(handler)
	cfg, err := rf.agentConfig()
	if err != nil {
		return usageErr("%v", err)
	}
	if rf.plaintextSecret() {
		log.Warn("the remote's credentials are sent in the clear: use an https:// or grpcs:// --remote")
	}
	if memLimit.n > 0 {
		debug.SetMemoryLimit(memLimit.n)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Not closed at exit: a window still symbolizing past the flush
	// deadline holds its cache, and the process's exit frees it anyway.
	sym := symbolizer.New(symbolizer.Options{Logger: log, CacheBytes: symbolCache.n})
	cfg.Recorder = &fleet.ProfilerRecorder{Symbolizer: sym, Unwinder: unwind.New(unwind.Options{Logger: log}), Logger: log, RingBytes: int(ringSize.n)}
	cfg.Registerer, cfg.Logger, cfg.ProcRoot = reg, log, *procRoot
	cfg.OnWindow = func(fleet.Kind, *capture.Capture, *fleet.Batch) { releaseMemory(agentSpareMemory) }
	agent, err := fleet.New(cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	defer cfg.Remote.Close()

	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintf(stderr, "scorch agent: %v\n", err)
			return exitFailure
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		// The agent's own profiles, to see what it costs on a host.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		fmt.Fprintf(stdout, "scorch: agent metrics on http://%s/metrics\n", ln.Addr())
	}
	log.Info("scorch agent", "remote", rf.remote, "kind", rf.kind, "types", rf.types, "every", rf.every, "hz", rf.hz)
	if err := agent.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "scorch agent: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// startWithServe runs the agent beside `scorch serve` when --remote is
// given, its metrics on the service's registry; the returned function waits
// for its flush at exit.
func (f *remoteFlags) startWithServe(ctx context.Context, reg *prometheus.Registry, log *slog.Logger, sym *symbolizer.Symbolizer) (func(), error) {
	if f.remote == "" {
		return func() {}, nil
	}
	cfg, err := f.agentConfig()
	if err != nil {
		return nil, err
	}
	if f.plaintextSecret() {
		log.Warn("the remote's credentials are sent in the clear: use an https:// or grpcs:// --remote")
	}
	cfg.Recorder = &fleet.ProfilerRecorder{Symbolizer: sym, Unwinder: unwind.New(unwind.Options{Logger: log}), Logger: log, RingBytes: 1 << 20}
	cfg.Registerer, cfg.Logger = reg, log
	agent, err := fleet.New(cfg)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cfg.Remote.Close()
		log.Info("scorch agent", "remote", f.remote, "kind", f.kind, "types", f.types, "every", f.every, "hz", f.hz)
		if err := agent.Run(ctx); err != nil {
			log.Error("agent stopped: nothing is pushed", "err", err)
		}
	}()
	return func() { <-done }, nil
}

// agentSpareMemory is how much garbage and free heap a window's end
// tolerates before it collects and returns the pages to the kernel.
const agentSpareMemory = 24 << 20

// releaseMemory collects the garbage and returns the free heap to the
// kernel when together they pass spare. The agent's heap is small but
// spiky: an unwind table of a large new binary takes tens of MiB while it
// is built, and at the agent's allocation rate the next collection (and
// the scavenger's return of those pages) would come minutes later, the RSS
// at its peak meanwhile. A heap that is large because it is live (a big
// symbol cache) is left alone.
func releaseMemory(spare uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return // a runtime without these
		}
	}
	objects, live, free := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	if objects-min(live, objects)+free > spare {
		debug.FreeOSMemory()
	}
}

// agentSymbolCache is the symbol cache the agent needs: it symbolizes every
// process of the host each window, and a cache smaller than the host's
// largest tables re-parses them every window.
const agentSymbolCache = 256 << 20

// symbolCache raises serve's default symbol cache to the agent's when
// --remote is given and --symbol-cache is not.
func (f *remoteFlags) symbolCache(fs *flag.FlagSet, n int64) int64 {
	if f.remote == "" {
		return n
	}
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "symbol-cache" })
	if set {
		return n
	}
	return max(n, agentSymbolCache)
}
