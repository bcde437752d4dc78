package web_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/web"
)

// A stalled upload is cut after the idle time, not held for the read
// timeout (1000 slow uploads were each held 15 minutes).
func TestSlowUploadCut(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.BodyIdle = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/imports HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\napp;main 1\n", strings.TrimPrefix(e.ts.URL, "http://"))
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
	}
	// Answered (an error status) or closed: either way, soon.
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a stalled upload was held %v", el)
	}
	if err == nil && resp.StatusCode < 400 {
		t.Errorf("a stalled upload answered %d", resp.StatusCode)
	}
	// The next import is served.
	resp2, b := e.do("POST", "/api/imports", strings.NewReader("app;main 1\n"), "Content-Type", "text/plain")
	if resp2.StatusCode != http.StatusCreated {
		t.Errorf("import after the stalled one: %d %s", resp2.StatusCode, b)
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := web.LimitListener(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("closing one did not let the third in")
	}
}
