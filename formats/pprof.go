package formats

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/bounded"
)

// sampleKey is what pprof samples are aggregated by: pprof has per-sample
// labels, so pid and tid split samples that share a stack.
type sampleKey struct{ stack, pid, tid uint32 }

// WritePprof writes the selected events as a gzipped pprof profile with
// real mappings, locations (inlined frames as extra lines) and the labels
// pid, tid and comm.
func WritePprof(w io.Writer, c *capture.Capture, q capture.Query) error {
	p := Profile(c, q)
	if err := p.Write(w); err != nil {
		return fmt.Errorf("write pprof: %w", err)
	}
	return nil
}

// Profile converts the selected events of a capture to a pprof profile.
func Profile(c *capture.Capture, q capture.Query) *profile.Profile {
	info := c.Meta.Type.Info()
	sts := info.PprofTypes(c.Meta.Unit)
	types := make([]*profile.ValueType, len(sts))
	for i, st := range sts {
		types[i] = &profile.ValueType{Type: st.Type, Unit: st.Unit}
	}
	p := &profile.Profile{SampleType: types, DurationNanos: int64(c.Meta.Duration)}
	if !c.Meta.Start.IsZero() {
		p.TimeNanos = c.Meta.Start.UnixNano()
	}
	p.PeriodType = &profile.ValueType{Type: types[0].Type, Unit: types[0].Unit}
	p.Period = 1
	period := int64(0)
	if info.Sampled {
		p.PeriodType = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
		hz := c.Meta.Params.Hz
		if hz <= 0 {
			hz = capture.DefaultHz
		}
		period = int64(time.Second) / int64(hz)
		p.Period = period
	}
	inuse := ""
	for _, st := range sts {
		if st.Default {
			p.DefaultSampleType = st.Type
		}
		if st.Sum == capture.SumInuseValue && inuse == "" {
			inuse = st.Type
		}
	}
	if inuse != "" {
		if q.View == "inuse" {
			p.DefaultSampleType = inuse
		}
		q.View = "" // both views are in the profile
	}
	p.Comments = append(p.Comments, fmt.Sprintf("scorch %s capture, unit %s, host %s", c.Meta.Type, c.Meta.Unit, c.Meta.Host))

	// Sum the events per (stack, pid, tid).
	m := c.Matcher(q)
	sums := make(map[sampleKey][]int64)
	for i := range c.Events {
		e := &c.Events[i]
		if int(e.Stack) >= len(c.Stacks) || !m.Match(e) {
			continue
		}
		k := sampleKey{e.Stack, e.PID, e.TID}
		v := sums[k]
		if v == nil {
			v = make([]int64, len(types))
			sums[k] = v
		}
		objs := e.Value2
		if objs == 0 {
			objs = 1
		}
		used := e.Flags&capture.FlagInuse != 0
		for j, st := range sts {
			switch st.Sum {
			case capture.SumValue:
				v[j] += m.Value(e) // intervals: the part inside the range
			case capture.SumValue2:
				v[j] += e.Value2
			case capture.SumObjects:
				v[j] += objs
			case capture.SumInuseValue:
				if used {
					v[j] += e.Value
				}
			case capture.SumInuseObjects:
				if used {
					v[j] += objs
				}
			case capture.SumEvents:
				v[j]++
			case capture.SumPeriod:
				v[j] += e.Value * period
			}
		}
	}
	keys := make([]sampleKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sampleKey) int {
		return cmp.Or(cmp.Compare(a.stack, b.stack), cmp.Compare(a.pid, b.pid), cmp.Compare(a.tid, b.tid))
	})

	pb := newProfileBuilder(c, p)
	for _, k := range keys {
		locs, comm := pb.stack(k.stack, k.pid)
		s := &profile.Sample{Location: locs, Value: sums[k],
			NumLabel: map[string][]int64{"pid": {int64(k.pid)}, "tid": {int64(k.tid)}}}
		if comm != "" {
			s.Label = map[string][]string{"comm": {comm}}
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// profileBuilder interns pprof mappings, functions and locations.
type profileBuilder struct {
	c         *capture.Capture
	p         *profile.Profile
	mappings  map[[2]string]*profile.Mapping // synthetic, by module and build ID
	functions map[uint32]*profile.Function   // by frame index
	byName    map[[3]string]*profile.Function
	locations map[string]*profile.Location // by frame index sequence and mapping
	stacks    map[[2]uint32][]*profile.Location
	// real are the processes' own mappings (capture.Mappings), by pid,
	// sorted by module, build ID and VAddr.
	real     map[uint32][]realMapping
	nextBase uint64
	key      []byte
}

type realMapping struct {
	cm *capture.Mapping
	pm *profile.Mapping
}

func newProfileBuilder(c *capture.Capture, p *profile.Profile) *profileBuilder {
	pb := &profileBuilder{c: c, p: p, mappings: make(map[[2]string]*profile.Mapping),
		functions: make(map[uint32]*profile.Function), byName: make(map[[3]string]*profile.Function), locations: make(map[string]*profile.Location),
		stacks: make(map[[2]uint32][]*profile.Location), real: make(map[uint32][]realMapping), nextBase: 1 << 32}
	pb.buildMappings()
	return pb
}

// libraryRank orders modules: executables first, then shared libraries,
// then the kernel and other bracketed names.
func libraryRank(m string) int {
	switch {
	case strings.HasPrefix(m, "[") || isKernelModule(m):
		return 2
	case strings.Contains(path.Base(m), ".so"):
		return 1
	}
	return 0
}

func isKernelModule(m string) bool {
	return strings.HasPrefix(m, "[kernel") || strings.HasSuffix(m, "vmlinux") || strings.HasSuffix(m, ".ko")
}

// buildMappings makes the processes' own mappings (capture.Mappings) and,
// for frames outside them (imports, captures from before them), one
// mapping per module and build ID: frames hold module-relative offsets, so
// each such module gets its own address range (Start) with Offset 0, which
// keeps Address-Start+Offset equal to the frame's offset in the file.
// Kernel frames keep their kernel addresses.
func (pb *profileBuilder) buildMappings() {
	type span struct {
		lo, hi                           uint64
		funcs, files, lines, inlineFrame bool
	}
	spans := make(map[[2]string]*span)
	var order [][2]string
	for i := range pb.c.Frames {
		f := &pb.c.Frames[i]
		if f.Module == "" {
			continue
		}
		k := [2]string{f.Module, f.BuildID}
		s := spans[k]
		if s == nil {
			s = &span{lo: f.Offset, hi: f.Offset}
			spans[k] = s
			order = append(order, k)
		}
		s.lo, s.hi = min(s.lo, f.Offset), max(s.hi, f.Offset)
		// The flags say what the frames really have: a frame named
		// "module+0x1a2b" has no function, one without a line table no
		// file or line.
		s.funcs = s.funcs || f.Name != "" && f.Name != capture.FrameUnknown && !offsetName(f)
		s.files = s.files || f.File != ""
		s.lines = s.lines || f.Line > 0
		s.inlineFrame = s.inlineFrame || f.Kind == capture.KindInlined
	}
	// pprof takes the first mapping for the main program: prefer an
	// executable over libraries and the kernel.
	slices.SortStableFunc(order, func(a, b [2]string) int {
		return cmp.Compare(libraryRank(a[0]), libraryRank(b[0]))
	})
	// The processes' own mappings first, where the capture has them:
	// real ranges, file offsets and build IDs, which pprof -symbolize and
	// other tools can use. The main program's come first.
	cms := make([]*capture.Mapping, 0, len(pb.c.Mappings))
	for i := range pb.c.Mappings {
		if s := spans[[2]string{pb.c.Mappings[i].Module, pb.c.Mappings[i].BuildID}]; s != nil {
			cms = append(cms, &pb.c.Mappings[i])
		}
	}
	slices.SortStableFunc(cms, func(a, b *capture.Mapping) int {
		return cmp.Or(cmp.Compare(libraryRank(a.Module), libraryRank(b.Module)), cmp.Compare(a.PID, b.PID), cmp.Compare(a.Start, b.Start))
	})
	for _, cm := range cms {
		s := spans[[2]string{cm.Module, cm.BuildID}]
		m := &profile.Mapping{ID: uint64(len(pb.p.Mapping) + 1), Start: cm.Start, Limit: cm.Limit, Offset: cm.Offset, File: cm.Module, BuildID: cm.BuildID,
			HasFunctions: s.funcs, HasFilenames: s.files, HasLineNumbers: s.lines, HasInlineFrames: s.inlineFrame}
		pb.p.Mapping = append(pb.p.Mapping, m)
		pb.real[cm.PID] = append(pb.real[cm.PID], realMapping{cm, m})
	}
	for _, k := range order {
		s := spans[k]
		m := &profile.Mapping{ID: uint64(len(pb.p.Mapping) + 1), File: k[0], BuildID: k[1],
			HasFunctions: s.funcs, HasFilenames: s.files, HasLineNumbers: s.lines, HasInlineFrames: s.inlineFrame}
		if isKernelModule(k[0]) && s.lo >= 1<<47 {
			m.Start, m.Limit = s.lo, s.hi+1
		} else {
			m.Start = pb.nextBase
			m.Limit = m.Start + s.hi + 1
			pb.nextBase = (m.Limit + 1<<32) &^ (1<<32 - 1)
		}
		pb.mappings[k] = m
		if len(cms) == 0 {
			pb.p.Mapping = append(pb.p.Mapping, m)
		} else {
			m.ID = 0 // listed when a frame without its process's mapping uses it
		}
	}
}

// realMapping returns the pid's own mapping that holds a frame, or nil.
func (pb *profileBuilder) realMapping(pid uint32, f *capture.Frame) *realMapping {
	ms := pb.real[pid]
	for i := range ms {
		r := &ms[i]
		if r.cm.Module == f.Module && r.cm.BuildID == f.BuildID && r.cm.Holds(f.Offset) {
			return r
		}
	}
	return nil
}

// offsetName reports whether a frame's name is only its place in its
// module ("libfoo.so+0x1a2b"), for lack of a symbol.
func offsetName(f *capture.Frame) bool {
	return f.Module != "" && f.Name == fmt.Sprintf("%s+0x%x", path.Base(f.Module), f.Offset)
}

func (pb *profileBuilder) function(idx uint32) *profile.Function {
	if fn, ok := pb.functions[idx]; ok {
		return fn
	}
	f := &pb.c.Frames[idx]
	name := f.Label()
	if f.Waker && f.Kind != capture.KindSynthetic {
		name += "_[w]"
	}
	sys := f.SystemName
	if sys == "" {
		sys = name
	}
	// One function per name and file, whatever the addresses of its frames
	// (pprof's function views merge by function).
	k := [3]string{name, sys, f.File}
	fn := pb.byName[k]
	if fn == nil {
		fn = &profile.Function{ID: uint64(len(pb.p.Function) + 1), Name: name, SystemName: sys, Filename: f.File}
		pb.p.Function = append(pb.p.Function, fn)
		pb.byName[k] = fn
	}
	pb.functions[idx] = fn
	return fn
}

// stack returns the locations of a stack in process pid, leaf first, and
// its process name. A frame and the inlined frames that follow it
// (leafward) share one location, innermost line first.
func (pb *profileBuilder) stack(st, pid uint32) ([]*profile.Location, string) {
	frames := pb.c.Stacks[st]
	comm := ""
	if len(frames) > 0 && pb.c.Frames[frames[0]].Kind == capture.KindProcess {
		comm = pb.c.Frames[frames[0]].Name
		frames = frames[1:]
	}
	if pb.real[pid] == nil {
		pid = 0 // the same locations in every such process
	}
	if locs, ok := pb.stacks[[2]uint32{st, pid}]; ok {
		return locs, comm
	}
	var locs []*profile.Location
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && pb.c.Frames[frames[j]].Kind == capture.KindInlined {
			j++
		}
		locs = append(locs, pb.location(frames[i:j], pid))
		i = j
	}
	slices.Reverse(locs)
	pb.stacks[[2]uint32{st, pid}] = locs
	return locs, comm
}

func (pb *profileBuilder) location(group []uint32, pid uint32) *profile.Location {
	phys := &pb.c.Frames[group[0]]
	var real *realMapping
	if phys.Module != "" && pid != 0 {
		real = pb.realMapping(pid, phys)
	}
	pb.key = pb.key[:0]
	for _, f := range group {
		pb.key = fmt.Appendf(pb.key, "%d,", f)
	}
	if real != nil {
		pb.key = fmt.Appendf(pb.key, "m%d", real.pm.ID)
	}
	if l, ok := pb.locations[string(pb.key)]; ok {
		return l
	}
	l := &profile.Location{ID: uint64(len(pb.p.Location) + 1)}
	if real != nil {
		l.Mapping = real.pm
		l.Address = real.cm.Start + phys.Offset - real.cm.VAddr
	} else if pid != 0 && phys.Offset == 0 && phys.Kind == capture.KindUser {
		// An entry frame the capture added by name (a stack walked with
		// frame pointers ends before _start): no address to give.
	} else if m := pb.mappings[[2]string{phys.Module, phys.BuildID}]; phys.Module != "" && m != nil {
		if m.ID == 0 {
			m.ID = uint64(len(pb.p.Mapping) + 1)
			pb.p.Mapping = append(pb.p.Mapping, m)
		}
		l.Mapping = m
		if isKernelModule(m.File) && m.Start >= 1<<47 {
			l.Address = phys.Offset // kernel mappings keep kernel addresses
		} else {
			l.Address = m.Start + phys.Offset
		}
	}
	for i := len(group) - 1; i >= 0; i-- {
		f := &pb.c.Frames[group[i]]
		l.Line = append(l.Line, profile.Line{Function: pb.function(group[i]), Line: int64(f.Line)})
	}
	pb.p.Location = append(pb.p.Location, l)
	pb.locations[string(pb.key)] = l
	return l
}

// readPprof imports an uncompressed pprof profile, including Go runtime
// CPU and heap profiles. What decoding would allocate is estimated from the
// records the profile holds and must stay within limit.
func readPprof(data []byte, limit int64) (*capture.Capture, error) {
	if cost, err := pprofCost(data); err != nil {
		return nil, fmt.Errorf("read pprof: %w", err)
	} else if cost > limit {
		return nil, fmt.Errorf("read pprof: %w", &bounded.LimitError{What: fmt.Sprintf("decoding the profile (about %s for its samples, locations and strings)", bounded.Human(cost)), Limit: limit})
	}
	p, err := profile.ParseUncompressed(data)
	if err != nil {
		return nil, fmt.Errorf("read pprof: %w", err)
	}
	if len(p.SampleType) == 0 {
		return nil, fmt.Errorf("read pprof: the profile has no sample types")
	}
	// The parser leaves references to missing locations, mappings and
	// functions as nil: refuse such a profile instead of reading it.
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("read pprof: %w", err)
	}
	idx := func(name string) int {
		for i, st := range p.SampleType {
			if st.Type == name {
				return i
			}
		}
		return -1
	}
	meta := capture.Meta{Source: "pprof", Duration: time.Duration(p.DurationNanos)}
	if p.TimeNanos != 0 {
		meta.Start = time.Unix(0, p.TimeNanos).UTC()
	}
	im, ok := pprofMatch(idx)
	if ok {
		meta.Type, meta.Unit, meta.Event = im.typ, im.unit, im.event
		if meta.Type.Info().Sampled && p.Period > 0 && p.PeriodType != nil && p.PeriodType.Unit == "nanoseconds" {
			meta.Params.Hz = int((int64(time.Second) + p.Period/2) / p.Period)
		}
	} else {
		// Any other profile (Go's mutex, block, goroutine...): its
		// default sample type, else the last, as a counted event.
		meta.Type = capture.OtherEventsType()
		im.v1 = len(p.SampleType) - 1
		if d := idx(p.DefaultSampleType); d >= 0 {
			im.v1 = d
		}
		meta.Event = p.SampleType[im.v1].Type
		meta.Unit = pprofUnit(p.SampleType[im.v1].Unit)
	}
	v1, v2, inuse, inuseObjs := im.v1, im.v2, im.inuse, im.inuseObjs
	meta.Params.Type = meta.Type
	b := capture.NewBuilder(meta)
	root := "[unknown]"
	if len(p.Mapping) > 0 && p.Mapping[0].File != "" {
		root = path.Base(p.Mapping[0].File)
	}
	locFrames := make(map[uint64][]uint32)
	var ids []uint32
	for _, s := range p.Sample {
		ids = ids[:0]
		comm := root
		if l := s.Label["comm"]; len(l) > 0 && l[0] != "" {
			comm = l[0]
		}
		ids = append(ids, b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess}))
		for i := len(s.Location) - 1; i >= 0; i-- {
			l := s.Location[i]
			fr, ok := locFrames[l.ID]
			if !ok {
				fr = locationFrames(b, l)
				locFrames[l.ID] = fr
			}
			ids = append(ids, fr...)
		}
		st := b.Stack(ids)
		e := capture.Event{Stack: st, Value: value(s, v1), Value2: value(s, v2)}
		if n := s.NumLabel["pid"]; len(n) > 0 {
			e.PID = uint32(n[0])
		}
		if n := s.NumLabel["tid"]; len(n) > 0 {
			e.TID = uint32(n[0])
		}
		if inuse >= 0 {
			// Split into the part still in use (FlagInuse) and the rest,
			// so the alloc view sums both and the inuse view one.
			in, inObjs := value(s, inuse), value(s, inuseObjs)
			if in > 0 {
				b.Add(capture.Event{Stack: st, Value: in, Value2: inObjs, PID: e.PID, TID: e.TID, Flags: capture.FlagInuse})
			}
			e.Value -= in
			e.Value2 -= inObjs
			if e.Value <= 0 && e.Value2 <= 0 {
				continue
			}
		}
		if e.Value == 0 && e.Value2 == 0 {
			continue
		}
		b.Add(e)
	}
	c := b.Capture()
	if len(c.Events) == 0 {
		return nil, fmt.Errorf("read pprof: the profile has no samples")
	}
	return c, nil
}

