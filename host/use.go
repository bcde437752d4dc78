package host

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ring is a resource's history: one point per sample, bounded.
type ring struct {
	t       []float64
	u, s, e []Num
	st      []int8
	next    int
	n       int
	lastGen uint64
}

func newRing(size int) *ring {
	return &ring{t: make([]float64, size), u: make([]Num, size), s: make([]Num, size), e: make([]Num, size), st: make([]int8, size)}
}

func (r *ring) add(t float64, u, s, e Num, st level, gen uint64) {
	r.t[r.next], r.u[r.next], r.s[r.next], r.e[r.next], r.st[r.next] = t, u, s, e, int8(st)
	r.next = (r.next + 1) % len(r.t)
	r.n = min(r.n+1, len(r.t))
	r.lastGen = gen
}

// series returns the points newer than since, oldest first.
func (r *ring) series(since, step float64) Series {
	out := Series{Step: step, Utilization: []Num{}, Saturation: []Num{}, Errors: []Num{}, Status: []int8{}}
	for i := range r.n {
		j := (r.next - r.n + i + len(r.t)) % len(r.t)
		if r.t[j] < since {
			continue
		}
		if len(out.Utilization) == 0 {
			out.Start = r.t[j]
		}
		out.Utilization = append(out.Utilization, r.u[j])
		out.Saturation = append(out.Saturation, r.s[j])
		out.Errors = append(out.Errors, r.e[j])
		out.Status = append(out.Status, r.st[j])
	}
	return out
}

// condition is one rule of one resource (CPU busy, run queue, ...): the
// level of each recent sample, and what set the worst of them.
type condition struct {
	levels  []level // the last holdSamples raised levels, newest last
	rules   []string
	drills  []Drill
	raw     []level // levels before requiring raiseSamples in a row
	lastGen uint64
}

// check is one rule evaluated on one sample.
type check struct {
	name    string // the condition's key within the resource
	level   level
	rule    string
	drill   Drill
	instant bool // raise at once (an OOM kill is an event, not a condition)
}

// update records a sample's level and returns the level held now: the
// worst of the last holdSamples, each raised only after raiseSamples
// samples in a row at or above it.
func (c *condition) update(ch check, gen uint64) (level, string, Drill) {
	c.raw = append(c.raw, ch.level)
	if len(c.raw) > raiseSamples {
		c.raw = c.raw[1:]
	}
	raised := ch.level
	if !ch.instant {
		for _, l := range c.raw {
			raised = min(raised, l)
		}
		if len(c.raw) < raiseSamples {
			raised = levelOK
		}
	}
	c.levels = append(c.levels, raised)
	c.rules = append(c.rules, ch.rule)
	c.drills = append(c.drills, ch.drill)
	if len(c.levels) > holdSamples {
		c.levels, c.rules, c.drills = c.levels[1:], c.rules[1:], c.drills[1:]
	}
	c.lastGen = gen
	worst, at := levelOK, len(c.levels)-1
	for i, l := range c.levels {
		if l >= worst && l > levelOK {
			worst, at = l, i
		}
	}
	if worst == levelOK {
		return levelOK, ch.rule, ch.drill
	}
	rule := c.rules[at]
	if at != len(c.levels)-1 && raised < worst {
		rule += fmt.Sprintf(" %d s ago", len(c.levels)-1-at)
	}
	drill := c.drills[at]
	if ch.drill.Type != "" && ch.drill.PID != 0 && raised == worst {
		drill = ch.drill
	}
	return worst, rule, drill
}

// resourceRow is a resource's figures of one sample before the status.
type resourceRow struct {
	Resource
	checks []check
}

func pct(part, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return part / total * 100
}

func thresholds(v, warn, crit float64) level {
	switch {
	case v >= crit:
		return levelCritical
	case v >= warn:
		return levelWarning
	}
	return levelOK
}

func (s *Sampler) drill(typ string, pid int) Drill {
	return Drill{Type: typ, PID: pid, Duration: s.opts.DrillDuration.String()}
}

