package capture

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Summary is a capture's health, as the page's header shows it: how much
// was sampled, how much was lost, how complete the stacks and symbols are,
// and what to do about it.
type Summary struct {
	Unit        string            `json:"unit"`
	Samples     int64             `json:"samples"` // the selection's total value, as functions.json's total
	Events      int64             `json:"events"`
	Duration    float64           `json:"duration"` // seconds
	Hz          int               `json:"hz"`       // requested; 0 when not a sampling capture
	EffectiveHz float64           `json:"effective_hz"`
	Lost        uint64            `json:"lost"`
	LostPerCPU  map[string]uint64 `json:"lost_per_cpu"`
	LostBy      map[string]uint64 `json:"lost_by"` // why: LostRingFull, LostMapFull, ...
	UserStacks  UserStacks        `json:"user_stacks"`
	// Unsymbolized is the share of frames (weighted by the events that
	// hold them) that have no symbol: [unknown] or module+offset.
	Unsymbolized float64      `json:"unsymbolized"`
	Processes    int          `json:"processes"`
	Threads      int          `json:"threads"`
	Timestamps   bool         `json:"timestamps"`
	Source       string       `json:"source,omitempty"`
	Top          []TopFunc    `json:"top"`
	Findings     []Finding    `json:"findings"`
	Modules      []ModuleHole `json:"unsymbolized_modules,omitempty"`
}

// UserStacks says how user stacks were unwound.
type UserStacks struct {
	Complete uint64            `json:"complete"`
	Ended    map[string]uint64 `json:"ended"`
}

// TopFunc is one of the functions with the most self value.
type TopFunc struct {
	Name  string  `json:"name"`
	Self  int64   `json:"self"`
	Share float64 `json:"share"`
}

// ModuleHole is a module whose frames lack symbols.
type ModuleHole struct {
	Module string  `json:"module"`
	Share  float64 `json:"share"` // of all frames
}

// Finding is one thing the user should know, with what to do about it.
type Finding struct {
	Severity string `json:"severity"` // info, warning, error
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}

// unsymbolized reports whether a frame has no symbol name.
func (f *Frame) unsymbolized() bool {
	if f.Kind == KindProcess || f.Kind == KindSynthetic && f.Name != FrameUnknown {
		return false
	}
	n := f.Name
	return n == "" || n == FrameUnknown || strings.Contains(n, "+0x")
}

// Summarize computes the health of the events q selects. top is filled
// from the caller's function table (self values, largest first).
func (c *Capture) Summarize(q Query, top []TopFunc) Summary {
	return c.summarize(nil, q, top, nil)
}

// SummarizeThrough is Summarize of the capture seen through a plan of
// c's (c.Transform(ts).Summarize with p = c.Plan(ts)), without making the
// transformed capture: stacks are transformed as they are read. q must not
// select a comm: that filter reads the transformed stacks' process frames.
// ec, when not nil, is c.CountEvents(q): the pass over the events is
// skipped when the plan drops no stack (merge, recursion, module, and a
// focus or drop every stack survives).
func (c *Capture) SummarizeThrough(p *TransformPlan, q Query, top []TopFunc, ec *EventCounts) Summary {
	return c.summarize(p, q, top, ec)
}

// EventCounts are the untransformed capture's counts of the events q
// selects: what the summary of every view with the same selection shares
// unless its transforms drop stacks.
type EventCounts struct {
	samples, events    int64
	processes, threads int
	cpus               int
	perStack           []int64 // events per stack
}

// CountEvents counts the events q selects, per stack.
func (c *Capture) CountEvents(q Query) *EventCounts {
	return c.countEvents(q, nil)
}

// countEvents is the pass over the events, leaving out those whose stack
// is dropped (dropped nil: none).
func (c *Capture) countEvents(q Query, dropped []bool) *EventCounts {
	mt := c.Matcher(q)
	var pids, tids idSet
	var cpus [1 << 16 / 64]uint64
	ec := &EventCounts{perStack: make([]int64, len(c.Stacks))}
	perStack := ec.perStack
	for i := range c.Events {
		e := &c.Events[i]
		if dropped != nil && (int(e.Stack) >= len(dropped) || dropped[e.Stack]) {
			continue // the transformed capture leaves these events out
		}
		if !mt.Match(e) {
			continue
		}
		ec.samples += mt.Value(e)
		ec.events++
		pids.add(e.PID)
		tids.add(e.TID)
		if w, bit := e.CPU/64, uint64(1)<<(e.CPU%64); cpus[w]&bit == 0 {
			cpus[w] |= bit
			ec.cpus++
		}
		if int(e.Stack) < len(perStack) {
			perStack[e.Stack]++
		}
	}
	ec.processes, ec.threads = pids.n, tids.n
	return ec
}