// pprofImport is what an imported profile's sample types say: its capture
// type, unit and event, and the sample values (indexes, -1 for none) that
// become Event.Value and Value2 and the part still in use.
type pprofImport struct {
	typ                      capture.Type
	unit, event              string
	v1, v2, inuse, inuseObjs int
}

// pprofMatch finds the entry of capture.TypeInfo.Pprof whose sample types
// a profile has, so a profile scorch wrote reads back as its type and a new
// type imports by its table entry alone. An entry matches when the profile
// has every type it sums event values from (SumValue, SumValue2), or, for a
// heap profile of only the in-use part, its SumInuseValue type, which then
// is the value. Of the matches the one with the most of its types present
// wins, the first in table and unit order on a tie: a Go CPU profile
// (samples, cpu) reads as counted samples, one of only cpu as ns.
func pprofMatch(idx func(string) int) (pprofImport, bool) {
	var best pprofImport
	bestN := 0
	for _, t := range capture.Types {
		ti := t.Info()
		if ti.OtherEvents {
			continue // the fallback, for any sample type
		}
		for _, u := range slices.Sorted(maps.Keys(ti.Pprof)) {
			im := pprofImport{typ: t, v1: -1, v2: -1, inuse: -1, inuseObjs: -1}
			if u != "" {
				im.unit = u // else the type's unit for its event (NewBuilder)
			}
			n, hasValue, complete := 0, false, true
			for _, st := range ti.Pprof[u] {
				i := idx(st.Type)
				if i >= 0 {
					n++
				}
				switch st.Sum {
				case capture.SumValue:
					im.v1, hasValue = i, i >= 0
				case capture.SumValue2:
					im.v2, complete = i, complete && i >= 0
				case capture.SumObjects:
					im.v2 = i
				case capture.SumInuseValue:
					im.inuse = i
				case capture.SumInuseObjects:
					im.inuseObjs = i
				}
				if st.Event != "" {
					im.event = st.Event
				}
			}
			if !hasValue && im.inuse >= 0 {
				im.v1, im.v2, im.inuse, im.inuseObjs = im.inuse, im.inuseObjs, -1, -1
				hasValue = true
			}
			if hasValue && complete && n > bestN {
				best, bestN = im, n
			}
		}
	}
	return best, bestN > 0
}