// topPID is the first process of a list that is not a kernel thread
// (kernel threads have no user code to profile; the host-wide capture
// still shows them).
func (s *Sampler) topPID(l []Proc) int {
	for _, p := range l {
		if st := s.procs[p.PID]; st != nil && !st.kthread {
			return p.PID
		}
	}
	return 0
}

func (s *Sampler) compute(prev, cur *snapshot) {
	dt := cur.t.Sub(prev.t).Seconds()
	if dt <= 0 {
		return
	}
	var rows []resourceRow
	rows = append(rows, s.cpuRow(prev, cur, dt))
	if r, ok := s.memRow(prev, cur, dt); ok {
		rows = append(rows, r)
	}
	rows = append(rows, s.diskRows(prev, cur, dt)...)
	rows = append(rows, s.netRows(prev, cur, dt)...)
	if r, ok := s.tcpRow(prev, cur, dt); ok {
		rows = append(rows, r)
	}

	size := int(s.opts.Window / s.opts.Interval)
	t := float64(cur.t.UnixNano()) / 1e9
	var resources []Resource
	var findings []Finding
	for _, row := range rows {
		res := row.Resource
		worst := levelOK
		var rules []string
		var okRules []string
		for _, ch := range row.checks {
			key := res.Resource + "/" + ch.name
			c := s.conds[key]
			if c == nil {
				c = &condition{}
				s.conds[key] = c
			}
			l, rule, drill := c.update(ch, s.gen)
			if l == levelOK {
				okRules = append(okRules, rule)
				continue
			}
			if l > worst {
				worst = l
			}
			rules = append(rules, rule)
			findings = append(findings, Finding{Resource: res.Resource, Status: l.String(), Message: rule, Drill: drill})
		}
		res.Status = worst.String()
		if len(rules) > 0 {
			res.Rule = strings.Join(rules, "; ")
		} else if len(okRules) > 0 {
			res.Rule = okRules[0] // the main figure; the others are in the details
		}
		r := s.rings[res.Resource]
		if r == nil {
			r = newRing(size)
			s.rings[res.Resource] = r
		}
		r.add(t, res.Utilization, res.Saturation, res.Errors, worst, s.gen)
		resources = append(resources, res)
	}
	// A resource gone (a disk removed) keeps its history until the window
	// has passed, and its conditions with it.
	for name, r := range s.rings {
		if s.gen-r.lastGen > uint64(size) {
			delete(s.rings, name)
		}
	}
	for key, c := range s.conds {
		if s.gen-c.lastGen > holdSamples {
			delete(s.conds, key)
		}
	}
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return rank(b.Status) - rank(a.Status) // critical first
	})
	s.now = Overview{
		Time:      t,
		Interval:  s.opts.Interval.Seconds(),
		Uptime:    cur.uptime,
		CPUs:      len(cur.stat.CPUs),
		Resources: resources,
		Findings:  findings,
	}
	if l, ok := system(s, "loadavg", "no load averages", ParseLoadavg); ok {
		s.now.Load = [3]Num{Num(l.Load1), Num(l.Load5), Num(l.Load15)}
	} else {
		s.now.Load = [3]Num{unknown, unknown, unknown}
	}
}

// psiPct is the share of the interval some task stalled on a resource.
func psiPct(prev, cur *snapshot, name string, dt float64) (Num, bool) {
	p, ok1 := prev.psi[name]
	c, ok2 := cur.psi[name]
	if !ok1 || !ok2 {
		return unknown, false
	}
	return Num(min(100, float64(delta(p.Some.Total, c.Some.Total))/1e6/dt*100)), true
}

