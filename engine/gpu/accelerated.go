//go:build cuda

package gpu

import (
	"errors"
	"fmt"

	"cohort/cuda"
	"cohort/engine/task"
	"cohort/engine/train"
)

// Accelerated drives a task's model on the GPU for the trainer: it is the
// train.Accelerator of `cohort train --device cuda`. The task's CPU model
// and optimizer are its host copy.
type Accelerated struct {
	m    *Model
	task *task.Task
	// nccl and stop are set by WithNCCL: the communicator and where the
	// ranks' stop requests are summed.
	nccl *cuda.NCCLComm
	stop *stopFlag
	// normEvents order synchronised BatchNorm's NCCL sums (NCCLNormSync).
	normEvents [2]cuda.Event
}

// stopFlag is the one float the ranks' stop requests are summed in on the
// device, and its way back to the host: a pinned float the sum is copied
// into after the all-reduce, read at the next step, when the copy has
// long finished, so that the host never waits for the current one.
type stopFlag struct {
	sum  cuda.Buffer
	host cuda.Pinned
	// set fires when this rank's request is in sum, summed when the
	// all-reduce is done, read when the sum is in host.
	set, summed, read cuda.Event
	pending           bool // a sum was copied and not read yet
}

var (
	_ train.Accelerator   = (*Accelerated)(nil)
	_ train.DeviceReducer = (*NCCLAccelerated)(nil)
)

// NewAccelerated copies t's model onto dev. The model must be made of
// Linear, Conv2d, MaxPool2d, BatchNorm, GlobalAvgPool, ReLU and Flatten
// layers and residual blocks of them (engine/task's MLP without dropout,
// LeNet and ResNet) and trained by SGD; anything else is ErrUnsupported,
// naming it. bucketBytes bounds the gradient buckets NCCL averages during
// backward (Options.BucketBytes). With t.SyncBatchNorm, BatchNorm
// statistics are summed over the ranks by reduce (the process group's
// all-reduce; nil for a single process) until WithNCCL moves that to NCCL.
func NewAccelerated(dev *cuda.Device, t *task.Task, bucketBytes int, reduce func([]float32) error) (*Accelerated, error) {
	o := t.Config.Optimizer
	if o.Name != "sgd" {
		return nil, fmt.Errorf("%w: optimizer %q (on the GPU Cohort has sgd)", ErrUnsupported, o.Name)
	}
	m, err := New(dev, t.Model, Options{
		MaxBatch: max(t.TrainBatch, t.TestBatch), InputShape: t.InputShape(),
		Momentum: float32(o.Momentum), WeightDecay: float32(o.WeightDecay), Nesterov: o.Nesterov,
		BucketBytes: bucketBytes,
	})
	if err != nil {
		return nil, err
	}
	if t.SyncBatchNorm && reduce != nil {
		m.SyncBatchNorm(HostNormSync(reduce))
	}
	return &Accelerated{m: m, task: t}, nil
}

// NCCLAccelerated is an Accelerated that averages gradients over the ranks
// with NCCL on the GPU (a train.DeviceReducer).
type NCCLAccelerated struct{ *Accelerated }

// WithNCCL returns a, averaging gradients (and, with synchronised
// BatchNorm, its statistics) over c's ranks on the GPU. c must be a
// communicator of a's device; a's Close closes it.
func (a *Accelerated) WithNCCL(c *cuda.NCCLComm) (*NCCLAccelerated, error) {
	f := &stopFlag{}
	err := a.m.dev.Do(func(q *cuda.Queue) error {
		f.sum, f.host = q.Alloc(4), q.AllocPinned(4)
		f.set, f.summed, f.read = q.NewEvent(), q.NewEvent(), q.NewHostEvent()
		a.normEvents = [2]cuda.Event{q.NewEvent(), q.NewEvent()}
		return nil
	})
	a.stop = f // Close frees what was made
	if err != nil {
		return nil, fmt.Errorf("gpu: nccl stop flag: %w", err)
	}
	a.nccl = c
	if a.task.SyncBatchNorm {
		a.m.SyncBatchNorm(NCCLNormSync(c, a.normEvents[0], a.normEvents[1]))
	}
	return &NCCLAccelerated{a}, nil
}

// TrainReduce runs forward and backward of a batch with the gradient
// averaged over the ranks during the backward pass (Model.TrainReduce),
// then sums the ranks' stop requests; it returns the sum of the previous
// call (see train.DeviceReducer), which is why it never waits for the GPU.
func (a *NCCLAccelerated) TrainReduce(x []float32, y []int32, stop bool) (bool, error) {
	if err := a.m.TrainReduce(Input{X: x, Labels: y}, a.nccl); err != nil {
		return false, err
	}
	f, before, ask := a.stop, false, float32(0)
	if stop {
		ask = 1
	}
	err := a.m.dev.Do(func(q *cuda.Queue) error {
		if f.pending {
			q.HostWait(f.read)
			before = q.Err() == nil && cuda.Host[float32](f.host)[0] > 0
		}
		q.Fill(f.sum, ask)
		sumInOrder(q, a.nccl, f.sum, f.set, f.summed)
		q.DownloadAsync(f.host, f.sum, f.read)
		f.pending = true
		return q.Err()
	})
	if err != nil {
		return false, fmt.Errorf("gpu: nccl all-reduce of the stop requests: %w", err)
	}
	return before, nil
}

// Close frees the device memory (and the NCCL communicator, if any).
func (a *Accelerated) Close() error {
	var errs []error
	if a.nccl != nil {
		errs = append(errs, a.nccl.Close())
	}
	if f := a.stop; f != nil {
		errs = append(errs, a.m.dev.Do(func(q *cuda.Queue) error {
			q.Free(f.sum)
			q.FreePinned(f.host)
			for _, e := range []cuda.Event{f.set, f.summed, f.read, a.normEvents[0], a.normEvents[1]} {
				q.FreeEvent(e)
			}
			return nil
		}))
	}
	return errors.Join(append(errs, a.m.Close())...)
}

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

// ToHost copies the weights, the model's buffers (BatchNorm's running
// statistics) and the momentum buffers into the task.
func (a *Accelerated) ToHost() error {
	if err := a.m.ParamsToHost(a.task.Model); err != nil {
		return err
	}
	if err := a.m.BuffersToHost(a.task.Model); err != nil {
		return err
	}
	mom, err := a.m.MomentumState()
	if err != nil {
		return err
	}
	return a.task.Optimizer.LoadState(mom)
}

// FromHost copies the task's weights, model buffers and momentum buffers
// to the device.
func (a *Accelerated) FromHost() error {
	if err := a.m.ParamsFromHost(a.task.Model); err != nil {
		return err
	}
	if err := a.m.BuffersFromHost(a.task.Model); err != nil {
		return err
	}
	return a.m.LoadMomentum(a.task.Optimizer.State())
}