func value(s *profile.Sample, i int) int64 {
	if i < 0 || i >= len(s.Value) {
		return 0
	}
	return s.Value[i]
}

func pprofUnit(u string) string {
	switch u {
	case "nanoseconds":
		return "ns"
	case "bytes":
		return "bytes"
	}
	return "count"
}

// locationFrames gives a location's frames root first: the physical
// frame, then the functions inlined into it.
func locationFrames(b *capture.Builder, l *profile.Location) []uint32 {
	kind := capture.KindUser
	module, buildID := "", ""
	var offset uint64
	if m := l.Mapping; m != nil {
		module, buildID = m.File, m.BuildID
		switch {
		case isKernelModule(m.File):
			kind = capture.KindKernel
		case perfMapRe.MatchString(m.File):
			kind = capture.KindJIT
		}
		if l.Address >= m.Start {
			offset = l.Address - m.Start + m.Offset
		}
		if kind == capture.KindKernel && m.Start >= 1<<47 {
			offset = l.Address
		}
	}
	if len(l.Line) == 0 {
		name := fmt.Sprintf("0x%x", l.Address)
		if module != "" {
			name = fmt.Sprintf("%s+0x%x", path.Base(module), offset)
		}
		return []uint32{b.Frame(capture.Frame{Name: name, Kind: kind, Module: module, BuildID: buildID, Offset: offset})}
	}
	var out []uint32
	for i := len(l.Line) - 1; i >= 0; i-- {
		ln := l.Line[i]
		f := capture.Frame{Kind: kind, Module: module, BuildID: buildID, Offset: offset, Line: int(ln.Line)}
		if i < len(l.Line)-1 {
			f.Kind = capture.KindInlined
		}
		if fn := ln.Function; fn != nil {
			f.Name, f.File = fn.Name, fn.Filename
			if fn.SystemName != fn.Name {
				f.SystemName = fn.SystemName
			}
		}
		if n, ok := strings.CutSuffix(f.Name, "_[w]"); ok {
			f.Name, f.Waker = n, true
		}
		if f.Name == "" {
			f.Name = capture.FrameUnknown
		}
		if f.Name == capture.FrameSeparator || (strings.HasPrefix(f.Name, "[") && strings.HasSuffix(f.Name, "]") && module == "") {
			f.Kind = capture.KindSynthetic
		}
		out = append(out, b.Frame(f))
	}
	return out
}

