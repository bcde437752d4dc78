package web

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxConnections caps the connections served at once: without a
// cap, a thousand slow uploads each held a connection (and a goroutine)
// for the 15 minutes of the read timeout.
const DefaultMaxConnections = 256

// LimitListener accepts at most n connections at once; more wait in the
// kernel's backlog until one closes.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// idleBody makes a request body fail when no byte arrives for idle: an
// upload that stalls gives its connection back instead of holding it for
// the whole read timeout. Each read pushes the connection's read deadline
// idle further.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func newIdleBody(w http.ResponseWriter, r io.Reader, idle time.Duration) io.Reader {
	b := &idleBody{r: r, rc: http.NewResponseController(w), idle: idle}
	_ = b.rc.SetReadDeadline(time.Now().Add(idle))
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}
