package web

import (
	"errors"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// A rendering or load that panics must not leave its key pending: the
// next request for it would wait forever.
func TestCachesRecoverFromPanic(t *testing.T) {
	rc := newRenderCache(1 << 20)
	cc := newCaptureCache(2)
	func() {
		defer func() { _ = recover() }()
		rc.get("k", func() (*rendered, error) { panic("render") })
	}()
	func() {
		defer func() { _ = recover() }()
		cc.load("id", func(string) (*capture.Capture, error) { panic("load") })
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		val, hit, err := rc.get("k", func() (*rendered, error) { return &rendered{body: []byte("x")}, nil })
		if err != nil || hit || string(val.body) != "x" {
			t.Errorf("render after a panic: %v %v %v", val, hit, err)
		}
		c, err := cc.load("id", func(string) (*capture.Capture, error) { return &capture.Capture{}, nil })
		if err != nil || c == nil {
			t.Errorf("load after a panic: %v %v", c, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a request after a panicked one hangs")
	}

	// Requests already waiting get an error, not a nil answer.
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		rc.get("p", func() (*rendered, error) { close(started); <-release; panic("render") })
	}()
	<-started
	type answer struct {
		val *rendered
		err error
	}
	waiter := make(chan answer, 1)
	go func() {
		val, _, err := rc.get("p", func() (*rendered, error) { return &rendered{body: []byte("y")}, nil })
		waiter <- answer{val, err}
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter find the pending call
	close(release)
	// A waiter that came too late renders again, which is right too.
	if a := <-waiter; !errors.Is(a.err, errAbandoned) && (a.err != nil || a.val == nil) {
		t.Errorf("waiter got %v, %v: want errAbandoned or a rendering", a.val, a.err)
	}
}
