//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"cohort/cuda"
	"cohort/engine/nn"
)

// Model is a network of Linear, Conv2d, MaxPool2d, BatchNorm,
// GlobalAvgPool and ReLU layers and residual blocks on one GPU. Its
// methods are not safe for concurrent use (a trainer drives it from one
// goroutine); each is one call onto the device's thread.
type Model struct {
	dev      *cuda.Device
	layers   []layerSpec
	bufs     []layerBufs // per layer
	sched    schedule    // the backward pass
	buckets  bucketPlan  // the gradient's pieces for TrainReduce
	slots    []Slot      // parameters
	states   []Slot      // buffers (BatchNorm's running statistics)
	inSize   int
	nparams  int
	nstate   int
	classes  int
	maxBatch int
	opt      Options
	samples  int // since the last Stats
	// trace, when set (by the throughput benchmark), is called after each
	// layer's forward and backward pass with what just ran.
	trace func(q *cuda.Queue, layer int, pass string)

	// Device buffers, touched only inside dev.Do.
	params, grads, momentum cuda.Buffer   // momentum is zero without momentum
	state                   cuda.Buffer   // the buffers area; zero without buffers
	vals                    []cuda.Buffer // activations; vals[0] is the batch being run
	gslots                  []cuda.Buffer // gradients of activations (schedule's slots)
	inputs                  *inputRing    // the way of host batches
	// bucketEvents are each gradient bucket's: ready when backward has
	// written it, done when NCCL has averaged it (TrainReduce).
	bucketEvents  []struct{ ready, done cuda.Event }
	loss, correct cuda.Buffer   // per sample
	stats         cuda.Buffer   // cuda.StatsLen float64s
	owned         []cuda.Buffer // everything above and in bufs, for Close
}

// New copies model's layers (sizes, initial weights and buffers, names)
// onto dev and sizes every buffer for batches of up to o.MaxBatch samples
// of shape o.InputShape. The CPU model is only read; ParamsToHost and
// BuffersToHost write back into it (or into another model built the same
// way).
func New(dev *cuda.Device, model *nn.Sequential, o Options) (*Model, error) {
	if o.MaxBatch <= 0 {
		return nil, fmt.Errorf("%w: MaxBatch %d", ErrInput, o.MaxBatch)
	}
	for _, h := range []float32{o.Momentum, o.WeightDecay} {
		if f := float64(h); math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return nil, fmt.Errorf("%w: momentum %v and weight decay %v must be finite and >= 0", ErrInput, o.Momentum, o.WeightDecay)
		}
	}
	if o.Nesterov && o.Momentum == 0 {
		return nil, fmt.Errorf("%w: nesterov momentum requires momentum > 0", ErrInput)
	}
	net, err := plan(model, o.InputShape...)
	if err != nil {
		return nil, err
	}
	last := net.layers[len(net.layers)-1]
	m := &Model{dev: dev, layers: net.layers, sched: newSchedule(net), slots: net.slots, states: net.buffers,
		inSize: net.values[0], classes: last.Out, maxBatch: o.MaxBatch, opt: o}
	rest := o.BucketBytes
	if rest <= 0 {
		rest = bucketBytes
	}
	m.buckets = planBuckets(m.layers, m.sched, m.slots, min(firstBucketBytes, rest), rest)
	for _, s := range m.slots {
		m.nparams += s.Len
	}
	for _, s := range m.states {
		m.nstate += s.Len
	}
	widest, work := 0, 0
	for _, v := range net.values {
		widest = max(widest, v)
	}
	for i := range m.layers {
		work = max(work, m.layers[i].workLen(o.MaxBatch))
	}
	err = dev.Do(func(q *cuda.Queue) error {
		alloc := func(values int) cuda.Buffer {
			if values == 0 {
				return cuda.Buffer{}
			}
			b := q.Alloc(4 * int64(values))
			m.owned = append(m.owned, b)
			return b
		}
		m.params, m.grads, m.state = alloc(m.nparams), alloc(m.nparams), alloc(m.nstate)
		q.Fill(m.grads, 0)
		if o.Momentum != 0 {
			m.momentum = alloc(m.nparams)
			q.Fill(m.momentum, 0)
		}
		shared := alloc(work)
		for i := range m.layers {
			m.bufs = append(m.bufs, m.layers[i].allocBufs(o.MaxBatch, shared, alloc))
		}
		m.vals = make([]cuda.Buffer, len(net.values))
		for v := 1; v < len(net.values); v++ {
			m.vals[v] = alloc(o.MaxBatch * net.values[v])
		}
		for range m.sched.slots {
			m.gslots = append(m.gslots, alloc(o.MaxBatch*widest))
		}
		m.inputs = newInputRing(q, o.MaxBatch, m.inSize, alloc)
		m.bucketEvents = make([]struct{ ready, done cuda.Event }, len(m.buckets.ranges))
		for i := range m.bucketEvents {
			m.bucketEvents[i].ready, m.bucketEvents[i].done = q.NewEvent(), q.NewEvent()
		}
		m.loss, m.correct = alloc(o.MaxBatch), alloc(o.MaxBatch)
		m.stats = alloc(2 * cuda.StatsLen) // float64s
		q.Fill(m.stats, 0)
		if err := q.Err(); err != nil {
			return err // no views of buffers that were not made
		}
		// NaN in the work buffers turns a read of values no operation
		// wrote (a batch-size mix-up) into a NaN loss, where fresh memory,
		// often zero, would add nothing to a gradient and go unnoticed.
		in := m.inputs.slots
		for _, b := range append(append([]cuda.Buffer{in[0].x, in[1].x, m.loss, shared}, m.vals[1:]...), m.gslots...) {
			q.Poison(b)
		}
		for _, b := range m.bufs {
			q.Poison(b.cols)
			q.Poison(b.stats)
		}
		m.writeParams(q, net.params)
		m.writeBuffers(q, net.bufs)
		return q.Sync()
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("gpu: new model: %w", err), m.Close())
	}
	return m, nil
}

