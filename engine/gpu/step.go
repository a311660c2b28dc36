//go:build cuda

package gpu

import (
	"fmt"

	"cohort/cuda"
)

// Input is one batch: host slices (X holds N×InputSize float32s, Labels N
// class indices), or, when DevX is not the zero Buffer, N samples already
// on the device in DevX and DevLabels (int32), which the caller made with
// the same Device and keeps valid; device labels are not range-checked.
type Input struct {
	X      []float32
	Labels []int32

	DevX, DevLabels cuda.Buffer
	N               int
}

// batch checks in and returns its size.
func (m *Model) batch(in Input) (int, error) {
	n := in.N
	if in.DevX.IsZero() {
		n = len(in.Labels)
		if len(in.X) != n*m.InputSize() {
			return 0, fmt.Errorf("%w: %d input values for %d labels of %d features", ErrInput, len(in.X), n, m.InputSize())
		}
		for i, y := range in.Labels {
			if y < 0 || int(y) >= m.classes {
				return 0, fmt.Errorf("%w: label %d at index %d not in [0, %d)", ErrInput, y, i, m.classes)
			}
		}
	} else if cuda.Len[float32](in.DevX) < n*m.InputSize() || cuda.Len[int32](in.DevLabels) < n {
		return 0, fmt.Errorf("%w: device batch of %d samples does not fit its buffers", ErrInput, n)
	}
	if n < 1 || n > m.maxBatch {
		return 0, fmt.Errorf("%w: batch of %d samples (1 to %d)", ErrInput, n, m.maxBatch)
	}
	return n, nil
}

// stage returns in's device buffers, sending a host batch through the
// input ring first, and the ring slot used (nil for a device batch).
func (m *Model) stage(q *cuda.Queue, in Input) (x, labels cuda.Buffer, slot *inputSlot) {
	if !in.DevX.IsZero() {
		return in.DevX, in.DevLabels, nil
	}
	slot = m.inputs.send(q, in.X, in.Labels)
	return slot.x, slot.labels, slot
}

// Train runs forward, loss and backward on a batch, leaving the gradient
// of the mean loss in the flat gradient buffer: replacing it, or added to
// it when accumulate is set (micro-batches). Nothing waits for the GPU: a
// host batch is uploaded from pinned memory on the copy stream, and the
// host waits only when it is two batches ahead of those copies.
func (m *Model) Train(in Input, accumulate bool) error {
	return m.run("train", in, func(q *cuda.Queue, x, labels cuda.Buffer, n int) {
		m.forward(q, x, labels, n, true)
		m.backward(q, x, n, accumulate, nil)
	})
}

// TrainReduce is Train (replacing the gradient) with the gradient
// averaged over c's ranks while it is computed, as DDP does: each bucket
// of the flat gradient (buckets.go) goes to NCCL on the communication
// stream as soon as the backward pass has written it, and the compute
// stream waits for the last one before any later work. Every rank must
// make the same calls.
func (m *Model) TrainReduce(in Input, c *cuda.NCCLComm) error {
	return m.run("train", in, func(q *cuda.Queue, x, labels cuda.Buffer, n int) {
		m.forward(q, x, labels, n, true)
		last := -1
		m.backward(q, x, n, false, func(step int) {
			for _, b := range m.buckets.ready[step] {
				r, ev := m.buckets.ranges[b], m.bucketEvents[b]
				q.Record(ev.ready)
				c.AllReduceAvgAside(q, cuda.Sub[float32](m.grads, r[0], r[1]), ev.ready, ev.done)
				last = b
			}
		})
		// The communication stream runs the buckets in order: the last
		// one done means all are.
		if last >= 0 {
			q.Wait(m.bucketEvents[last].done)
		}
	})
}

// Step is Train (replacing the gradient) then ApplySGD, in one device
// call: a whole single-rank training step.
func (m *Model) Step(in Input, lr float32) error {
	return m.run("step", in, func(q *cuda.Queue, x, labels cuda.Buffer, n int) {
		m.forward(q, x, labels, n, true)
		m.backward(q, x, n, false, nil)
		m.sgd(q, lr)
	})
}

// Eval runs forward and the loss only, adding to Stats.
func (m *Model) Eval(in Input) error {
	return m.run("eval", in, func(q *cuda.Queue, x, labels cuda.Buffer, n int) {
		m.forward(q, x, labels, n, false)
	})
}

