package fleet

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/formats"
)

// Kind is one profile type the agent pushes: which capture makes it and
// the profile name (__name__) the engines file it under.
type Kind struct {
	Flag  string       // the --types value
	Type  capture.Type // the capture that makes it
	Event string       // the capture's event, for mem
	Name  string       // profile name: __name__ for Pyroscope and Parca
}

// Kinds lists the types --types accepts.
var Kinds = []Kind{
	{Flag: "cpu", Type: capture.CPU, Name: "process_cpu"},
	{Flag: "offcpu", Type: capture.OffCPU, Name: "off_cpu"},
	{Flag: "offwake", Type: capture.OffWake, Name: "off_wake"},
	{Flag: "mem", Type: capture.Mem, Event: "page-faults", Name: "memory"},
}

// ParseTypes reads a comma-separated --types value.
func ParseTypes(s string) ([]Kind, error) {
	var out []Kind
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		i := slices.IndexFunc(Kinds, func(k Kind) bool { return k.Flag == f })
		if i < 0 {
			names := make([]string, len(Kinds))
			for j, k := range Kinds {
				names[j] = k.Flag
			}
			return nil, fmt.Errorf("unknown type %q: allowed values are %s", f, strings.Join(names, ", "))
		}
		if !slices.ContainsFunc(out, func(k Kind) bool { return k.Flag == f }) {
			out = append(out, Kinds[i])
		}
	}
	return out, nil
}

// Label is one series label.
type Label struct{ Name, Value string }

// Series is one profile of one window: the labels that name its series and
// the gzipped pprof.
type Series struct {
	Labels  []Label `json:"labels"` // __name__ first, then sorted by name
	Raw     []byte  `json:"raw"`    // gzipped pprof
	Samples int     `json:"samples"`
}

// Label returns the value of a label, "" when absent.
func (s *Series) Label(name string) string {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Batch is what one push sends: the series of one window and type.
type Batch struct {
	Name   string    `json:"name"` // profile name
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Series []Series  `json:"series"`
}

// Bytes is the batch's size on the wire, roughly: its pprof bytes.
func (b *Batch) Bytes() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Raw) + 64
	}
	return n
}

// Limits are the engine's limits a profile is trimmed to.
type Limits struct {
	MaxSamples int // samples per profile (Pyroscope: 16,000)
	MaxBytes   int // uncompressed pprof bytes per profile (Pyroscope: 4 MiB)
	MaxSeries  int // series per window and type; the smallest are merged into service "other"
}

// DefaultLimits are Pyroscope's defaults, the strictest of the engines.
var DefaultLimits = Limits{MaxSamples: 16000, MaxBytes: 4 << 20, MaxSeries: 200}

// SeriesBy says what one series stands for.
type SeriesBy string

// The --series-by values: one series per service (bounded by the host's
// services), per process or per thread (pid and tid labels; unbounded over
// time, so only when asked).
const (
	BySevice SeriesBy = "service"
	ByPID    SeriesBy = "pid"
	ByTID    SeriesBy = "tid"
)

// trimStats counts what fitting profiles into the limits removed.
type trimStats struct {
	samples int64 // samples merged into [trimmed]
	series  int64 // series merged into service "other"
}

// buildBatch turns one window's capture into one series per service (or
// process, or thread), with the labels of each.
func buildBatch(k Kind, c *capture.Capture, base []Label, by SeriesBy, lim Limits, ident *identifier) (*Batch, trimStats, error) {
	var ts trimStats
	p := formats.Profile(c, capture.Query{})
	p.Comments = nil
	type group struct {
		labels []Label
		key    string
		p      *profile.Profile
		total  int64
	}
	vi := valueIndex(p)
	groups := make(map[string]*group)
	var order []*group
	// A process has many samples: its /proc files are read once a window.
	idents := make(map[uint32][]Label)
	for _, s := range p.Sample {
		pid, tid := uint32(numLabel(s, "pid")), uint32(numLabel(s, "tid"))
		labels, ok := idents[pid]
		if !ok {
			comm := ""
			if v := s.Label["comm"]; len(v) > 0 {
				comm = v[0]
			}
			labels = identityLabels(ident.identify(pid, comm))
			idents[pid] = labels
		}
		labels = slices.Clip(labels)
		switch by {
		case ByPID:
			labels = append(labels, Label{"pid", strconv.FormatUint(uint64(pid), 10)})
		case ByTID:
			labels = append(labels, Label{"pid", strconv.FormatUint(uint64(pid), 10)}, Label{"tid", strconv.FormatUint(uint64(tid), 10)})
		}
		key := labelKey(labels)
		g := groups[key]
		if g == nil {
			g = &group{labels: labels, key: key, p: emptyLike(p)}
			groups[key] = g
			order = append(order, g)
		}
		s.Label, s.NumLabel, s.NumUnit = nil, nil, nil
		g.p.Sample = append(g.p.Sample, s)
		g.total += s.Value[vi]
	}
	// The largest series first; past MaxSeries the rest become "other".
	slices.SortStableFunc(order, func(a, b *group) int { return cmp.Or(cmp.Compare(b.total, a.total), cmp.Compare(a.key, b.key)) })
	if lim.MaxSeries > 0 && len(order) > lim.MaxSeries {
		other := &group{labels: []Label{{"service_name", "other"}}, p: emptyLike(p)}
		for _, g := range order[lim.MaxSeries-1:] {
			other.p.Sample = append(other.p.Sample, g.p.Sample...)
			ts.series++
		}
		order = append(order[:lim.MaxSeries-1], other)
	}
	b := &Batch{Name: k.Name, Start: c.Meta.Start, End: c.Meta.Start.Add(c.Meta.Duration)}
	for _, g := range order {
		raw, n, trimmed, err := encode(g.p, lim)
		if err != nil {
			return nil, ts, err
		}
		ts.samples += trimmed
		labels := append([]Label{{"__name__", k.Name}}, mergeLabels(base, g.labels)...)
		b.Series = append(b.Series, Series{Labels: labels, Raw: raw, Samples: n})
	}
	return b, ts, nil
}

