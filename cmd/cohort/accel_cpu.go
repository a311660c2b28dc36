//go:build !cuda

package main

import (
	"fmt"

	"cohort/cuda"
	"cohort/dist"
	"cohort/engine/task"
	"cohort/engine/train"
)

// openAccelerator is unreachable without the cuda tag (checkDevice refuses
// --device cuda first); it says so rather than training on the CPU.
func openAccelerator(*task.Task, dist.Env, bool, string, int, train.Comm) (train.Accelerator, string, func(), error) {
	return nil, "", nil, fmt.Errorf("%w: --device cuda: %w", errUsage, cuda.ErrNotBuilt)
}