func (c *Capture) summarize(p *TransformPlan, q Query, top []TopFunc, ec *EventCounts) Summary {
	m := c.Meta
	s := Summary{
		Unit: m.Unit, Duration: m.Duration.Seconds(), Lost: m.Stats.Lost, LostPerCPU: map[string]uint64{},
		Timestamps: m.Timestamps, Source: m.Source, Top: top, Findings: []Finding{},
		UserStacks: UserStacks{Complete: m.Stats.UnwindCFI + m.Stats.UnwindFP, Ended: map[string]uint64{}},
	}
	if s.Top == nil {
		s.Top = []TopFunc{}
	}
	if m.Type.Info().Periodic {
		s.Hz = m.Params.Hz
		if s.Hz == 0 && m.Source == "bpf" {
			s.Hz = DefaultHz
		}
	}
	s.UserStacks.Ended = m.Stats.Counters.Reasons(UnwindEndedBy)
	s.LostPerCPU = m.Stats.Counters.Reasons(LostOnCPU)
	s.LostBy = m.Stats.Counters.Reasons(LostBy)
	frameList := c.Frames
	if p != nil && !p.Empty() {
		frameList = p.Frames
	} else {
		p = nil
	}
	// Each frame's part, worked out once: not counted, counted, or a
	// hole in a module (its index in mods, plus 2).
	part := make([]int32, len(frameList))
	var mods []string
	modIndex := map[string]int32{}
	for i := range frameList {
		fr := &frameList[i]
		switch {
		case fr.Kind == KindProcess || fr.Kind == KindSynthetic && fr.Name != FrameUnknown:
		case fr.unsymbolized():
			mod := fr.Module
			if mod == "" {
				if i := strings.Index(fr.Name, "+0x"); i > 0 {
					mod = fr.Name[:i]
				}
			}
			mod = filepath.Base(mod)
			k, ok := modIndex[mod]
			if !ok {
				k = int32(len(mods))
				mods = append(mods, mod)
				modIndex[mod] = k
			}
			part[i] = 2 + k
		default:
			part[i] = 1
		}
	}
	var frames, holes int64
	holesIn := make([]int64, len(mods))
	tally := func(st []uint32, n int64) {
		for _, f := range st {
			switch k := part[f]; k {
			case 0:
			case 1:
				frames += n
			default:
				frames += n
				holes += n
				holesIn[k-2] += n
			}
		}
	}
	var bufs [2][]uint32
	stack := func(si int) []uint32 { return c.Stacks[si] }
	if ec != nil && len(ec.perStack) != len(c.Stacks) {
		ec = nil
	}
	tallied := false
	if p != nil {
		stack = func(si int) []uint32 {
			st, _ := p.Apply(c.Stacks[si], &bufs)
			return st
		}
		// One pass transforms each stack: whether it is dropped and,
		// with the counts at hand, its frames' tally.
		dropped := make([]bool, len(c.Stacks))
		any := false
		for si := range c.Stacks {
			st := stack(si)
			dropped[si] = c.Stacks[si] != nil && st == nil
			any = any || dropped[si]
			if ec != nil && ec.perStack[si] > 0 {
				tally(st, ec.perStack[si])
			}
		}
		tallied = ec != nil
		if any {
			// As Transform does once it drops a stack: the events of
			// stacks that were empty already go too.
			for si := range c.Stacks {
				dropped[si] = dropped[si] || c.Stacks[si] == nil
			}
			ec = c.countEvents(q, dropped)
			frames, holes, tallied = 0, 0, false
			clear(holesIn)
		}
	}
	if ec == nil {
		ec = c.countEvents(q, nil)
	}
	s.Samples, s.Events = ec.samples, ec.events
	s.Processes, s.Threads = ec.processes, ec.threads
	if s.Hz > 0 && s.Duration > 0 && ec.cpus > 0 {
		s.EffectiveHz = float64(s.Events) / s.Duration / float64(ec.cpus)
	}
	if !tallied {
		for si, n := range ec.perStack {
			if n > 0 {
				tally(stack(si), n)
			}
		}
	}
	byModule := map[string]int64{}
	for k, n := range holesIn {
		if n > 0 {
			byModule[mods[k]] += n
		}
	}
	if frames > 0 {
		s.Unsymbolized = float64(holes) / float64(frames)
		for mod, n := range byModule {
			if mod != "." && mod != "" {
				s.Modules = append(s.Modules, ModuleHole{Module: mod, Share: float64(n) / float64(frames)})
			}
		}
		slices.SortFunc(s.Modules, func(a, b ModuleHole) int {
			return cmp.Or(cmp.Compare(b.Share, a.Share), strings.Compare(a.Module, b.Module))
		})
		if len(s.Modules) > 5 {
			s.Modules = s.Modules[:5]
		}
	}
	if f := c.findings(s); f != nil {
		s.Findings = f
	}
	return s
}