func (s *Sampler) cpuRow(prev, cur *snapshot, dt float64) resourceRow {
	row := resourceRow{Resource: Resource{Resource: "cpu", Units: Units{"% busy", "tasks waiting to run per CPU", ""}, Errors: unknown}}
	// Per-CPU deltas of the CPUs online in both samples: the "cpu" line
	// sums online CPUs only, so it drops when one goes offline.
	var sum CPUTimes
	prevByID := make(map[int]CPUTimes, len(prev.stat.CPUs))
	for _, c := range prev.stat.CPUs {
		prevByID[c.ID] = c.CPUTimes
	}
	var maxBusy float64
	maxCPU := -1
	online := make(map[int]bool)
	var perCPU []Detail
	for _, c := range cur.stat.CPUs {
		online[c.ID] = true
		p, ok := prevByID[c.ID]
		if !ok {
			continue // came online: rates from the next sample
		}
		d := subTimes(p, c.CPUTimes)
		sum = addTimes(sum, d)
		busy := pct(float64(d.Busy()), float64(d.Total()))
		perCPU = append(perCPU, Detail{Name: "cpu" + strconv.Itoa(c.ID) + " busy", Value: Num(busy), Units: "%"})
		if busy > maxBusy || maxCPU < 0 {
			maxBusy, maxCPU = busy, c.ID
		}
	}
	if len(cur.stat.CPUs) == 0 {
		sum = subTimes(prev.stat.Total, cur.stat.Total)
	}
	var offline []string
	for id := range prevByID {
		if !online[id] {
			offline = append(offline, "cpu"+strconv.Itoa(id))
		}
	}
	slices.Sort(offline)
	total := float64(sum.Total())
	ncpu := max(1, len(cur.stat.CPUs))
	util := pct(float64(sum.Busy()), total)
	if total == 0 {
		row.Utilization = unknown
	} else {
		row.Utilization = Num(util)
	}
	// Saturation: the run-queue wait every task added in the interval is
	// the average number of tasks waiting; per CPU, 1 means each CPU had
	// one task waiting all the time.
	var waitMs float64
	for _, p := range s.procs {
		if p.gen == s.gen {
			waitMs += p.wait
		}
	}
	sat := waitMs / 1000 / float64(ncpu)
	if s.noSchedstat {
		// Without schedstat: runnable tasks beyond the CPUs (less ourselves).
		sat = max(0, float64(cur.stat.ProcsRunning-1-ncpu)) / float64(ncpu)
		row.Units.Saturation = "runnable tasks beyond the CPUs, per CPU"
	}
	row.Saturation = Num(sat)
	row.Details = []Detail{
		{"user", Num(pct(float64(sum.User+sum.Nice), total)), "%"},
		{"system", Num(pct(float64(sum.System), total)), "%"},
		{"iowait", Num(pct(float64(sum.IOWait), total)), "%"},
		{"irq", Num(pct(float64(sum.IRQ), total)), "%"},
		{"softirq", Num(pct(float64(sum.SoftIRQ), total)), "%"},
		{"steal", Num(pct(float64(sum.Steal), total)), "%"},
		{"runnable", Num(float64(cur.stat.ProcsRunning)), "tasks"},
		{"blocked (D)", Num(float64(cur.stat.ProcsBlocked)), "tasks"},
		{"context switches", Num(float64(delta(prev.stat.Ctxt, cur.stat.Ctxt)) / dt), "/s"},
	}
	if v, ok := psiPct(prev, cur, "cpu", dt); ok {
		row.Details = append(row.Details, Detail{"pressure (some)", v, "% of time"})
	}
	row.Details = append(row.Details, perCPU...)
	if len(offline) > 0 {
		row.Note = strings.Join(offline, ", ") + " went offline"
	}
	top := s.topPID(s.top.CPU)
	busyRule := fmt.Sprintf("CPU %.0f%% busy", util)
	if maxCPU >= 0 && ncpu > 1 && maxBusy >= 90 && util < 80 {
		busyRule += fmt.Sprintf(" (cpu%d %.0f%%)", maxCPU, maxBusy)
	}
	if len(s.top.CPU) > 0 {
		busyRule += fmt.Sprintf(", top %s (%d) %.0f%%", s.top.CPU[0].Comm, s.top.CPU[0].PID, float64(s.top.CPU[0].Value))
	}
	row.checks = append(row.checks, check{name: "busy", level: thresholds(util, 80, 95), rule: busyRule, drill: s.drill("cpu", top)})
	rq := s.topPID(s.top.Runqueue)
	satRule := fmt.Sprintf("run queue %.2f waiting per CPU", sat)
	if len(s.top.Runqueue) > 0 {
		satRule += fmt.Sprintf(", %s (%d) waited %.0f ms/s", s.top.Runqueue[0].Comm, s.top.Runqueue[0].PID, float64(s.top.Runqueue[0].Value))
	}
	d := s.drill("offcpu", rq)
	d.State = "all" // [runqueue] time is the preempted part of all off-CPU time
	row.checks = append(row.checks, check{name: "runqueue", level: thresholds(sat, 0.5, 1.5), rule: satRule, drill: d})
	return row
}

