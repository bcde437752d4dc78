package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// pyroscope pushes with Pyroscope's Push API (push.v1.PusherService/Push
// over Connect), which Grafana Cloud Profiles and Alloy's
// pyroscope.receive_http also serve.
type pyroscope struct {
	client pushv1connect.PusherServiceClient
	hc     *http.Client
}

func newPyroscope(u *url.URL, hdr http.Header, tlsCfg *tls.Config) *pyroscope {
	hc := httpClient(hdr, tlsCfg)
	base := strings.TrimSuffix(u.String(), "/")
	return &pyroscope{client: pushv1connect.NewPusherServiceClient(hc, base), hc: hc}
}

// PyroscopeRequest is the request a batch becomes (tests decode the same).
func PyroscopeRequest(b *Batch) *pushv1.PushRequest {
	req := &pushv1.PushRequest{}
	for i := range b.Series {
		s := &b.Series[i]
		ps := &pushv1.RawProfileSeries{Samples: []*pushv1.RawSample{{RawProfile: s.Raw}}}
		for _, l := range s.Labels {
			ps.Labels = append(ps.Labels, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
		}
		req.Series = append(req.Series, ps)
	}
	return req
}

func (p *pyroscope) Push(ctx context.Context, b *Batch) error {
	_, err := p.client.Push(ctx, connect.NewRequest(PyroscopeRequest(b)))
	if err == nil {
		return nil
	}
	if permanentConnect(connect.CodeOf(err)) {
		return fmt.Errorf("pyroscope push: %w: %w", ErrRejected, err)
	}
	return fmt.Errorf("pyroscope push: %w", err)
}

func (p *pyroscope) Close() error {
	p.hc.CloseIdleConnections()
	return nil
}

// permanentConnect: the codes of a request the engine will never take
// (HTTP 400, 401, 403, 404, 409, 412, 501). 429 (ResourceExhausted),
// 5xx, timeouts and Unknown (a proxy's odd answer) are retried.
func permanentConnect(c connect.Code) bool {
	switch c {
	case connect.CodeInvalidArgument, connect.CodeUnauthenticated, connect.CodePermissionDenied,
		connect.CodeNotFound, connect.CodeAlreadyExists, connect.CodeFailedPrecondition,
		connect.CodeOutOfRange, connect.CodeUnimplemented:
		return true
	}
	return false
}
