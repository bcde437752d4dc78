package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/pprof/profile"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
)

// otlp pushes with the OpenTelemetry profiles signal
// (ProfilesService/Export, the development proto) to a Collector, or to
// an engine that takes OTLP (Pyroscope, Parca).
type otlp struct {
	conn   *grpc.ClientConn
	client collectorpb.ProfilesServiceClient
}

func newOTLP(u *url.URL, hdr http.Header, tlsCfg *tls.Config) (*otlp, error) {
	conn, err := dialGRPC(u, "4317", hdr, tlsCfg)
	if err != nil {
		return nil, err
	}
	return &otlp{conn: conn, client: collectorpb.NewProfilesServiceClient(conn)}, nil
}

func (o *otlp) Push(ctx context.Context, b *Batch) error {
	req, err := OTLPRequest(b)
	if err != nil {
		return fmt.Errorf("otlp export: %w: %w", ErrRejected, err)
	}
	resp, err := o.client.Export(ctx, req)
	if err != nil {
		if permanentGRPC(err) {
			return fmt.Errorf("otlp export: %w: %w", ErrRejected, err)
		}
		return fmt.Errorf("otlp export: %w", err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedProfiles() > 0 {
		return fmt.Errorf("otlp export: %w: %d profiles refused: %s", ErrRejected, ps.GetRejectedProfiles(), ps.GetErrorMessage())
	}
	return nil
}

func (o *otlp) Close() error { return o.conn.Close() }

// OTLPProfileNameKey is the profile attribute that carries the profile name
// (process_cpu, off_cpu, off_wake, memory); OTLP has one sample type per
// profile, so a pprof with two sample types becomes two OTLP profiles.
const OTLPProfileNameKey = "scorch.profile.name"

// resourceKeys maps series labels to OpenTelemetry resource semantic
// conventions; other labels keep their names.
var resourceKeys = map[string]string{
	"service_name": "service.name",
	"host":         "host.name",
	"container_id": "container.id",
	"container":    "k8s.container.name",
	"pod":          "k8s.pod.name",
	"namespace":    "k8s.namespace.name",
	"pid":          "process.pid",
	"tid":          "thread.id",
}

// OTLPRequest converts a batch to one export request: one resource per
// series, one profile per sample type, one dictionary for all.
func OTLPRequest(b *Batch) (*collectorpb.ExportProfilesServiceRequest, error) {
	d := newDictionary()
	req := &collectorpb.ExportProfilesServiceRequest{Dictionary: d.dict}
	nameAttr := d.attribute(OTLPProfileNameKey, b.Name)
	for i := range b.Series {
		s := &b.Series[i]
		p, err := profile.ParseData(s.Raw)
		if err != nil {
			return nil, fmt.Errorf("series %d: %w", i, err)
		}
		res := &resourcepb.Resource{}
		for _, l := range s.Labels {
			if l.Name == "__name__" {
				continue
			}
			key, ok := resourceKeys[l.Name]
			if !ok {
				key = l.Name
			}
			v := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: l.Value}}
			if l.Name == "pid" || l.Name == "tid" {
				if n, err := strconv.ParseInt(l.Value, 10, 64); err == nil {
					v = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}
				}
			}
			res.Attributes = append(res.Attributes, &commonpb.KeyValue{Key: key, Value: v})
		}
		sp := &profilespb.ScopeProfiles{Scope: &commonpb.InstrumentationScope{Name: "scorch"}}
		stacks := make([]int32, len(p.Sample))
		for j, smp := range p.Sample {
			stacks[j] = d.stack(smp.Location)
		}
		for vi, st := range p.SampleType {
			op := &profilespb.Profile{
				SampleType:       d.valueType(st.Type, st.Unit),
				TimeUnixNano:     uint64(p.TimeNanos),
				DurationNano:     uint64(p.DurationNanos),
				Period:           p.Period,
				AttributeIndices: []int32{nameAttr},
			}
			if p.PeriodType != nil {
				op.PeriodType = d.valueType(p.PeriodType.Type, p.PeriodType.Unit)
			}
			for j, smp := range p.Sample {
				if smp.Value[vi] == 0 {
					continue
				}
				op.Samples = append(op.Samples, &profilespb.Sample{StackIndex: stacks[j], Values: []int64{smp.Value[vi]}})
			}
			sp.Profiles = append(sp.Profiles, op)
		}
		req.ResourceProfiles = append(req.ResourceProfiles, &profilespb.ResourceProfiles{Resource: res, ScopeProfiles: []*profilespb.ScopeProfiles{sp}})
	}
	return req, nil
}

// dictionary interns the shared tables of an OTLP request; entry 0 of
// every table is the zero value, as the proto requires.
type dictionary struct {
	dict      *profilespb.ProfilesDictionary
	strings   map[string]int32
	attrs     map[[2]string]int32
	mappings  map[mappingKey]int32
	functions map[functionKey]int32
	locations map[string]int32
	stacks    map[string]int32
	key       []byte
}