func numLabel(s *profile.Sample, name string) int64 {
	if v := s.NumLabel[name]; len(v) > 0 {
		return v[0]
	}
	return 0
}

// valueIndex is the sample value that ranks samples and series: the
// default sample type, else the last (cpu nanoseconds for CPU).
func valueIndex(p *profile.Profile) int {
	for i, st := range p.SampleType {
		if st.Type == p.DefaultSampleType {
			return i
		}
	}
	return len(p.SampleType) - 1
}

func emptyLike(p *profile.Profile) *profile.Profile {
	return &profile.Profile{SampleType: p.SampleType, DefaultSampleType: p.DefaultSampleType,
		PeriodType: p.PeriodType, Period: p.Period, TimeNanos: p.TimeNanos, DurationNanos: p.DurationNanos,
		Mapping: p.Mapping, Location: p.Location, Function: p.Function}
}

// identityLabels are the labels of a process's series; empty values are
// left out.
func identityLabels(id Identity) []Label {
	l := []Label{{"service_name", id.Service}}
	add := func(name, v string) {
		if v != "" {
			l = append(l, Label{name, v})
		}
	}
	add("container_id", id.ContainerID)
	add("container", id.Container)
	add("pod", id.Pod)
	add("namespace", id.Namespace)
	return l
}

// mergeLabels puts the process's labels over the agent's (host, --label)
// and sorts them by name.
func mergeLabels(base, own []Label) []Label {
	out := make([]Label, 0, len(base)+len(own))
	for _, b := range base {
		if !slices.ContainsFunc(own, func(o Label) bool { return o.Name == b.Name }) {
			out = append(out, b)
		}
	}
	out = append(out, own...)
	slices.SortFunc(out, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func labelKey(l []Label) string {
	var b strings.Builder
	for _, x := range l {
		b.WriteString(x.Name)
		b.WriteByte(0)
		b.WriteString(x.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// encode merges equal samples, renumbers mapping, location and function
// ids 1..n (Parca rejects other ids), trims the profile to the limits and
// gzips it. It returns the samples kept and how many were merged into one
// [trimmed] sample, so totals stay whole.
func encode(p *profile.Profile, lim Limits) (raw []byte, samples int, trimmed int64, err error) {
	p = p.Compact()
	maxSamples := lim.MaxSamples
	var buf bytes.Buffer
	for range 8 {
		q := p
		if maxSamples > 0 && len(p.Sample) > maxSamples {
			q, trimmed = trim(p, maxSamples)
		}
		buf.Reset()
		if err := q.WriteUncompressed(&buf); err != nil {
			return nil, 0, 0, fmt.Errorf("encode pprof: %w", err)
		}
		if lim.MaxBytes <= 0 || buf.Len() <= lim.MaxBytes {
			samples = len(q.Sample)
			break
		}
		// Too large: keep fewer samples, in proportion, with a margin.
		n := min(len(q.Sample), maxSamples)
		if n == 0 {
			n = len(q.Sample)
		}
		maxSamples = max(1, int(float64(n)*float64(lim.MaxBytes)/float64(buf.Len())*0.9))
		if n <= 1 {
			return nil, 0, 0, fmt.Errorf("a single sample is larger than the %d-byte profile limit", lim.MaxBytes)
		}
	}
	if lim.MaxBytes > 0 && buf.Len() > lim.MaxBytes {
		return nil, 0, 0, fmt.Errorf("profile still over the %d-byte limit after trimming", lim.MaxBytes)
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(buf.Bytes())
	if err := zw.Close(); err != nil {
		return nil, 0, 0, fmt.Errorf("gzip pprof: %w", err)
	}
	return z.Bytes(), samples, trimmed, nil
}

// trimmedFrame replaces the stacks of samples cut to fit the limits.
const trimmedFrame = "[trimmed]"

// trim keeps the n-1 largest samples and merges the rest into one sample
// whose stack is the single frame [trimmed].
func trim(p *profile.Profile, n int) (*profile.Profile, int64) {
	vi := valueIndex(p)
	s := slices.Clone(p.Sample)
	slices.SortStableFunc(s, func(a, b *profile.Sample) int { return cmp.Compare(b.Value[vi], a.Value[vi]) })
	keep, rest := s[:n-1], s[n-1:]
	fn := &profile.Function{Name: trimmedFrame, SystemName: trimmedFrame}
	loc := &profile.Location{Line: []profile.Line{{Function: fn}}}
	sum := &profile.Sample{Location: []*profile.Location{loc}, Value: make([]int64, len(p.SampleType))}
	for _, r := range rest {
		for i, v := range r.Value {
			sum.Value[i] += v
		}
	}
	q := emptyLike(p)
	q.Mapping = p.Mapping
	q.Function = append(slices.Clone(p.Function), fn)
	q.Location = append(slices.Clone(p.Location), loc)
	q.Sample = append(keep, sum)
	q = q.Compact()
	return q, int64(len(rest))
}