func subTimes(a, b CPUTimes) CPUTimes {
	return CPUTimes{
		delta(a.User, b.User), delta(a.Nice, b.Nice), delta(a.System, b.System), delta(a.Idle, b.Idle),
		delta(a.IOWait, b.IOWait), delta(a.IRQ, b.IRQ), delta(a.SoftIRQ, b.SoftIRQ), delta(a.Steal, b.Steal),
		delta(a.Guest, b.Guest), delta(a.GuestNice, b.GuestNice),
	}
}

func addTimes(a, b CPUTimes) CPUTimes {
	return CPUTimes{a.User + b.User, a.Nice + b.Nice, a.System + b.System, a.Idle + b.Idle, a.IOWait + b.IOWait,
		a.IRQ + b.IRQ, a.SoftIRQ + b.SoftIRQ, a.Steal + b.Steal, a.Guest + b.Guest, a.GuestNice + b.GuestNice}
}

func (s *Sampler) memRow(prev, cur *snapshot, dt float64) (resourceRow, bool) {
	m := cur.mem
	if m == nil || m["MemTotal"] == 0 {
		return resourceRow{}, false
	}
	row := resourceRow{Resource: Resource{Resource: "memory", Units: Units{"% used", "% of time stalled (pressure)", "OOM kills"}}}
	total := float64(m["MemTotal"])
	avail, ok := m["MemAvailable"]
	if !ok { // before Linux 3.14
		avail = m["MemFree"] + m["Buffers"] + m["Cached"]
	}
	used := pct(total-float64(min(avail, m["MemTotal"])), total)
	row.Utilization = Num(used)
	vm := func(k string) float64 {
		if prev.vm == nil || cur.vm == nil {
			return math.NaN()
		}
		return float64(delta(prev.vm[k], cur.vm[k])) / dt
	}
	swapIn, swapOut := vm("pswpin"), vm("pswpout")
	psi, hasPSI := psiPct(prev, cur, "memory", dt)
	if hasPSI {
		row.Saturation = psi
	} else {
		row.Saturation = Num(swapIn + swapOut)
		row.Units.Saturation = "pages swapped per s"
	}
	oom := unknown
	if prev.vm != nil && cur.vm != nil {
		if _, ok := cur.vm["oom_kill"]; ok { // Linux 4.13
			oom = Num(delta(prev.vm["oom_kill"], cur.vm["oom_kill"]))
		}
	}
	row.Errors = oom
	swapTotal := float64(m["SwapTotal"])
	row.Details = []Detail{
		{"used", Num(total - float64(avail)), "bytes"},
		{"available", Num(float64(avail)), "bytes"},
		{"total", Num(total), "bytes"},
		{"swap used", Num(swapTotal - float64(m["SwapFree"])), "bytes"},
		{"swap in", Num(swapIn), "pages/s"},
		{"swap out", Num(swapOut), "pages/s"},
		{"page in", Num(vm("pgpgin") * 1024), "bytes/s"},
		{"page out", Num(vm("pgpgout") * 1024), "bytes/s"},
		{"major faults", Num(vm("pgmajfault")), "/s"},
	}
	flt := s.topPID(s.top.Faults)
	d := s.drill("mem", flt)
	d.Event = "page-faults"
	rule := fmt.Sprintf("memory %.0f%% used", used)
	row.checks = append(row.checks, check{name: "used", level: thresholds(used, 90, 97), rule: rule, drill: d})
	if hasPSI {
		row.checks = append(row.checks, check{name: "pressure", level: thresholds(float64(psi), 10, 40),
			rule: fmt.Sprintf("memory pressure: tasks stalled %.0f%% of the time", float64(psi)), drill: d})
	}
	if swapIn+swapOut >= 0 {
		row.checks = append(row.checks, check{name: "swap", level: thresholds(swapIn+swapOut, 100, 10000),
			rule: fmt.Sprintf("swapping %.0f pages/s in, %.0f out", swapIn, swapOut), drill: d})
	}
	if oom.Known() {
		l := levelOK
		if oom > 0 {
			l = levelCritical
		}
		row.checks = append(row.checks, check{name: "oom", level: l, instant: true,
			rule: fmt.Sprintf("%.0f OOM kills", float64(oom)), drill: d})
	}
	return row, true
}

