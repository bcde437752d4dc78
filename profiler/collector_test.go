package profiler

import (
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// Every capture type has one collector, listed in capture.Types order.
func TestCollectorTable(t *testing.T) {
	if len(collectors) != len(capture.Types) {
		t.Fatalf("%d collectors for %d capture types", len(collectors), len(capture.Types))
	}
	for i, typ := range capture.Types {
		if collectors[i].typ != typ {
			t.Errorf("collector %d is %s, want %s", i, collectors[i].typ, typ)
		}
		if collectors[i].load == nil {
			t.Errorf("collector %s has no load", typ)
		}
	}
}