// pprofCost estimates the memory profile.ParseUncompressed allocates for
// data from the records it holds (about what each costs decoded), without
// decoding them: a small file of many tiny records is the pprof bomb.
func pprofCost(data []byte) (int64, error) {
	// Decoded sizes of profile.proto's records, roughly (structs, slices,
	// map entries).
	const (
		sampleCost   = 192
		idCost       = 16 // a location id or value of a sample
		mappingCost  = 192
		locationCost = 144
		lineCost     = 48
		functionCost = 112
		stringCost   = 24
	)
	cost := int64(len(data))
	err := protoFields(data, func(field, wt uint64, body []byte) error {
		switch field {
		case 2: // sample
			cost += sampleCost
			return protoFields(body, func(f, wt uint64, b []byte) error {
				switch {
				case (f == 1 || f == 2) && wt == 2: // packed location ids, values
					for len(b) > 0 {
						_, n := binary.Uvarint(b)
						if n <= 0 {
							return fmt.Errorf("damaged sample")
						}
						b = b[n:]
						cost += idCost
					}
				case f == 1 || f == 2 || f == 3: // one id or value; a label
					cost += idCost
				}
				return nil
			})
		case 3:
			cost += mappingCost
		case 4: // location: its lines count too
			cost += locationCost
			return protoFields(body, func(f, wt uint64, b []byte) error {
				if f == 4 {
					cost += lineCost
				}
				return nil
			})
		case 5:
			cost += functionCost
		case 6:
			cost += stringCost
		}
		return nil
	})
	return cost, err
}

// protoFields calls fn for each protobuf field of data (body is nil for
// fixed-width and varint fields).
func protoFields(data []byte, fn func(field, wt uint64, body []byte) error) error {
	for len(data) > 0 {
		tag, n := binary.Uvarint(data)
		if n <= 0 {
			return fmt.Errorf("damaged protobuf")
		}
		data = data[n:]
		var body []byte
		switch wt := tag & 7; wt {
		case 0:
			_, n := binary.Uvarint(data)
			if n <= 0 {
				return fmt.Errorf("damaged protobuf")
			}
			data = data[n:]
		case 1, 5:
			w := 8
			if wt == 5 {
				w = 4
			}
			if len(data) < w {
				return fmt.Errorf("damaged protobuf")
			}
			data = data[w:]
		case 2:
			l, n := binary.Uvarint(data)
			if n <= 0 || l > uint64(len(data)-n) {
				return fmt.Errorf("damaged protobuf")
			}
			body, data = data[n:n+int(l)], data[n+int(l):]
		default:
			return fmt.Errorf("damaged protobuf: wire type %d", wt)
		}
		if err := fn(tag>>3, tag&7, body); err != nil {
			return err
		}
	}
	return nil
}