func pct(f float64) string {
	switch {
	case f >= 0.095:
		return fmt.Sprintf("%.0f%%", f*100)
	case f >= 0.001:
		return fmt.Sprintf("%.1f%%", f*100)
	}
	return fmt.Sprintf("%.2f%%", f*100)
}

// lostWhy names why events were lost, most first: ", 90 because the ring
// buffer was full, 3 because a map was full".
func lostWhy(by map[string]uint64) string {
	reasons := make([]string, 0, len(by))
	for r := range by {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		return by[a] > by[b] || by[a] == by[b] && a < b
	})
	out := ""
	for _, r := range reasons {
		out += fmt.Sprintf(", %d: %s", by[r], r)
	}
	return out
}

// findings says, in plain words and with a fix, what limits what the
// capture shows. Errors first, then warnings, then notes.
func (c *Capture) findings(s Summary) []Finding {
	m := c.Meta
	var out []Finding
	add := func(sev, msg, fix string) { out = append(out, Finding{Severity: sev, Message: msg, Fix: fix}) }
	if s.Events == 0 {
		add("error", "no samples in this selection", "widen the time range, remove filters or transforms, or record longer or with a wider target")
	}
	if total := m.Stats.Samples + m.Stats.Lost; m.Stats.Lost > 0 && total > 0 {
		share := float64(m.Stats.Lost) / float64(total)
		sev := "warning"
		if share > 0.1 {
			sev = "error"
		}
		fix := "record with a lower hz, a narrower target (pid, comm) or a larger ring buffer (--ring-size)"
		if s.LostBy[LostRingFull] == 0 && s.LostBy[LostMapFull] > 0 {
			fix = "record a narrower target (pid, comm): a BPF map of the collector was full"
		}
		add(sev, fmt.Sprintf("%d events were lost (%s of all%s%s): the graph under-counts whatever ran when they were dropped", m.Stats.Lost, pct(share), lostCPUs(s.LostPerCPU), lostWhy(s.LostBy)), fix)
	}
	var ended uint64
	for _, n := range s.UserStacks.Ended {
		ended += n
	}
	if all := s.UserStacks.Complete + ended; ended > 0 && all > 0 {
		share := float64(ended) / float64(all)
		reason, most := "", uint64(0)
		for r, n := range s.UserStacks.Ended {
			if n > most || n == most && r < reason {
				reason, most = r, n
			}
		}
		sev := "info"
		if share > 0.05 {
			sev = "warning"
		}
		msg := fmt.Sprintf("%s of user stacks ended early, most at %q (%d)", pct(share), reason, most)
		fix := "callers above the cut are missing: their total time is under-counted"
		switch reason {
		case "end of stack copy":
			msg = fmt.Sprintf("%s of user stacks ended at the end of the stack copy", pct(share))
			switch {
			case m.Params.Unwind != "dwarf" && m.Stats.Counters.Get(UnwindTablesPending) > 0:
				// In auto mode only samples taken before the process's unwind
				// tables were loaded are unwound from a copy.
				fix = "these samples came before their process's unwind tables were loaded (processes that started or exec'ed during the capture): name the target (pid, or -- CMD) so its tables load before sampling starts, or record with unwind=dwarf"
			case m.Params.Unwind != "dwarf":
				fix = "record with unwind=dwarf, which copies more of the stack"
			default:
				fix = "the stacks are deeper than the copy: build the program with frame pointers (-fno-omit-frame-pointer)"
			}
		case "no CFI for pc", "no module for pc":
			fix = "build with frame pointers (-fno-omit-frame-pointer), or install the debug info (.eh_frame/.debug_frame) of the code where they end"
		case "stack read fault":
			fix = "the walk read stack memory that was not resident or not mapped (a page not yet touched, or a wrong rule): record with unwind=dwarf to unwind from a copy, or build with frame pointers (-fno-omit-frame-pointer)"
		case "frame pointers did not match", "rbp not recoverable":
			fix = "build with frame pointers (-fno-omit-frame-pointer), or record with unwind=dwarf"
		}
		add(sev, msg, fix)
	}
	if s.Unsymbolized > 0.02 {
		sev := "info"
		if s.Unsymbolized > 0.1 {
			sev = "warning"
		}
		general := "install the debug symbols (-dbg or -dbgsym packages) of the programs you profile"
		if len(s.Modules) > 0 && s.Modules[0].Share >= 0.01 {
			general = "see the modules named below"
		}
		add(sev, fmt.Sprintf("%s of frames have no symbol", pct(s.Unsymbolized)), general)
		for _, h := range s.Modules {
			if h.Share < 0.01 {
				continue
			}
			mod := h.Module
			fix := "install its debug symbols (the -dbg or -dbgsym package), or rebuild it without stripping symbols"
			switch {
			case strings.HasPrefix(mod, "python"):
				fix = "run it with -X perf (Python 3.12+), which writes a perf map scorch reads"
			case strings.HasPrefix(mod, "node"):
				fix = "run it with --perf-basic-prof, which writes a perf map scorch reads"
			case strings.HasPrefix(mod, "java") || strings.HasPrefix(mod, "libjvm"):
				fix = "run it with -XX:+PreserveFramePointer and a perf map agent"
			case strings.HasPrefix(mod, "libc.so") || strings.HasPrefix(mod, "libc-"):
				fix = "install libc6-dbg for libc internals"
			case mod == "[unknown]":
				fix = "the code has no module (JIT code without a perf map, or a process that exited before it was read)"
			}
			add(sev, fmt.Sprintf("no symbols for %s (%s of frames)", mod, pct(h.Share)), fix)
		}
	}
	if s.Hz > 0 && s.Hz < 99 {
		add("info", fmt.Sprintf("sampled at %d Hz, below 100 Hz: short functions and shares under a few percent are noise", s.Hz),
			"record with hz=99 or more, or for longer")
	}
	if m.Type.Info().Sampled && s.Events > 0 && s.Events < 1000 {
		add("info", fmt.Sprintf("only %d samples: differences of a few percent are within noise", s.Events), "record longer, at a higher hz, or a wider target")
	}
	if m.Stats.StackErrors > 0 {
		add("warning", fmt.Sprintf("%d stack walks failed: those samples have no stack", m.Stats.StackErrors), "check `scorch doctor`; a narrower target or lower hz helps when the stack map is full")
	}
	if m.Stats.BadInputLines > 0 {
		add("warning", fmt.Sprintf("%d lines of the imported file could not be read and are left out", m.Stats.BadInputLines), "check the file is complete perf script, folded or pprof output")
	}
	if !m.Timestamps {
		add("info", "this capture has no timestamps (an import of folded or pprof data): the time views are hidden", "import a perf script or scorch capture file to see time")
	}
	for _, w := range m.Warnings {
		if strings.HasPrefix(w, "user stacks:") || strings.Contains(w, "events were lost") {
			continue // said above, with a fix
		}
		add("warning", w, "")
	}
	for _, n := range m.Notes {
		add("info", n, "")
	}
	rank := map[string]int{"error": 0, "warning": 1, "info": 2}
	slices.SortStableFunc(out, func(a, b Finding) int { return cmp.Compare(rank[a.Severity], rank[b.Severity]) })
	return out
}

