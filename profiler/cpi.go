package profiler

import (
	"context"
	"fmt"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

func init() {
	collectors[capture.CPI] = recordCPI
	probes["cpi"] = probeCPI
}

// recordCPI needs the cycles and instructions counters of a hardware PMU.
// Without one (most VMs) it fails with ErrUnavailable and the reason; with
// one, this version of scorch does not pair the counters yet, and says so
// rather than sampling something else.
func recordCPI(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	if err := probeCPI(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil, fmt.Errorf("%w: cpi recording is not implemented in this version of scorch (the PMU is present: use --type event --event cycles or instructions)", ErrUnavailable)
}

// probeCPI checks for the hardware counters CPI needs.
func probeCPI(ctx context.Context) error {
	if ok, reason := probePMU(); !ok {
		return fmt.Errorf("%s", reason)
	}
	return fmt.Errorf("cpi recording is not implemented in this version of scorch")
}
