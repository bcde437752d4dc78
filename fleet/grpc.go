package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// headerCreds sends the configured headers as gRPC metadata on every call.
type headerCreds map[string]string

func (h headerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return h, nil
}

// RequireTransportSecurity is false so that a plaintext loopback remote
// works; the command warns when a secret would cross the network in the clear.
func (h headerCreds) RequireTransportSecurity() bool { return false }

// dialGRPC connects lazily to a gRPC remote (the first push dials).
func dialGRPC(u *url.URL, defPort string, hdr http.Header, tlsCfg *tls.Config) (*grpc.ClientConn, error) {
	target, err := grpcTarget(u, defPort)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	md := make(headerCreds)
	for k, v := range hdr {
		md[strings.ToLower(k)] = strings.Join(v, ",")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64 << 20))}
	if len(md) > 0 {
		opts = append(opts, grpc.WithPerRPCCredentials(md))
	}
	conn, err := grpc.NewClient("dns:///"+target, opts...)
	if err != nil {
		return nil, fmt.Errorf("--remote %s: %w", u, err)
	}
	return conn, nil
}

// permanentGRPC: status codes of a request the engine will never take;
// Unavailable, ResourceExhausted, DeadlineExceeded, Internal, Unknown and
// Aborted are retried.
func permanentGRPC(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.NotFound,
		codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange, codes.Unimplemented:
		return true
	}
	return false
}
