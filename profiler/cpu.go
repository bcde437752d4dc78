package profiler

import (
	"context"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

func init() { collectors[capture.CPU] = recordCPU }

// recordCPU samples stacks with a cpu-clock perf event on every CPU.
func recordCPU(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	return recordSampler(ctx, p, mode, opts, softwareEvents[0], nil)
}
