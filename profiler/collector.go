package profiler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

// A collector records one capture type. A new type is an entry here and a
// file with its load function and source (and its C program in bpf/).
type collector struct {
	typ capture.Type
	// load checks the parameters (filling in what the collector
	// defaults, such as mem's event) and loads the BPF objects for one
	// capture, not attached yet.
	load func(p *capture.Params, cfg loadConfig) (source, error)
	// probe is what Capabilities loads and attaches to try the collector
	// (with a target that matches nothing): zero for the type's defaults.
	probe capture.Params
}

// collectors is the table Record and Capabilities use, in capture.Types
// order.
var collectors = []collector{
	{typ: capture.CPU, load: loadCPU},
	{typ: capture.OffCPU, load: loadOffCPU},
	{typ: capture.Wakeup, load: loadOffCPU},
	{typ: capture.OffWake, load: loadOffCPU},
	// The malloc uprobes need a process: the probe tries the syscalls.
	{typ: capture.Mem, load: loadMem, probe: capture.Params{Event: "brk"}},
	{typ: capture.CPI, load: loadCPI},
	// Perf events are the cpu collector's: the probe tries a tracepoint.
	{typ: capture.PerfEvent, load: loadPerfEvent, probe: capture.Params{Event: "sched:sched_switch"}},
}

func collectorFor(t capture.Type) (collector, bool) {
	for _, c := range collectors {
		if c.typ == t {
			return c, true
		}
	}
	return collector{}, false
}

// loadConfig is what every collector loads its objects with.
type loadConfig struct {
	tgt  *target
	mode unwind.Mode
	opts Options
	// stackCache turns on the user stack cache (bpf/common.h): for the
	// collectors whose threads come back to the same stack (off-CPU, mem).
	stackCache bool
}

// source is a collector's BPF objects loaded for one capture (objects,
// embedded) and the state that decodes their records.
type source interface {
	decoder
	// common are the maps and the exec hook of bpf/common.h.
	common() (*commonMaps, *ebpf.Program)
	// attach attaches the event sources; what it adds to l is closed as
	// the capture stops, before the ring buffer is drained.
	attach(c *collection, l *links) error
	Close() error
}

// decoder turns a collector's stack records (any kind but RECORD_EXEC)
// into events.
type decoder interface {
	decode(s *session, e *stackEvent)
}

// finisher is a source with counters or warnings of its own, added once
// the capture stopped.
type finisher interface {
	finish(c *collection)
}

// links are what a capture attached, closed last first.
type links []io.Closer

func (l *links) add(c ...io.Closer) { *l = append(*l, c...) }

func (l *links) close() {
	for i := len(*l) - 1; i >= 0; i-- {
		(*l)[i].Close()
	}
	*l = nil
}

// started is a collector loaded and attached for a capture.
type started struct {
	src   source
	c     *collection
	links links
}

