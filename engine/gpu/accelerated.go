//go:build cuda

package gpu

import (
	"fmt"

	"cohort/cuda"
	"cohort/engine/task"
	"cohort/engine/train"
)

// Accelerated drives a task's MLP on the GPU for the trainer: it is the
// train.Accelerator of `cohort train --device cuda`. The task's CPU model
// and optimizer are its host copy.
type Accelerated struct {
	m    *Model
	task *task.Task
}

var _ train.Accelerator = (*Accelerated)(nil)

// NewAccelerated copies t's model onto dev. The model must be an MLP
// (Flatten, Linear, ReLU) trained by SGD; anything else is ErrUnsupported,
// naming it.
func NewAccelerated(dev *cuda.Device, t *task.Task) (*Accelerated, error) {
	o := t.Config.Optimizer
	if o.Name != "sgd" {
		return nil, fmt.Errorf("%w: optimizer %q (on the GPU Cohort has sgd)", ErrUnsupported, o.Name)
	}
	m, err := New(dev, t.Model, Options{
		MaxBatch: max(t.TrainBatch, t.TestBatch),
		Momentum: float32(o.Momentum), WeightDecay: float32(o.WeightDecay), Nesterov: o.Nesterov,
	})
	if err != nil {
		return nil, err
	}
	return &Accelerated{m: m, task: t}, nil
}

// Close frees the device memory.
func (a *Accelerated) Close() error { return a.m.Close() }

// Train runs forward and backward of a host batch.
func (a *Accelerated) Train(x []float32, y []int32, accumulate bool) error {
	return a.m.Train(Input{X: x, Labels: y}, accumulate)
}

// Eval runs the forward pass and the loss of a host batch.
func (a *Accelerated) Eval(x []float32, y []int32) error {
	return a.m.Eval(Input{X: x, Labels: y})
}

// ReadGrad copies the flat gradient to the host.
func (a *Accelerated) ReadGrad(dst []float32) error { return a.m.ReadGrad(dst) }

// WriteGrad copies the flat gradient from the host.
func (a *Accelerated) WriteGrad(src []float32) error { return a.m.WriteGrad(src) }

// Update applies SGD.
func (a *Accelerated) Update(lr float32) error { return a.m.ApplySGD(lr) }

// Stats reads the meter sums back (waiting for the GPU).
func (a *Accelerated) Stats() (train.DeviceStats, error) {
	s, err := a.m.Stats()
	return train.DeviceStats{LossSum: s.LossSum, Correct: s.Correct, Samples: s.Samples, LastLoss: s.LastLoss}, err
}

// ToHost copies the weights and momentum buffers into the task.
func (a *Accelerated) ToHost() error {
	if err := a.m.ParamsToHost(a.task.Model); err != nil {
		return err
	}
	mom, err := a.m.MomentumState()
	if err != nil {
		return err
	}
	return a.task.Optimizer.LoadState(mom)
}

// FromHost copies the task's weights and momentum buffers to the device.
func (a *Accelerated) FromHost() error {
	if err := a.m.ParamsFromHost(a.task.Model); err != nil {
		return err
	}
	return a.m.LoadMomentum(a.task.Optimizer.State())
}