func newDictionary() *dictionary {
	return &dictionary{
		dict: &profilespb.ProfilesDictionary{
			MappingTable:   []*profilespb.Mapping{{}},
			LocationTable:  []*profilespb.Location{{}},
			FunctionTable:  []*profilespb.Function{{}},
			LinkTable:      []*profilespb.Link{{TraceId: make([]byte, 16), SpanId: make([]byte, 8)}},
			StringTable:    []string{""},
			AttributeTable: []*profilespb.KeyValueAndUnit{{}},
			StackTable:     []*profilespb.Stack{{}},
		},
		strings: map[string]int32{"": 0}, attrs: make(map[[2]string]int32),
		mappings: make(map[mappingKey]int32), functions: make(map[functionKey]int32),
		locations: make(map[string]int32), stacks: make(map[string]int32),
	}
}

func (d *dictionary) str(s string) int32 {
	if i, ok := d.strings[s]; ok {
		return i
	}
	i := int32(len(d.dict.StringTable))
	d.dict.StringTable = append(d.dict.StringTable, s)
	d.strings[s] = i
	return i
}

func (d *dictionary) valueType(t, u string) *profilespb.ValueType {
	return &profilespb.ValueType{TypeStrindex: d.str(t), UnitStrindex: d.str(u)}
}

func (d *dictionary) attribute(k, v string) int32 {
	key := [2]string{k, v}
	if i, ok := d.attrs[key]; ok {
		return i
	}
	i := int32(len(d.dict.AttributeTable))
	d.dict.AttributeTable = append(d.dict.AttributeTable, &profilespb.KeyValueAndUnit{KeyStrindex: d.str(k),
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}})
	d.attrs[key] = i
	return i
}

// Tables are interned by content: the series of a batch are parsed
// separately, and share most of their mappings, functions and locations.
type mappingKey struct {
	file, buildID        string
	start, limit, offset uint64
}

type functionKey struct {
	name, system, file string
	start              int64
}

func (d *dictionary) mapping(m *profile.Mapping) int32 {
	if m == nil {
		return 0
	}
	mk := mappingKey{m.File, m.BuildID, m.Start, m.Limit, m.Offset}
	if i, ok := d.mappings[mk]; ok {
		return i
	}
	om := &profilespb.Mapping{MemoryStart: m.Start, MemoryLimit: m.Limit, FileOffset: m.Offset, FilenameStrindex: d.str(m.File)}
	if m.BuildID != "" {
		om.AttributeIndices = []int32{d.attribute("process.executable.build_id.gnu", m.BuildID)}
	}
	i := int32(len(d.dict.MappingTable))
	d.dict.MappingTable = append(d.dict.MappingTable, om)
	d.mappings[mk] = i
	return i
}

func (d *dictionary) function(f *profile.Function) int32 {
	fk := functionKey{f.Name, f.SystemName, f.Filename, f.StartLine}
	if i, ok := d.functions[fk]; ok {
		return i
	}
	i := int32(len(d.dict.FunctionTable))
	d.dict.FunctionTable = append(d.dict.FunctionTable, &profilespb.Function{NameStrindex: d.str(f.Name),
		SystemNameStrindex: d.str(f.SystemName), FilenameStrindex: d.str(f.Filename), StartLine: f.StartLine})
	d.functions[fk] = i
	return i
}

func (d *dictionary) location(l *profile.Location) int32 {
	ol := &profilespb.Location{MappingIndex: d.mapping(l.Mapping), Address: l.Address}
	d.key = strconv.AppendInt(d.key[:0], int64(ol.MappingIndex), 36)
	d.key = strconv.AppendUint(append(d.key, ','), l.Address, 36)
	for _, ln := range l.Line {
		fi := d.function(ln.Function)
		ol.Lines = append(ol.Lines, &profilespb.Line{FunctionIndex: fi, Line: ln.Line})
		d.key = strconv.AppendInt(append(d.key, ','), int64(fi), 36)
		d.key = strconv.AppendInt(append(d.key, ':'), ln.Line, 36)
	}
	if i, ok := d.locations[string(d.key)]; ok {
		return i
	}
	i := int32(len(d.dict.LocationTable))
	d.dict.LocationTable = append(d.dict.LocationTable, ol)
	d.locations[string(d.key)] = i
	return i
}

// stack interns a stack, leaf first as in pprof.
func (d *dictionary) stack(locs []*profile.Location) int32 {
	idx := make([]int32, len(locs))
	key := make([]byte, 0, 4*len(locs))
	for i, l := range locs {
		idx[i] = d.location(l)
		key = strconv.AppendInt(key, int64(idx[i]), 36)
		key = append(key, ',')
	}
	if i, ok := d.stacks[string(key)]; ok {
		return i
	}
	i := int32(len(d.dict.StackTable))
	d.dict.StackTable = append(d.dict.StackTable, &profilespb.Stack{LocationIndices: idx})
	d.stacks[string(key)] = i
	return i
}