// start loads the collector's objects, opens the collection (filters, exec
// hook, ring buffer, session) and attaches the event sources.
func start(col collector, p capture.Params, tgt *target, mode unwind.Mode, opts Options) (*started, error) {
	src, err := col.load(&p, loadConfig{tgt: tgt, mode: mode, opts: opts})
	if err != nil {
		return nil, err
	}
	loaded := time.Now()
	opts.phases().Load = loaded.Sub(opts.began)
	defer func() { opts.phases().Attach = time.Since(loaded) }()
	r := &started{src: src}
	m, exec := src.common()
	if r.c, err = newCollection(p, mode, opts, tgt, m, exec); err != nil {
		src.Close()
		return nil, err
	}
	r.c.preload()
	if err := src.attach(r.c, &r.links); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close detaches and releases everything, the objects last.
func (r *started) Close() {
	r.links.close()
	r.c.Close()
	r.src.Close()
}

// record is the lifecycle of every capture: start, read records until the
// capture ends, detach, drain, finish.
func (col collector) record(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	r, err := start(col, p, newTarget(p), mode, opts)
	if err != nil {
		return nil, err
	}
	// Kernel symbols are read once the sampling runs, not after the
	// window when the first kernel frame is named, nor before it: reading
	// /proc/kallsyms is 50-90 ms of CPU, and on a busy host it took that
	// from the load and attach, delaying the window's start.
	go opts.Symbolizer.KernelStatus()
	defer func() {
		t := time.Now()
		r.Close()
		opts.phases().Close += time.Since(t)
	}()
	if err := r.c.run(ctx, r.src, r.links.close); err != nil {
		return nil, err
	}
	if f, ok := r.src.(finisher); ok {
		f.finish(r.c)
	}
	return r.c.finish(), nil
}

// commonMaps are the maps of bpf/common.h, which every object has.
type commonMaps struct {
	Events     *ebpf.Map `ebpf:"events"`
	Stats      *ebpf.Map `ebpf:"stats"`
	FilterPids *ebpf.Map `ebpf:"filter_pids"`
	FilterTids *ebpf.Map `ebpf:"filter_tids"`
}

// programs are a bpf2go XxxPrograms.
type programs[P any] interface {
	*P
	Exec() *ebpf.Program
	Close() error
}

// objects are one BPF object loaded: the maps of bpf/common.h, the
// programs as bpf2go generates them (P) and the object's own maps that user
// space uses (M, ebpf-tagged; struct{} for none). Loading assigns them by
// their ebpf tags: a name missing from the object is an error.
type objects[P any, PP programs[P], M any] struct {
	commonMaps
	Progs P
	Maps  M
}

func (o *objects[P, PP, M]) common() (*commonMaps, *ebpf.Program) {
	return &o.commonMaps, PP(&o.Progs).Exec()
}

func (o *objects[P, PP, M]) Close() error {
	return errors.Join(PP(&o.Progs).Close(), closeMaps(&o.commonMaps), closeMaps(&o.Maps))
}

// closeMaps closes the *ebpf.Map fields of the struct v points to.
func closeMaps(v any) error {
	var errs []error
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		if m, ok := rv.Field(i).Interface().(*ebpf.Map); ok {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// commonSpecs are what bpf/common.h puts in every object and user space
// sets before loading: the ring buffer and the constants.
type commonSpecs struct {
	Events        *ebpf.MapSpec      `ebpf:"events"`
	CopyBytes     *ebpf.VariableSpec `ebpf:"copy_bytes"`
	SelfTgid      *ebpf.VariableSpec `ebpf:"self_tgid"`
	WakeupBytes   *ebpf.VariableSpec `ebpf:"wakeup_bytes"`
	FilterMode    *ebpf.VariableSpec `ebpf:"filter_mode"`
	FilterComm    *ebpf.VariableSpec `ebpf:"filter_comm"`
	FilterList    *ebpf.VariableSpec `ebpf:"filter_list"`
	FilterListLen *ebpf.VariableSpec `ebpf:"filter_list_len"`
	FollowForks   *ebpf.VariableSpec `ebpf:"follow_forks"`
	UnwindEnabled *ebpf.VariableSpec `ebpf:"unwind_enabled"`
	UcacheEnabled *ebpf.VariableSpec `ebpf:"ucache_enabled"`
	UcacheCheck   *ebpf.VariableSpec `ebpf:"ucache_check"`
}

// checkUserStacks makes the programs walk every user stack the cache has
// and count the cached ones that differ from the walk (Stats.Counters
// "user_stack_cache_wrong"); for tests.
var checkUserStacks bool

// noUserStackCache turns the user stack cache off; for tests.
var noUserStackCache bool

// varValue is a value for a BPF constant.
type varValue struct {
	spec *ebpf.VariableSpec
	v    any
}

// setVars sets BPF constants before loading.
func setVars(vs ...varValue) error {
	for _, v := range vs {
		if err := v.spec.Set(v.v); err != nil {
			return fmt.Errorf("setting %s: %w", v.spec.Name, err)
		}
	}
	return nil
}

// assignSpecs fills a struct of ebpf-tagged specs (a bpf2go XxxSpecs or
// commonSpecs): a map, program or variable missing from the object is an
// error, so that a rename in C cannot go unnoticed.
func assignSpecs(spec *ebpf.CollectionSpec, to any) error {
	if err := spec.Assign(to); err != nil {
		return fmt.Errorf("BPF object does not match scorch: %w", err)
	}
	return nil
}

// loadObjects loads a collection spec built on bpf/common.h into objs (a
// objects[…]): the target
// (children join the pid filter when follow), the stack copy of the
// unwinding mode and a ring buffer of ring bytes (0: the default for the
// mode). The collector sets its own constants first.
func loadObjects(spec *ebpf.CollectionSpec, cfg loadConfig, follow bool, ring uint32, objs any) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("removing memlock limit: %w", err)
	}
	var cs commonSpecs
	if err := assignSpecs(spec, &cs); err != nil {
		return err
	}
	if err := cfg.tgt.configure(&cs, follow); err != nil {
		return err
	}
	if ring == 0 {
		ring = ringBytes(cfg.opts, cfg.mode)
	}
	err := setVars(
		varValue{cs.CopyBytes, copyBytes(cfg.mode)},
		varValue{cs.SelfTgid, uint32(os.Getpid())},
		varValue{cs.WakeupBytes, wakeupBytes(ring)},
		varValue{cs.UcacheEnabled, cfg.stackCache && !noUserStackCache},
		varValue{cs.UcacheCheck, checkUserStacks},
	)
	if err != nil {
		return err
	}
	cs.Events.MaxEntries = ring
	tables := cfg.opts.UnwindTables
	if cfg.mode != unwind.ModeAuto || tables == nil || tables.Refused() != nil {
		if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{Cache: kernelTypes}); err != nil {
			return verifierError(err)
		}
		return nil
	}
	// The BPF unwinder, with the shared tables; where the kernel refuses
	// it, the stack copy of every sample goes to user space as before.
	fallback := spec.Copy()
	if err := cs.UnwindEnabled.Set(true); err != nil {
		return fmt.Errorf("setting unwind_enabled: %w", err)
	}
	err = spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: tables.replace(spec), Cache: kernelTypes})
	if err == nil {
		return nil
	}
	werr := verifierError(err)
	cfg.opts.Logger.Warn("the kernel refused the BPF unwinder: user stacks are unwound from stack copies", "err", werr)
	tables.refuse(werr)
	if err := fallback.LoadAndAssign(objs, &ebpf.CollectionOptions{Cache: kernelTypes}); err != nil {
		return verifierError(err)
	}
	return nil
}

// kernelTypes is the running kernel's BTF, which every load relocates
// against (CO-RE) and finds its tp_btf targets in: decoded once per scorch
// process and shared by every capture (a load decoding it for itself took
// 20-30 ms of the time before sampling, more on a loaded host).
var kernelTypes = btf.NewCache()

// warmKernelTypes decodes the kernel's BTF in the background, while the
// unwind tables' maps are made and the objects parsed.
func warmKernelTypes() { go kernelTypes.Kernel() }

// attachRawTp attaches a tp_btf program.
func attachRawTp(prog *ebpf.Program) (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return nil, fmt.Errorf("%w: attaching %s: %w", ErrUnavailable, prog, err)
	}
	return l, nil
}

// attachTracepoint attaches a program to a tracefs tracepoint.
func attachTracepoint(group, name string, prog *ebpf.Program) (link.Link, error) {
	l, err := link.Tracepoint(group, name, prog, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: attaching to tracepoint %s:%s: %w", ErrUnavailable, group, name, err)
	}
	return l, nil
}
