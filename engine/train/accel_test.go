package train

import (
	"slices"
	"sync"
	"testing"

	"cohort/engine/meter"
	"cohort/engine/nn"
	"cohort/engine/task"
	"cohort/engine/tensor"
)

// cpuAccel is an Accelerator whose "device" is a second copy of the task
// built on the CPU: the same operations as the trainer's CPU path, so an
// accelerated run must end bit-identical to a plain one. It checks the
// trainer's side of the contract (host/device syncs, gradient layout,
// all-reduce, accumulation, meters) without a GPU.
type cpuAccel struct {
	host, dev *task.Task
	acc       *meter.Accuracy
	lossSum   float64
	samples   int
	last      float32
}

func newCPUAccel(host, dev *task.Task) *cpuAccel {
	acc, _ := meter.NewAccuracy([]int{1})
	return &cpuAccel{host: host, dev: dev, acc: acc}
}

// gradOrder is the bucket layout: last layer first, its params last first.
func gradOrder(m *nn.Sequential) []*nn.Param {
	var ps []*nn.Param
	for i := len(m.Layers) - 1; i >= 0; i-- {
		lp := m.Layers[i].Params()
		for j := len(lp) - 1; j >= 0; j-- {
			ps = append(ps, lp[j])
		}
	}
	return ps
}

func (a *cpuAccel) forward(x []float32, y []int32, train bool) (float32, error) {
	in := tensor.FromData(x, append([]int{len(y)}, a.dev.Train.SampleShape()...)...)
	logits := a.dev.Model.Forward(in, nn.Pass{Train: train})
	loss, err := a.dev.Loss.Forward(logits, y)
	a.acc.Update(logits, y, loss)
	a.lossSum += float64(loss) * float64(len(y))
	a.samples += len(y)
	a.last = loss
	return loss, err
}

func (a *cpuAccel) Train(x []float32, y []int32, accumulate bool) error {
	if !accumulate {
		for _, p := range a.dev.Model.Params() {
			p.Grad.Zero()
		}
	}
	if _, err := a.forward(x, y, true); err != nil {
		return err
	}
	a.dev.Model.Backward(a.dev.Loss.Backward())
	return nil
}

func (a *cpuAccel) Eval(x []float32, y []int32) error {
	_, err := a.forward(x, y, false)
	return err
}

func (a *cpuAccel) ReadGrad(dst []float32) error {
	off := 0
	for _, p := range gradOrder(a.dev.Model) {
		off += copy(dst[off:], p.Grad.Data)
	}
	return nil
}

func (a *cpuAccel) WriteGrad(src []float32) error {
	off := 0
	for _, p := range gradOrder(a.dev.Model) {
		off += copy(p.Grad.Data, src[off:])
	}
	return nil
}

func (a *cpuAccel) Update(lr float32) error { a.dev.Optimizer.Step(lr); return nil }

func (a *cpuAccel) Stats() (DeviceStats, error) {
	st := DeviceStats{LossSum: a.lossSum, Correct: float64(a.acc.State()[0]), Samples: a.samples, LastLoss: float64(a.last)}
	a.acc.Reset()
	a.lossSum, a.samples = 0, 0
	return st, nil
}

func copyState(dst, src *task.Task) error {
	dstState := append(dst.Model.Params(), nn.Buffers(dst.Model)...)
	for i, p := range append(src.Model.Params(), nn.Buffers(src.Model)...) {
		copy(dstState[i].Value.Data, p.Value.Data)
	}
	return dst.Optimizer.LoadState(src.Optimizer.State())
}

func (a *cpuAccel) ToHost() error   { return copyState(a.host, a.dev) }
func (a *cpuAccel) FromHost() error { return copyState(a.dev, a.host) }

// reducingAccel is a cpuAccel that averages its gradient itself, over its
// own process group, as an NCCL-backed accelerator does on the device.
type reducingAccel struct {
	*cpuAccel
	comm Comm
}

func (a *reducingAccel) AllReduceGrad(stop bool) (bool, error) {
	var grad []float32
	for _, p := range gradOrder(a.dev.Model) {
		grad = append(grad, p.Grad.Data...)
	}
	if err := a.comm.AllReduceMean(grad); err != nil {
		return false, err
	}
	flag := []float32{0}
	if stop {
		flag[0] = 1
	}
	if err := a.comm.AllReduceMax(flag); err != nil {
		return false, err
	}
	return flag[0] > 0, a.WriteGrad(grad)
}

// memComm is an in-process process group: ranks are goroutines, and every
// collective combines the ranks' buffers in rank order, so all ranks get
// identical bytes, as the TCP ring guarantees.
type memComm struct {
	rank int
	g    *memGroup
}

type memGroup struct {
	size    int
	mu      sync.Mutex
	cond    *sync.Cond
	bufs    [][]float32
	arrived int
	round   int
}

func newMemGroup(size int) []*memComm {
	g := &memGroup{size: size, bufs: make([][]float32, size)}
	g.cond = sync.NewCond(&g.mu)
	cs := make([]*memComm, size)
	for r := range cs {
		cs[r] = &memComm{rank: r, g: g}
	}
	return cs
}

