package web

import (
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// A build that panics must not leave its key answered by a nil value: the
// next request builds again.
func TestLoadOnceDoesNotKeepPanics(t *testing.T) {
	l := newLoadOnce[*capture.Capture](2)
	c := &capture.Capture{}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic of the build did not reach the caller")
			}
		}()
		l.get(c, "k", func() *capture.Capture { panic("boom") })
	}()
	want := &capture.Capture{}
	if got := l.get(c, "k", func() *capture.Capture { return want }); got != want {
		t.Fatalf("after a panicked build got %p, want a new build %p", got, want)
	}
	builds := 0
	for range 3 {
		l.get(c, "k", func() *capture.Capture { builds++; return nil })
	}
	if builds != 0 {
		t.Fatalf("a kept value was built again %d times", builds)
	}
}