// ApplySGD updates the parameters from the flat gradient buffer with
// learning rate lr.
func (m *Model) ApplySGD(lr float32) error {
	if err := m.dev.Do(func(q *cuda.Queue) error { m.sgd(q, lr); return nil }); err != nil {
		return fmt.Errorf("gpu: sgd: %w", err)
	}
	return nil
}

func (m *Model) run(what string, in Input, f func(q *cuda.Queue, x, labels cuda.Buffer, n int)) error {
	n, err := m.batch(in)
	if err != nil {
		return err
	}
	err = m.dev.Do(func(q *cuda.Queue) error {
		x, labels, slot := m.stage(q, in)
		f(q, x, labels, n)
		if slot != nil {
			q.Record(slot.consumed)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gpu: %s: %w", what, err)
	}
	m.samples += n
	return nil
}

// forward computes every layer's output and the loss statistics, in
// training (train: BatchNorm uses and updates batch statistics) also the
// gradient of the mean loss with respect to the logits, into the
// schedule's loss slot.
func (m *Model) forward(q *cuda.Queue, x, labels cuda.Buffer, n int, train bool) {
	m.vals[0] = x
	for i := range m.layers {
		m.layers[i].forward(q, m.bufs[i], m.params, m.state, m.vals, n, train)
		m.traced(q, i, "forward")
	}
	var dlogits cuda.Buffer
	if train {
		dlogits = m.gslots[m.sched.loss]
	}
	logits := m.vals[m.layers[len(m.layers)-1].dst]
	q.SoftmaxXent(logits, labels, dlogits, m.loss, m.correct, n, m.classes, 1/float32(n))
	q.LossReduce(m.loss, m.correct, m.stats, n)
	m.traced(q, len(m.layers), "loss")
}

// backward runs the schedule from the loss slot (dL/dlogits) down to the
// first layer with parameters, whose input gradient is never computed
// (the input is data), as the CPU's Sequential.SkipInputGrad. done, when
// set, is called after each step's work is enqueued, with its index.
func (m *Model) backward(q *cuda.Queue, x cuda.Buffer, n int, accumulate bool, done func(step int)) {
	m.vals[0] = x
	slot := func(i int) cuda.Buffer {
		if i < 0 {
			return cuda.Buffer{}
		}
		return m.gslots[i]
	}
	for i, s := range m.sched.steps {
		l := &m.layers[s.layer]
		switch s.kind {
		case maskStep:
			q.ReLUBackward(slot(s.dx), slot(s.dy), m.vals[l.dst], n*l.Out)
		case layerStep:
			l.backward(q, m.bufs[s.layer], m.params, m.grads, m.vals, slot(s.dy), slot(s.dx), n, accumulate)
			m.traced(q, s.layer, "backward")
		case sumStep:
			q.AddAct(slot(s.dx), slot(s.a), slot(s.b), n*s.size, false)
		}
		if done != nil {
			done(i)
		}
	}
}

// traced calls m.trace, if set, after a layer's pass.
func (m *Model) traced(q *cuda.Queue, layer int, pass string) {
	if m.trace != nil {
		m.trace(q, layer, pass)
	}
}

func (m *Model) sgd(q *cuda.Queue, lr float32) {
	q.SGD(m.params, m.grads, m.momentum, m.nparams, lr, m.opt.Momentum, m.opt.WeightDecay, m.opt.Nesterov)
}

// Sync waits for the GPU and reports errors of earlier asynchronous work.
func (m *Model) Sync() error {
	return m.dev.Do(func(q *cuda.Queue) error { return q.Sync() })
}

// Stats returns the loss and accuracy sums since the last call (or New)
// and starts new sums. It waits for the GPU.
func (m *Model) Stats() (Stats, error) {
	var s [cuda.StatsLen]float64
	err := m.dev.Do(func(q *cuda.Queue) error {
		cuda.Download(q, s[:], m.stats)
		q.Fill(cuda.Sub[float64](m.stats, 1, cuda.StatsLen-1), 0)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("gpu: stats: %w", err)
	}
	out := Stats{LastLoss: s[0], LossSum: s[1], Correct: s[2], Samples: m.samples}
	m.samples = 0
	return out, nil
}
