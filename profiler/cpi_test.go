package profiler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// On a host without hardware counters (this VM) a CPI capture fails with
// ErrUnavailable and says why, and the capabilities say the same.
func TestCPIWithoutPMU(t *testing.T) {
	testutil.RequireRoot(t)
	caps := profiler.Capabilities(context.Background())
	if caps.PMU {
		t.Skip("this host has a hardware PMU: the no-PMU answer cannot be checked here")
	}
	_, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPI, Duration: capture.Duration(time.Second)}, profiler.Options{})
	if !errors.Is(err, profiler.ErrUnavailable) {
		t.Fatalf("cpi capture: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "no hardware PMU") {
		t.Errorf("cpi error %q does not say there is no hardware PMU", err)
	}
	col := caps.Collectors["cpi"]
	if col.Available || !strings.Contains(col.Reason, "no hardware PMU") {
		t.Errorf("capabilities say cpi %+v, want unavailable with the no-PMU reason", col)
	}
	for _, name := range []string{"mem", "event"} {
		if c := caps.Collectors[name]; !c.Available {
			t.Errorf("collector %s unavailable: %s", name, c.Reason)
		}
	}
}
