package profiler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// session turns one capture's ring-buffer records into a capture, one way:
// records are decoded (event.go) and handed to the collector's decoder,
// which resolves their processes (procs.go), unwinds and interns their
// stacks (stacks.go) and adds events; each new stack is named in the
// background as it comes (frames.go), so that at the end the capture is
// built from the events and the stacks named meanwhile.
type session struct {
	log       *slog.Logger
	sym       *symbolizer.Symbolizer
	monoStart uint64
	procs     procs
	maps      *mappingTracker // nil when the kernel refused it: /proc alone
	stacks    stacks
	namer     *namer
	events    eventLog
	tables    *UnwindTables // the BPF unwinder's, nil when not used
	// tablesBase are the tables' counters at the start: shared tables
	// count for every capture since they were made.
	tablesBase capture.Counters
	stats      capture.Stats
	ringBytes  uint64 // bytes read from the ring buffer
	ringSize   uint64 // the ring buffer's size
	lostTimes  lostTimes
	ev         stackEvent
	// userRefs are the user stacks the BPF user stack cache sent once
	// (EVENT_USTACK_DEF), by reference: later records name them.
	userRefs map[uint32][]uint64
	// kernelRefs are the kernel stacks of the off-CPU kernel stack cache
	// (EVENT_KSTACK_DEF), the same way.
	kernelRefs map[uint32][]uint64
	kbuf       [maxStack]uint64
	ubuf       [maxStack]uint64
	tail       [arrivalSize]byte // a RECORD_LEAVE_REF's arrival (decodeLeaveRef)
}

func newSession(log *slog.Logger, sym *symbolizer.Symbolizer, unw *unwind.Unwinder, tables *UnwindTables, mode unwind.Mode, monoStart uint64, meta capture.Meta) *session {
	s := &session{log: log, sym: sym, monoStart: monoStart, namer: newNamer(meta, sym)}
	if mode != unwind.ModeAuto {
		tables = nil
	}
	s.tables = tables
	if tables != nil {
		tables.begin()
		s.tablesBase = tables.stats()
	}
	s.procs = newProcs(log, sym, &s.stats, tables)
	s.stacks = newStacks(unw, mode, &s.stats, s.namer.add, tables)
	return s
}

// handle processes one ring-buffer record.
func (s *session) handle(rec []byte, dec decoder) {
	kind, ok := recordKind(rec)
	if !ok {
		return
	}
	s.ringBytes += uint64(len(rec))
	switch kind {
	case bpf.SamplerRecordKindRECORD_EXEC:
		if pid, comm, ts, ok := decodeExecEvent(rec); ok {
			if s.maps != nil {
				// What the exec mapped (the program, ld.so) is recorded
				// before it: known before the snapshot, which may fail.
				s.maps.flush(ts)
			}
			s.procs.execed(pid, comm, ts)
		}
	case bpf.SamplerRecordKindRECORD_SAMPLE, bpf.SamplerRecordKindRECORD_WAKER, bpf.SamplerRecordKindRECORD_LEAVE, bpf.SamplerRecordKindRECORD_LEAVE_REF:
		var err error
		if kind == bpf.SamplerRecordKindRECORD_LEAVE_REF {
			err = decodeLeaveRef(rec, &s.ev, s.tail[:0])
		} else {
			err = decodeStackEvent(rec, &s.ev, s.kbuf[:0], s.ubuf[:0])
		}
		if err != nil {
			s.stats.Lost++
			s.stats.Counters.AddReason(capture.LostBy, capture.LostUndecoded, 1)
			return
		}
		if !s.resolveRefs(&s.ev) {
			s.stats.Lost++
			s.stats.Counters.AddReason(capture.LostBy, capture.LostUnknownRef, 1)
			return
		}
		dec.decode(s, &s.ev)
	}
}

// lostWarning says how many events were lost and why: for a full ring,
// the ring's size against the rate the capture read it at.
func (s *session) lostWarning(meta capture.Meta) string {
	by := s.stats.Counters.Reasons(capture.LostBy)
	msg := fmt.Sprintf("%d events were lost", s.stats.Lost)
	if n := by[capture.LostRingFull]; n > 0 {
		msg += fmt.Sprintf("; %d because the ring buffer was full: the reader fell behind the programs", n)
		if secs := meta.Duration.Seconds(); s.ringSize > 0 && secs > 0 && s.ringBytes > 0 {
			rate := float64(s.ringBytes) / secs
			msg += fmt.Sprintf(" (its %d MiB hold %.0f ms of the %.1f MB/s read; a busy host delays the reader)", s.ringSize>>20, 1000*float64(s.ringSize)/rate, rate/1e6)
		}
	}
	for _, r := range []string{capture.LostMapFull, capture.LostUndecoded, capture.LostUnknownRef} {
		if n := by[r]; n > 0 {
			msg += fmt.Sprintf("; %d: %s", n, r)
		}
	}
	return msg + ": use a larger --ring-size, a lower frequency or a narrower target"
}