// wait is a reusable barrier.
func (g *memGroup) wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	round := g.round
	if g.arrived++; g.arrived == g.size {
		g.arrived, g.round = 0, g.round+1
		g.cond.Broadcast()
		return
	}
	for round == g.round {
		g.cond.Wait()
	}
}

// combine deposits buf, waits for every rank, lets f compute this rank's
// result from all buffers, and waits again before anyone may reuse them.
func (c *memComm) combine(buf []float32, f func(all [][]float32, out []float32)) error {
	c.g.mu.Lock()
	c.g.bufs[c.rank] = slices.Clone(buf)
	c.g.mu.Unlock()
	c.g.wait()
	f(c.g.bufs, buf)
	c.g.wait()
	return nil
}

func (c *memComm) Rank() int { return c.rank }
func (c *memComm) Size() int { return c.g.size }
func (c *memComm) AllReduceSum(buf []float32) error {
	return c.combine(buf, func(all [][]float32, out []float32) {
		for i := range out {
			var s float32
			for _, b := range all {
				s += b[i]
			}
			out[i] = s
		}
	})
}
func (c *memComm) AllReduceMean(buf []float32) error {
	if err := c.AllReduceSum(buf); err != nil {
		return err
	}
	for i := range buf {
		buf[i] /= float32(c.g.size)
	}
	return nil
}
func (c *memComm) AllReduceMax(buf []float32) error {
	return c.combine(buf, func(all [][]float32, out []float32) {
		for i := range out {
			out[i] = all[0][i]
			for _, b := range all[1:] {
				out[i] = max(out[i], b[i])
			}
		}
	})
}
func (c *memComm) Broadcast(buf []float32, root int) error {
	return c.combine(buf, func(all [][]float32, out []float32) { copy(out, all[root]) })
}
func (c *memComm) Barrier() error { return c.combine(nil, func([][]float32, []float32) {}) }

// runRanks trains one task per rank (each made by mk) on a memComm group
// and returns rank 0's task and phase results.
func runRanks(t *testing.T, world int, mk func() *task.Task, accel, deviceReduce bool) (*task.Task, []PhaseResult) {
	t.Helper()
	comms, deviceComms := newMemGroup(world), newMemGroup(world)
	tasks := make([]*task.Task, world)
	recs := make([]*recorder, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		tasks[r], recs[r] = mk(), &recorder{}
		o := Options{Seed: 3, Comm: comms[r], Hooks: recs[r]}
		if accel {
			// Wrong weights on the "device": only FromHost makes them right.
			dev := mk()
			for _, p := range dev.Model.Params() {
				p.Value.Data[0] += 1
			}
			o.Accelerator = newCPUAccel(tasks[r], dev)
			if deviceReduce {
				o.Accelerator = &reducingAccel{cpuAccel: newCPUAccel(tasks[r], dev), comm: deviceComms[r]}
			}
		}
		tr, err := New(tasks[r], o)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[r] = tr.Run() })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return tasks[0], recs[0].results
}

// The accelerated trainer does what the CPU trainer does, with one rank or
// two, with and without gradient accumulation, reducing gradients through
// the host or on the "device".
func TestAcceleratorMatchesCPUTrainer(t *testing.T) {
	for _, tc := range []struct {
		name         string
		world, accum int
		deviceReduce bool
		batchnorm    bool // running statistics: rank 0's after each train phase
	}{
		{"1 rank", 1, 1, false, false}, {"1 rank, accumulating", 1, 2, false, false},
		{"2 ranks", 2, 1, false, false}, {"2 ranks, accumulating", 2, 2, false, false},
		{"2 ranks, device reduce", 2, 1, true, false}, {"2 ranks, device reduce, accumulating", 2, 2, true, false},
		{"2 ranks, batchnorm", 2, 1, false, true}, {"2 ranks, batchnorm, device reduce", 2, 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *task.Task { return newTaskWith(t, 2, 16, tc.accum, 0, tc.batchnorm) }
			plain, plainRes := runRanks(t, tc.world, mk, false, false)
			accel, accelRes := runRanks(t, tc.world, mk, true, tc.deviceReduce)
			assertSameWeights(t, plain, accel)
			if len(plainRes) != len(accelRes) {
				t.Fatalf("%d phases vs %d", len(plainRes), len(accelRes))
			}
			for i := range plainRes {
				for k, v := range plainRes[i].Values {
					if w := accelRes[i].Values[k]; w-v > 1e-5 || v-w > 1e-5 {
						t.Errorf("phase %d %s: %v on the CPU, %v accelerated", i, k, v, w)
					}
				}
				if plainRes[i].Samples != accelRes[i].Samples {
					t.Errorf("phase %d: %d samples vs %d", i, plainRes[i].Samples, accelRes[i].Samples)
				}
			}
		})
	}
	tk := newTask(t, 1, 16, 1, 0)
	tk.TopK = []int{1, 3}
	if _, err := New(tk, Options{Accelerator: newCPUAccel(tk, newTask(t, 1, 16, 1, 0))}); err == nil {
		t.Error("top-3 accuracy accepted on the accelerator")
	}
}
