//go:build cuda

package main

import (
	"fmt"

	"cohort/cuda"
	"cohort/dist"
	"cohort/engine/gpu"
	"cohort/engine/task"
	"cohort/engine/train"
)

// openAccelerator puts the task's model on this rank's GPU: local rank r
// takes visible device r mod count, as torchrun's users expect (the
// launcher gives each worker its own CUDA_VISIBLE_DEVICES when there are
// enough GPUs, so that is device 0; ranks beyond the GPU count share).
func openAccelerator(t *task.Task, env dist.Env, tf32 bool) (train.Accelerator, string, func(), error) {
	devs, err := cuda.Devices()
	if err != nil {
		return nil, "", nil, err
	}
	if len(devs) == 0 {
		return nil, "", nil, fmt.Errorf("%w: --device cuda: no GPU visible (check CUDA_VISIBLE_DEVICES and nvidia-smi)", errUsage)
	}
	ordinal := env.LocalRank % len(devs)
	dev, err := cuda.Open(ordinal, cuda.Options{TF32: tf32})
	if err != nil {
		return nil, "", nil, err
	}
	a, err := gpu.NewAccelerated(dev, t)
	if err != nil {
		dev.Close()
		return nil, "", nil, fmt.Errorf("%w: --device cuda: %w", errUsage, err)
	}
	closeAll := func() {
		a.Close()
		dev.Close()
	}
	return a, fmt.Sprintf("cuda:%d (%s)", ordinal, devs[ordinal].Name), closeAll, nil
}