// resolveRefs keeps the stacks of a record that defines references (the
// BPF stack caches' EVENT_USTACK_DEF, EVENT_KSTACK_DEF) and gives a record
// that names them its stacks; it reports false for a reference never
// defined (the programs make a reference valid only once its definition
// is in the ring, so this is a bug or a corrupt ring).
func (s *session) resolveRefs(e *stackEvent) bool {
	return resolveRef(&s.kernelRefs, e, bpf.SamplerEventFlagEVENT_KSTACK_REF, bpf.SamplerEventFlagEVENT_KSTACK_DEF, uint32(e.hdr.Aux), &e.Kstack, &e.KTruncated) &&
		resolveRef(&s.userRefs, e, bpf.SamplerEventFlagEVENT_USTACK_REF, bpf.SamplerEventFlagEVENT_USTACK_DEF, e.hdr.UstackRef, &e.Ustack, &e.UTrunc)
}

// resolveRef is resolveRefs for one of the caches: refs are its stacks by
// reference, ref and def its flags, key the record's reference, stack and
// trunc the record's stack.
func resolveRef(refs *map[uint32][]uint64, e *stackEvent, ref, def bpf.EventFlag, key uint32, stack *[]uint64, trunc *bool) bool {
	switch {
	case e.has(ref):
		u, ok := (*refs)[key]
		if !ok {
			return false
		}
		*stack = u
		*trunc = len(u) == maxStack
	case e.has(def):
		if *refs == nil {
			*refs = make(map[uint32][]uint64)
		}
		// A new slice: events may alias the one it replaces.
		(*refs)[key] = append([]uint64(nil), *stack...)
	}
	return true
}

// segmentOf resolves a record's process and stacks.
func (s *session) segmentOf(e *stackEvent) segment {
	if e.PID == 0 {
		return idleSegment(e)
	}
	return s.stacks.segment(s.procs.get(e.PID, e.Comm), e)
}

// intern deduplicates a raw stack and returns its index.
func (s *session) intern(r rawStack) uint32 { return s.stacks.intern(r) }

// since is a BPF timestamp as ns since the capture started.
func (s *session) since(ts uint64) int64 { return int64(ts - s.monoStart) }

// add adds an event.
func (s *session) add(ev capture.Event) { s.events.add(ev) }

// addSample adds one event of the given value with the record's stacks and
// returns it, valid until the next event is added.
func (s *session) addSample(e *stackEvent, value uint64) *capture.Event {
	seg := s.segmentOf(e)
	ev := capture.Event{
		Time:  s.since(e.Ts),
		Value: int64(value),
		Stack: s.intern(rawStack{main: seg}),
		PID:   e.PID,
		TID:   e.TID,
		CPU:   uint16(e.CPU),
	}
	if seg.idle {
		ev.Flags |= capture.FlagIdle
	}
	if e.has(bpf.SamplerEventFlagEVENT_KERNEL_MODE) {
		ev.Flags |= capture.FlagKernel
	}
	s.add(ev)
	return s.events.at(s.events.len() - 1)
}

// drain reads records until the reader has nothing more, or the deadline.
func (s *session) drain(rd *ringbuf.Reader, dec decoder, deadline time.Time) {
	var rec ringbuf.Record
	rd.SetDeadline(deadline)
	// The sources are detached: the reads end once what the ring holds is
	// read, not at the deadline.
	_ = rd.Flush()
	for {
		if err := rd.ReadInto(&rec); err != nil {
			return
		}
		s.handle(rec.RawSample, dec)
	}
}

// pollInterval is how often the reader of a capture looks at the ring
// buffer: the BPF programs wake it only when a lot of data waits (see
// wakeup_bytes), and the progress line and the lost-event marks want it
// more often.
const pollInterval = 50 * time.Millisecond

// trackerIdle is the mapping tracker's longest wait in a capture: its
// records are delivered within milliseconds, as a process that maps a
// library is followed by its unwind tables.
const trackerIdle = 5 * time.Millisecond

// read reads records until stop is closed (a Flush of rd ends the wait
// then), calling progress about every 250 ms; it waits at most wait for
// a wakeup. The clock is read only when the ring runs dry and every
// clockEvery records, not per record: at hundreds of thousands of records
// a second, the reads were a tenth of the reader's time.
func (s *session) read(rd *ringbuf.Reader, dec decoder, stop <-chan struct{}, progress func(), wait time.Duration) error {
	const clockEvery = 4096
	var rec ringbuf.Record
	last := time.Now()
	rd.SetDeadline(last.Add(wait))
	woke := true
	for n := 1; ; n++ {
		select {
		case <-stop:
			return nil
		default:
		}
		err := rd.ReadInto(&rec)
		if err == nil {
			if woke && s.maps != nil {
				// The samples of a process that has exited since are
				// named from its mapping records: those made until now
				// are delivered first.
				s.maps.flush(monotonicNow() - uint64(time.Millisecond))
			}
			woke = false
			s.handle(rec.RawSample, dec)
			if n%clockEvery != 0 {
				continue
			}
		} else if errors.Is(err, ringbuf.ErrClosed) {
			return nil
		} else if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, ringbuf.ErrFlushed) {
			return fmt.Errorf("reading ring buffer: %w", err)
		} else {
			// Dry (or flushed to stop): wait for the next wakeup.
			rd.SetDeadline(time.Now().Add(wait))
			woke = true
		}
		if progress != nil && time.Since(last) > 250*time.Millisecond {
			progress()
			last = time.Now()
		}
	}
}