// lostCPUs names the CPUs that lost the most events, for the finding:
// ", most on cpu 3: 400, cpu 1: 20".
func lostCPUs(perCPU map[string]uint64) string {
	type lost struct {
		cpu string
		n   uint64
	}
	var ls []lost
	for cpu, n := range perCPU {
		if n > 0 {
			ls = append(ls, lost{cpu, n})
		}
	}
	if len(ls) == 0 {
		return ""
	}
	slices.SortFunc(ls, func(a, b lost) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.cpu, b.cpu)) })
	parts := make([]string, 0, 4)
	for _, l := range ls[:min(4, len(ls))] {
		parts = append(parts, fmt.Sprintf("cpu %s: %d", l.cpu, l.n))
	}
	return ", most on " + strings.Join(parts, ", ")
}

// idSet counts distinct process or thread ids: a bitmap for the ids of
// real hosts (below 1<<22, the kernel's largest pid_max), a map above.
type idSet struct {
	bits  []uint64
	large map[uint32]bool
	n     int
}

func (s *idSet) add(id uint32) {
	if id >= 1<<22 {
		if !s.large[id] {
			if s.large == nil {
				s.large = map[uint32]bool{}
			}
			s.large[id] = true
			s.n++
		}
		return
	}
	w := int(id / 64)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, max(w+1, 2*len(s.bits))-len(s.bits))...)
	}
	if bit := uint64(1) << (id % 64); s.bits[w]&bit == 0 {
		s.bits[w] |= bit
		s.n++
	}
}
