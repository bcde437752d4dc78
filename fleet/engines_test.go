package fleet_test

// In-process stand-ins for the engines, built from their own protocol
// modules: they decode what the agent sends and apply the engines'
// documented validation rules, answering InvalidArgument as the engines do.

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// received is one decoded series.
type received struct {
	labels  map[string]string
	profile *profile.Profile
	raw     int // decompressed bytes
}

// fakePyroscope serves push.v1.PusherService/Push.
type fakePyroscope struct {
	mu      sync.Mutex
	series  []received
	headers []http.Header
	// fail, when set, answers instead of storing (tests of the queue).
	fail func() error
}

func pushv1connectHandler(f *fakePyroscope) (string, http.Handler) {
	return pushv1connect.NewPusherServiceHandler(f)
}

func newFakePyroscope(t *testing.T) (*fakePyroscope, *httptest.Server) {
	f := &fakePyroscope{}
	path, h := pushv1connect.NewPusherServiceHandler(f)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

var metricNameRe = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

func (f *fakePyroscope) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(); err != nil {
			return nil, err
		}
	}
	var got []received
	for _, s := range req.Msg.Series {
		labels := map[string]string{}
		for _, l := range s.Labels {
			if _, dup := labels[l.Name]; dup {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("duplicate label name %q", l.Name))
			}
			labels[l.Name] = l.Value
		}
		if len(labels) > 30 {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d labels: the limit is 30", len(labels)))
		}
		if !metricNameRe.MatchString(labels["__name__"]) {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("__name__ %q is not a valid metric name", labels["__name__"]))
		}
		for _, smp := range s.Samples {
			p, n, err := decodePprof(smp.RawProfile, 4<<20)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			if err := pyroscopeRules(p); err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			got = append(got, received{labels: labels, profile: p, raw: n})
		}
	}
	f.mu.Lock()
	f.series = append(f.series, got...)
	f.headers = append(f.headers, req.Header().Clone())
	f.mu.Unlock()
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (f *fakePyroscope) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.series...)
}

// decodePprof gunzips (at most limit bytes, Pyroscope's decompressed
// limit) and parses a profile.
func decodePprof(raw []byte, limit int64) (*profile.Profile, int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("raw profile is not gzip: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) > limit {
		return nil, 0, fmt.Errorf("decompressed profile over the %d-byte limit", limit)
	}
	p, err := profile.ParseUncompressed(data)
	if err != nil {
		return nil, 0, err
	}
	return p, len(data), nil
}

// pyroscopeRules are Pyroscope's validation of a profile, plus Parca's
// sequential ids (one profile must do for both).
func pyroscopeRules(p *profile.Profile) error {
	if len(p.Sample) > 16000 {
		return fmt.Errorf("%d samples: the limit is 16000", len(p.Sample))
	}
	for _, st := range p.SampleType {
		if strings.Contains(st.Type, "-") {
			return fmt.Errorf("sample type %q contains -", st.Type)
		}
	}
	for _, s := range p.Sample {
		if len(s.Label) > 0 || len(s.NumLabel) > 0 {
			return fmt.Errorf("sample labels %v %v: each becomes a series label", s.Label, s.NumLabel)
		}
	}
	for i, m := range p.Mapping {
		if m.ID != uint64(i+1) {
			return fmt.Errorf("mapping id %d at %d is not sequential", m.ID, i)
		}
	}
	for i, l := range p.Location {
		if l.ID != uint64(i+1) {
			return fmt.Errorf("location id %d at %d is not sequential", l.ID, i)
		}
	}
	for i, fn := range p.Function {
		if fn.ID != uint64(i+1) {
			return fmt.Errorf("function id %d at %d is not sequential", fn.ID, i)
		}
	}
	return p.CheckValid()
}

// fakeCollector serves the OTLP ProfilesService/Export over gRPC.
type fakeCollector struct {
	collectorpb.UnimplementedProfilesServiceServer
	mu   sync.Mutex
	reqs []*collectorpb.ExportProfilesServiceRequest
	md   []metadata.MD
}

func newFakeCollector(t *testing.T) (*fakeCollector, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCollector{}
	s := grpc.NewServer()
	collectorpb.RegisterProfilesServiceServer(s, f)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return f, "grpc://" + ln.Addr().String()
}

func (f *fakeCollector) Export(ctx context.Context, req *collectorpb.ExportProfilesServiceRequest) (*collectorpb.ExportProfilesServiceResponse, error) {
	d := req.GetDictionary()
	if d == nil || len(d.StringTable) == 0 || d.StringTable[0] != "" || len(d.StackTable) == 0 || len(d.LocationTable) == 0 ||
		len(d.FunctionTable) == 0 || len(d.MappingTable) == 0 || len(d.AttributeTable) == 0 || len(d.LinkTable) == 0 {
		return nil, status.Error(codes.InvalidArgument, "dictionary tables must start with their zero entry")
	}
	for _, rp := range req.ResourceProfiles {
		for _, sp := range rp.ScopeProfiles {
			for _, p := range sp.Profiles {
				for _, s := range p.Samples {
					if int(s.StackIndex) >= len(d.StackTable) || s.StackIndex <= 0 {
						return nil, status.Errorf(codes.InvalidArgument, "stack index %d out of range", s.StackIndex)
					}
					for _, li := range d.StackTable[s.StackIndex].LocationIndices {
						if li <= 0 || int(li) >= len(d.LocationTable) {
							return nil, status.Errorf(codes.InvalidArgument, "location index %d out of range", li)
						}
					}
				}
			}
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.md = append(f.md, md)
	f.mu.Unlock()
	return &collectorpb.ExportProfilesServiceResponse{}, nil
}

func (f *fakeCollector) requests() []*collectorpb.ExportProfilesServiceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*collectorpb.ExportProfilesServiceRequest(nil), f.reqs...)
}
