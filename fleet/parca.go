package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"

	profilestorepb "github.com/parca-dev/parca/gen/proto/go/parca/profilestore/v1alpha1"
	"google.golang.org/grpc"
)

// parca pushes with Parca's ProfileStoreService/WriteRaw over gRPC (Polar
// Signals Cloud takes the same with a bearer token and a projectID header).
type parca struct {
	conn   *grpc.ClientConn
	client profilestorepb.ProfileStoreServiceClient
}

func newParca(u *url.URL, hdr http.Header, tlsCfg *tls.Config) (*parca, error) {
	conn, err := dialGRPC(u, "7070", hdr, tlsCfg)
	if err != nil {
		return nil, err
	}
	return &parca{conn: conn, client: profilestorepb.NewProfileStoreServiceClient(conn)}, nil
}

// ParcaRequest is the request a batch becomes. The profiles' mapping,
// location and function ids are already 1..n (encode renumbers them),
// which Parca requires.
func ParcaRequest(b *Batch) *profilestorepb.WriteRawRequest {
	req := &profilestorepb.WriteRawRequest{}
	for i := range b.Series {
		s := &b.Series[i]
		ls := &profilestorepb.LabelSet{}
		for _, l := range s.Labels {
			ls.Labels = append(ls.Labels, &profilestorepb.Label{Name: l.Name, Value: l.Value})
		}
		req.Series = append(req.Series, &profilestorepb.RawProfileSeries{Labels: ls,
			Samples: []*profilestorepb.RawSample{{RawProfile: s.Raw}}})
	}
	return req
}

func (p *parca) Push(ctx context.Context, b *Batch) error {
	_, err := p.client.WriteRaw(ctx, ParcaRequest(b))
	if err == nil {
		return nil
	}
	if permanentGRPC(err) {
		return fmt.Errorf("parca write: %w: %w", ErrRejected, err)
	}
	return fmt.Errorf("parca write: %w", err)
}

func (p *parca) Close() error { return p.conn.Close() }