// Close gives the model's device memory back to the device's pool.
func (m *Model) Close() error {
	owned, inputs, events := m.owned, m.inputs, m.bucketEvents
	m.owned, m.inputs, m.bucketEvents = nil, nil, nil
	return m.dev.Do(func(q *cuda.Queue) error {
		// The pool hands freed buffers to later work on the compute
		// stream only; the copy and communication streams may still
		// be writing some of these.
		if err := q.SyncAll(); err != nil {
			return err
		}
		if inputs != nil {
			inputs.free(q)
		}
		for _, e := range events {
			q.FreeEvent(e.ready)
			q.FreeEvent(e.done)
		}
		for _, b := range owned {
			q.Free(b)
		}
		return nil
	})
}

// Layout lists where each parameter lives in the flat buffers.
func (m *Model) Layout() []Slot { return cloneSlots(m.slots) }

// BufferLayout lists where each buffer (BatchNorm's running_mean,
// running_var and num_batches_tracked) lives in the flat buffers area, in
// nn.Buffers order.
func (m *Model) BufferLayout() []Slot { return cloneSlots(m.states) }

// NumParams is the length of the flat parameter and gradient buffers.
func (m *Model) NumParams() int { return m.nparams }

// InputSize is the number of float32s per sample.
func (m *Model) InputSize() int { return m.inSize }

// Classes is the number of logits per sample.
func (m *Model) Classes() int { return m.classes }

// view is slot s of a flat buffer.
func view(b cuda.Buffer, s Slot) cuda.Buffer { return cuda.Sub[float32](b, s.Offset, s.Len) }

// SyncBatchNorm makes every BatchNorm's training statistics those of all
// ranks' batches (ClassyVision's batch_norm_sync_mode: pytorch): sync
// sums 2C+1 floats over the ranks, in place, as cuda.BatchNorm.Sync
// describes; nil turns it off. Every rank must set the same.
func (m *Model) SyncBatchNorm(sync func(q *cuda.Queue, totals cuda.Buffer)) {
	for i := range m.layers {
		if m.layers[i].Kind == normLayer {
			m.bufs[i].sync = sync
		}
	}
}

// HostNormSync is a SyncBatchNorm function that sums on the host with
// reduce (an all-reduce over the process group, such as the TCP ring's):
// the totals are copied to the host, reduced and copied back, which waits
// for the GPU twice per BatchNorm pass.
func HostNormSync(reduce func([]float32) error) func(q *cuda.Queue, totals cuda.Buffer) {
	var host []float32
	return func(q *cuda.Queue, totals cuda.Buffer) {
		host = slices.Grow(host[:0], cuda.Len[float32](totals))[:cuda.Len[float32](totals)]
		cuda.Download(q, host, totals)
		if q.Err() != nil {
			return
		}
		if err := reduce(host); err != nil {
			q.Fail(fmt.Errorf("gpu: synchronised batchnorm: %w", err))
			return
		}
		cuda.Upload(q, totals, host)
	}
}

// NCCLNormSync is a SyncBatchNorm function that sums with c on the
// communication stream (sumInOrder), using two events of the caller's.
func NCCLNormSync(c *cuda.NCCLComm, ready, done cuda.Event) func(q *cuda.Queue, totals cuda.Buffer) {
	return func(q *cuda.Queue, totals cuda.Buffer) { sumInOrder(q, c, totals, ready, done) }
}

// sumInOrder sums buf over c's ranks on the communication stream, after
// the collectives already handed to it (the gradient buckets), so that
// the communicator's collectives keep one order, and makes the compute
// stream wait for the sum. ready and done are the caller's events.
func sumInOrder(q *cuda.Queue, c *cuda.NCCLComm, buf cuda.Buffer, ready, done cuda.Event) {
	q.Record(ready)
	c.AllReduceSumAside(q, buf, ready, done)
	q.Wait(done)
}
