// Command pushsink is the agent benchmark's engine: it serves Pyroscope's
// push.v1.PusherService/Push on loopback, decodes nothing but the request,
// and counts series and bytes, printing the totals on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

type sink struct{ requests, series, bytes atomic.Int64 }

func (s *sink) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	s.requests.Add(1)
	for _, ps := range req.Msg.Series {
		s.series.Add(1)
		for _, smp := range ps.Samples {
			s.bytes.Add(int64(len(smp.RawProfile)))
		}
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func main() {
	addrFile := flag.String("addr-file", "", "write the listening address here")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := &sink{}
	path, h := pushv1connect.NewPusherServiceHandler(s)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	if *addrFile != "" {
		os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644)
	}
	go http.Serve(ln, mux)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
	fmt.Printf("requests %d series %d bytes %d\n", s.requests.Load(), s.series.Load(), s.bytes.Load())
}