// run reads the ring buffer until the duration ends, ctx is cancelled or a
// started command exits; then it stops the events (stopSampling) and takes
// what is still in the buffer.
func (s *session) run(ctx context.Context, p capture.Params, opts Options, tgt *target, rd *ringbuf.Reader, stats *ebpf.Map, dec decoder, stopSampling func()) error {
	stop := make(chan struct{})
	go func() {
		var timer <-chan time.Time
		if p.Duration > 0 {
			t := time.NewTimer(time.Duration(p.Duration))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-tgt.exited: // nil channel when there is no command
		}
		close(stop)
		_ = rd.Flush() // the reader's wait ends now, not at its deadline
	}()
	started := time.Now()
	progress := func() {
		s.lostTimes.mark(&s.stats, readLostPerCPU(stats), s.stats.Lost, s.since(monotonicNow()))
		if opts.Progress != nil {
			opts.Progress(Progress{Elapsed: time.Since(started), Events: uint64(s.events.len()), Lost: readStats(stats)[bpf.SamplerStatSlotSTAT_DROPPED]})
		}
	}
	err := s.read(rd, dec, stop, progress, cmp.Or(opts.idleWait, pollInterval))
	stopSampling()
	if opts.ownTables {
		// Tables for samples to come would not be used: the end of
		// the capture gets the CPU.
		s.tables.stopLoading()
	}
	t := time.Now()
	opts.phases().Window = t.Sub(started)
	s.drain(rd, dec, time.Now().Add(200*time.Millisecond))
	s.stopMappings()
	opts.phases().Drain = time.Since(t)
	progress()
	return err
}

// trackMappings opens the kernel's mapping records for the session's
// processes and the listeners'. Without them (a kernel or a policy that
// refuses perf events) the processes' maps are read from /proc alone.
func (s *session) trackMappings(idle time.Duration, listeners ...MappingListener) {
	t, err := openMappingTracker(idle, append([]MappingListener{&s.procs}, listeners...)...)
	if err != nil {
		s.log.Debug("mapping records unavailable: reading /proc alone", "err", err)
		return
	}
	s.maps = t
	s.procs.mu.Lock()
	s.procs.tracked = true
	s.procs.mu.Unlock()
	s.namer.tracked()
	t.start()
}

// stopMappings delivers the last mapping records: after it, every process's
// snapshot has what it mapped during the capture.
func (s *session) stopMappings() {
	if s.maps == nil {
		return
	}
	s.maps.close()
	if n := s.maps.records.Load(); n > 0 {
		s.stats.Counters.Add(capture.MappingRecords, n)
	}
	if n := s.maps.lost.Load(); n > 0 {
		s.stats.Counters.Add(capture.MappingRecordsLost, n)
	}
	s.maps = nil
}

// close stops the namer and releases the process snapshots.
func (s *session) close() {
	if s.tables != nil {
		s.tables.end()
		s.tables = nil
	}
	s.stopMappings()
	s.namer.wait()
	s.procs.close()
}

// finish adds warnings, symbolizes and returns the capture.
func (s *session) finish(meta capture.Meta, opts Options) *capture.Capture {
	if s.ringBytes > 0 {
		s.stats.Counters.Add(capture.RingBytes, s.ringBytes)
	}
	meta.Stats = s.stats
	if ok, reason := opts.Symbolizer.KernelStatus(); !ok {
		meta.Warnings = append(meta.Warnings, "kernel frames are not named: "+reason)
	}
	if s.stats.Lost > 0 {
		meta.Warnings = append(meta.Warnings, s.lostWarning(meta))
	}
	if s.tables != nil {
		if err := s.tables.Refused(); err != nil {
			meta.Warnings = append(meta.Warnings, "the kernel refused the BPF unwinder: user stacks were unwound from stack copies, as with an older scorch ("+err.Error()+")")
		}
		for k, n := range since(s.tables.stats(), s.tablesBase) {
			s.stats.Counters.AddReason(k.Counter, k.Reason, n)
		}
		meta.Stats = s.stats
	}
	if w := UnwindSummary(s.stats); s.stats.UnwindEnded > 0 {
		meta.Warnings = append(meta.Warnings, w)
	}
	t := time.Now()
	b, ids := s.namer.wait()
	t2 := time.Now()
	opts.phases().Symbolize = t2.Sub(t)
	c := buildCapture(meta, b, ids, &s.events)
	c.Meta.Stats.Lost = s.stats.Lost
	opts.phases().Aggregate = time.Since(t2)
	return c
}