func (s *Sampler) diskRows(prev, cur *snapshot, dt float64) []resourceRow {
	names := make([]string, 0, len(cur.disks))
	for name, d := range cur.disks {
		if s.isDisk(d) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	psi, hasPSI := psiPct(prev, cur, "io", dt)
	// The process blocked most in D state, for the busiest disk's
	// "blocked" rule: a process waiting on its I/O half the time is the
	// finding even when the device itself is far from busy (a fast disk
	// behind an fsync, a journal commit).
	var bl Proc
	for _, p := range s.top.Blocked {
		if st := s.procs[p.PID]; st != nil && !st.kthread {
			bl = p
			break
		}
	}
	busiest, busiestUtil := "", -1.0
	for _, name := range names {
		if p, ok := prev.disks[name]; ok {
			if u := float64(delta(p.IOMs, cur.disks[name].IOMs)); u > busiestUtil {
				busiest, busiestUtil = name, u
			}
		}
	}
	var rows []resourceRow
	for _, name := range names {
		c := cur.disks[name]
		p, ok := prev.disks[name]
		if !ok {
			continue // appeared: rates from the next sample
		}
		row := resourceRow{Resource: Resource{Resource: "disk:" + name, Units: Units{"% busy", "average queue size", "I/O errors"}}}
		ms := dt * 1000
		util := min(100, pct(float64(delta(p.IOMs, c.IOMs)), ms))
		row.Utilization = Num(util)
		row.Saturation = Num(float64(delta(p.WeightedMs, c.WeightedMs)) / ms)
		row.Errors = unknown
		if e, ok := cur.ioerr[name]; ok {
			row.Errors = Num(delta(prev.ioerr[name], e))
		}
		reads, writes := float64(delta(p.Reads, c.Reads)), float64(delta(p.Writes, c.Writes))
		ios := reads + writes
		await := 0.0
		if ios > 0 {
			await = float64(delta(p.ReadMs, c.ReadMs)+delta(p.WriteMs, c.WriteMs)) / ios
		}
		row.Details = []Detail{
			{"reads", Num(reads / dt), "/s"},
			{"writes", Num(writes / dt), "/s"},
			{"read", Num(float64(delta(p.ReadSectors, c.ReadSectors)) * 512 / dt), "bytes/s"},
			{"written", Num(float64(delta(p.WriteSectors, c.WriteSectors)) * 512 / dt), "bytes/s"},
			{"await", Num(await), "ms"},
			{"flushes", Num(float64(delta(p.Flushes, c.Flushes)) / dt), "/s"},
			{"in flight", Num(float64(c.InFlight)), "requests"},
		}
		if hasPSI {
			row.Details = append(row.Details, Detail{"io pressure (some, all disks)", psi, "% of time"})
		}
		io := s.topPID(s.top.IO)
		d := s.drill("offcpu", io)
		d.State = "D"
		if bl.PID != 0 {
			d.PID = bl.PID // who waits on I/O explains the wait better than who moves the most bytes
		}
		rule := fmt.Sprintf("%s %.0f%% busy, await %.1f ms", name, util, await)
		if len(s.top.IO) > 0 {
			rule += fmt.Sprintf(", top I/O %s (%d)", s.top.IO[0].Comm, s.top.IO[0].PID)
		}
		row.checks = append(row.checks, check{name: "busy", level: thresholds(util, 60, 90), rule: rule, drill: d})
		if name == busiest {
			l := levelOK
			rule := "no process blocked in D state"
			if bl.PID != 0 {
				l = thresholds(float64(bl.Value), 2, blockedWindow)
				rule = fmt.Sprintf("%s (%d) blocked in D state (waiting for I/O) in %.0f of the last %d samples; %s %.0f%% busy, await %.1f ms",
					bl.Comm, bl.PID, float64(bl.Value), blockedWindow, name, util, await)
			}
			row.checks = append(row.checks, check{name: "blocked", level: l, rule: rule, drill: d})
		}
		if row.Errors.Known() {
			l := levelOK
			if row.Errors > 0 {
				l = levelCritical
			}
			row.checks = append(row.checks, check{name: "errors", level: l, instant: true, rule: fmt.Sprintf("%s: %.0f I/O errors", name, float64(row.Errors)), drill: d})
		}
		rows = append(rows, row)
	}
	return rows
}

// linkSpeed is an interface's speed in bits/s from /sys/class/net, or NaN
// (virtual interfaces have none: their utilization is unknown).
func (s *Sampler) linkSpeed(name string) float64 {
	if v, ok := s.speeds[name]; ok && s.gen%30 != 0 {
		return v
	}
	v := math.NaN()
	if b, err := os.ReadFile(filepath.Join(s.opts.Sys, "class", "net", name, "speed")); err == nil {
		if mbit, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && mbit > 0 {
			v = mbit * 1e6
		}
	}
	s.speeds[name] = v
	return v
}

func (s *Sampler) netRows(prev, cur *snapshot, dt float64) []resourceRow {
	names := make([]string, 0, len(cur.net))
	for name, n := range cur.net {
		if name != "lo" && n.RxPackets+n.TxPackets > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for name := range s.speeds { // interfaces come and go (veths of containers)
		if _, ok := cur.net[name]; !ok {
			delete(s.speeds, name)
		}
	}
	var rows []resourceRow
	for _, name := range names {
		c := cur.net[name]
		p, ok := prev.net[name]
		if !ok {
			continue
		}
		row := resourceRow{Resource: Resource{Resource: "net:" + name, Units: Units{"% of link speed", "drops per s", "errors per s"}}}
		rx, tx := float64(delta(p.RxBytes, c.RxBytes))/dt, float64(delta(p.TxBytes, c.TxBytes))/dt
		speed := s.linkSpeed(name)
		util := math.NaN()
		if !math.IsNaN(speed) {
			util = min(100, max(rx, tx)*8/speed*100) // full duplex: the busier direction
		}
		row.Utilization = Num(util)
		drops := float64(delta(p.RxDrop, c.RxDrop)+delta(p.TxDrop, c.TxDrop)+delta(p.RxFifo, c.RxFifo)+delta(p.TxFifo, c.TxFifo)) / dt
		errs := float64(delta(p.RxErrs, c.RxErrs)+delta(p.TxErrs, c.TxErrs)+delta(p.RxFrame, c.RxFrame)+delta(p.TxCarrier, c.TxCarrier)+delta(p.TxColls, c.TxColls)) / dt
		row.Saturation, row.Errors = Num(drops), Num(errs)
		row.Details = []Detail{
			{"received", Num(rx), "bytes/s"},
			{"sent", Num(tx), "bytes/s"},
			{"packets in", Num(float64(delta(p.RxPackets, c.RxPackets)) / dt), "/s"},
			{"packets out", Num(float64(delta(p.TxPackets, c.TxPackets)) / dt), "/s"},
			{"link speed", Num(speed), "bits/s"},
		}
		d := Drill{Type: "event", Event: "skb:kfree_skb", Duration: s.opts.DrillDuration.String()}
		if !math.IsNaN(util) {
			row.checks = append(row.checks, check{name: "busy", level: thresholds(util, 80, 95), rule: fmt.Sprintf("%s %.0f%% of link speed", name, util), drill: Drill{Type: "cpu", Duration: s.opts.DrillDuration.String()}})
		}
		row.checks = append(row.checks,
			check{name: "drops", level: thresholds(drops, 1, 100), rule: fmt.Sprintf("%s drops %.0f packets/s", name, drops), drill: d},
			check{name: "errors", level: thresholds(errs, 1, 100), rule: fmt.Sprintf("%s %.0f errors/s", name, errs), drill: d})
		rows = append(rows, row)
	}
	return rows
}

func (s *Sampler) tcpRow(prev, cur *snapshot, dt float64) (resourceRow, bool) {
	if prev.snmp == nil || cur.snmp == nil {
		return resourceRow{}, false
	}
	if _, ok := cur.snmp["Tcp.CurrEstab"]; !ok {
		return resourceRow{}, false
	}
	rate := func(k string) float64 { return deltaI(prev.snmp[k], cur.snmp[k]) / dt }
	row := resourceRow{Resource: Resource{Resource: "tcp", Units: Units{"established connections", "listen overflows and drops per s", "retransmits and bad segments per s"}}}
	row.Utilization = Num(float64(cur.snmp["Tcp.CurrEstab"]))
	overflow := rate("TcpExt.ListenOverflows") + rate("TcpExt.ListenDrops")
	retrans := rate("Tcp.RetransSegs")
	out := rate("Tcp.OutSegs")
	row.Saturation = Num(overflow)
	row.Errors = Num(retrans + rate("Tcp.InErrs"))
	row.Details = []Detail{
		{"active opens", Num(rate("Tcp.ActiveOpens")), "/s"},
		{"passive opens", Num(rate("Tcp.PassiveOpens")), "/s"},
		{"retransmits", Num(retrans), "/s"},
		{"retransmitted", Num(pct(retrans, out)), "% of segments sent"},
		{"resets sent", Num(rate("Tcp.OutRsts")), "/s"},
		{"established resets", Num(rate("Tcp.EstabResets")), "/s"},
		{"bad segments", Num(rate("Tcp.InErrs")), "/s"},
	}
	ev := func(e string) Drill { return Drill{Type: "event", Event: e, Duration: s.opts.DrillDuration.String()} }
	row.checks = append(row.checks,
		check{name: "overflow", level: thresholds(overflow, 1, 100), rule: fmt.Sprintf("TCP listen queue overflows and drops %.0f/s", overflow), drill: s.drill("offcpu", 0)})
	retransPct := pct(retrans, out)
	l := levelOK
	if retrans >= 10 {
		l = thresholds(retransPct, 2, 10)
	}
	row.checks = append(row.checks, check{name: "retrans", level: l, rule: fmt.Sprintf("TCP retransmits %.0f segments/s (%.1f%%)", retrans, retransPct), drill: ev("tcp:tcp_retransmit_skb")})
	return row, true
}

// Overview returns the latest figures with minutes of series (1..15).
func (s *Sampler) Overview(minutes int) Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.now
	o.Samples = int(s.gen)
	o.Resources = make([]Resource, len(s.now.Resources))
	since := o.Time - float64(minutes)*60 + s.opts.Interval.Seconds()/2
	for i, r := range s.now.Resources {
		if rg := s.rings[r.Resource]; rg != nil {
			r.Series = rg.series(since, s.opts.Interval.Seconds())
		}
		o.Resources[i] = r
	}
	if o.Resources == nil {
		o.Resources = []Resource{}
	}
	o.Findings = append([]Finding{}, s.now.Findings...)
	o.Top = s.top
	if o.Top.CPU == nil {
		o.Top = Top{CPU: []Proc{}, Runqueue: []Proc{}, IO: []Proc{}, Blocked: []Proc{}, Faults: []Proc{}}
	}
	o.TopUnits = TopUnits
	o.KernelErrors = make([]KernelError, 0, len(s.kernel))
	for i := len(s.kernel) - 1; i >= 0; i-- { // newest first
		o.KernelErrors = append(o.KernelErrors, s.kernel[i])
	}
	o.Missing = s.missingList()
	if len(s.costs) > 0 {
		var sum float64
		for _, c := range s.costs {
			sum += c
		}
		o.Cost = Num(sum / float64(len(s.costs)))
	} else {
		o.Cost = unknown
	}
	if o.Time == 0 {
		o.Load = [3]Num{unknown, unknown, unknown}
	}
	return o
}

// LastTick is the time of the latest sample (zero before the first).
func (s *Sampler) LastTick() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func rank(status string) int {
	switch status {
	case StatusCritical:
		return 2
	case StatusWarning:
		return 1
	}
	return 0
}
