package train

import (
	"errors"
	"fmt"
	"slices"

	"cohort/engine/meter"
	"cohort/engine/task"
)

// Accelerator runs a task's model on a device (engine/gpu, under the cuda
// build tag) instead of its CPU layers. The trainer keeps everything else:
// data, the LR schedule, gradient all-reduce, stop agreement, meters and
// checkpoints. The task's CPU model and optimizer are the host copy of the
// device's weights and optimizer state, brought up to date (ToHost) at
// every phase end and before a preemption checkpoint, and sent down
// (FromHost) after a restore and rank 0's broadcast.
type Accelerator interface {
	// Train runs forward, loss and backward of a micro-batch, replacing
	// the device's flat gradient, or adding to it when accumulate is set.
	Train(x []float32, y []int32, accumulate bool) error
	// Eval runs the forward pass and the loss of a batch.
	Eval(x []float32, y []int32) error
	// ReadGrad and WriteGrad copy the flat gradient to and from the host.
	// Its layout is the trainer's gradient buckets': the last layer first,
	// each layer's params last first.
	ReadGrad(dst []float32) error
	WriteGrad(src []float32) error
	// Update applies the optimizer to the gradient with learning rate lr.
	Update(lr float32) error
	// Stats returns the sums since its last call: the samples' losses,
	// how many were classified right (top-1) and how many there were, and
	// the last batch's mean loss.
	Stats() (DeviceStats, error)
	// ToHost copies the weights and optimizer state into the task's model
	// and optimizer; FromHost copies them to the device.
	ToHost() error
	FromHost() error
}

// DeviceReducer is an Accelerator that averages its gradient over the
// ranks on the device itself (NCCL), overlapped with the backward pass,
// instead of through host buffers and the trainer's Comm.
type DeviceReducer interface {
	// TrainReduce is Train of a whole batch (no accumulation) with the
	// gradient replaced by its mean over the ranks, and the ranks' stop
	// requests summed alongside (stop is this rank's). So that the host
	// need not wait for the device, the answer it returns is the previous
	// call's sum: whether any rank asked to stop one update earlier (false
	// at the first call). Every rank makes the same calls, so all get the
	// same answer at the same update.
	TrainReduce(x []float32, y []int32, stop bool) (stoppedBefore bool, err error)
}

// DeviceStats are an Accelerator's meter sums.
type DeviceStats struct {
	LossSum, Correct float64
	Samples          int
	LastLoss         float64
}

// ErrAccelerator marks a task the accelerated trainer cannot run.
var ErrAccelerator = errors.New("train: not supported on the accelerator")

// CheckAccelerable refuses a task whose meters an Accelerator cannot feed
// (it counts top-1 accuracy only); callers can ask before opening a device.
func CheckAccelerable(t *task.Task) error {
	if len(t.TopK) > 0 && !slices.Equal(t.TopK, []int{1}) {
		return fmt.Errorf("%w: on the GPU the accuracy meter counts top-1 only; set meters.accuracy.topk: [1]", ErrAccelerator)
	}
	return nil
}

// accelTrainStep is trainStep on the device. A DeviceReducer averages a
// single micro-batch's gradient itself; otherwise every rank reads its
// gradient back, all-reduces it through the buckets (and the stop flag
// with it), scales accumulated micro-batches and writes it back before the
// update.
func (tr *Trainer) accelTrainStep(x []float32, y []int32, micro int, last bool) error {
	tr.stopAgreed = false
	if r, ok := tr.accel.(DeviceReducer); ok && micro == 0 && last {
		stop, err := r.TrainReduce(x, y, tr.stop.Load())
		if err != nil {
			return err
		}
		tr.stopAgreed = stop
	} else {
		if err := tr.accel.Train(x, y, micro > 0); err != nil {
			return err
		}
		if last {
			if err := tr.hostReduce(micro + 1); err != nil {
				return err
			}
		}
	}
	if last {
		if err := tr.accelApply(); err != nil {
			return err
		}
	}
	return tr.meterDeviceIfDue()
}

// hostReduce averages the device's gradient of n micro-batches over the
// ranks through host memory and the trainer's Comm, agreeing on stop
// requests alongside.
func (tr *Trainer) hostReduce(n int) error {
	s := &tr.state
	tr.stopAgreed = tr.stop.Load()
	if s.World == 1 && n == 1 {
		return nil
	}
	grad := tr.grads.flat[:len(tr.grads.flat)-1] // the last float is the stop flag
	if err := tr.accel.ReadGrad(grad); err != nil {
		return err
	}
	if s.World > 1 {
		tr.grads.setStop(tr.stop.Load())
		tr.grads.start()
		for i := range tr.layers {
			tr.grads.ready(i)
		}
		if err := tr.grads.wait(); err != nil {
			return err
		}
		tr.stopAgreed = tr.grads.stopRequested()
	}
	if n > 1 {
		tr.grads.scale(1 / float32(n))
	}
	return tr.accel.WriteGrad(grad)
}

// accelApply applies the optimizer with the schedule's learning rate.
func (tr *Trainer) accelApply() error {
	s := &tr.state
	s.LR = tr.lrAt(s.NumUpdates)
	if err := tr.accel.Update(float32(s.LR)); err != nil {
		return err
	}
	s.NumUpdates++
	return nil
}

// accelTestStep is testStep on the device.
func (tr *Trainer) accelTestStep(x []float32, y []int32) error {
	if err := tr.accel.Eval(x, y); err != nil {
		return err
	}
	return tr.meterDeviceIfDue()
}

// meterDeviceIfDue reads the device's sums every readEvery steps, at the
// phase's last step and before a preemption (see
// Options.DeviceReadEvery).
func (tr *Trainer) meterDeviceIfDue() error {
	s := &tr.state
	if tr.readEvery <= 1 || (s.Step+1)%tr.readEvery == 0 || s.Step == s.Steps-1 || tr.stopAgreed {
		return tr.meterDevice()
	}
	return nil
}

// meterDevice adds the device's sums to the phase's meters (loss and top-1
// accuracy, whose states are [sum, count] and [correct, count]).
func (tr *Trainer) meterDevice() error {
	st, err := tr.accel.Stats()
	if err != nil {
		return err
	}
	loss := float32(st.LastLoss)
	for _, l := range []float32{loss, float32(st.LossSum)} {
		// The sum also catches a non-finite loss of a step not read.
		if err := tr.checkFinite(l); err != nil {
			return err
		}
	}
	tr.state.Loss = loss
	for _, m := range tr.state.Meters {
		state := m.State()
		switch m.(type) {
		case *meter.Loss:
			state[0] += float32(st.LossSum)
		case *meter.Accuracy:
			state[0] += float32(st.Correct)
		}
		state[len(state)-1] += float32(st.Samples)
		m.SetState(state)
	}
	return nil
}

// syncHost brings the host copy of an accelerated model up to date, for
// the hooks that checkpoint it.
func (tr *Trainer) syncHost() error {
	if tr.accel == nil {
		return nil
	}
	if err := tr.accel.ToHost(); err != nil {
		return fmt.Errorf("weights from the device: %w", err)
	}
	return nil
}

// syncDevice sends the host copy of an accelerated model (weights,
// optimizer state, buffers) to the device, after a restore or a broadcast.
func (tr *Trainer) syncDevice() error {
	if tr.accel == nil {
		return nil
	}
	if err := tr.accel.FromHost(); err != nil {
		return fmt.Errorf("weights to the device: %w", err)
	}
	return nil
}
