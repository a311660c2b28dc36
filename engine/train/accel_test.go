package train

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"cohort/engine/checkpoint"
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
	reads     int // Stats calls
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
	a.reads++
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
// own process group, as an NCCL-backed accelerator does on the device,
// and answers the stop question one call late, as that one does.
type reducingAccel struct {
	*cpuAccel
	comm   Comm
	before bool // the last call's sum
}

func (a *reducingAccel) TrainReduce(x []float32, y []int32, stop bool) (bool, error) {
	if err := a.Train(x, y, false); err != nil {
		return false, err
	}
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
	before := a.before
	a.before = flag[0] > 0
	return before, a.WriteGrad(grad)
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

// accelRun says how runRanks accelerates its ranks; nil runs the CPU
// trainer.
type accelRun struct {
	deviceReduce bool
	readEvery    int
	// stops, when set, are the ranks' hooks (instead of recorders), whose
	// flags are the ranks' stop requests.
	stops []*stopAt
	// restore, when set, is the checkpoint every rank resumes from.
	restore *checkpoint.Checkpoint
	// reads is set to rank 0's number of Stats calls.
	reads int
}

// runRanks trains one task per rank (each made by mk) on a memComm group
// and returns rank 0's task and phase results, and every rank's error.
func runRanks(t *testing.T, world int, mk func() *task.Task, ar *accelRun) (*task.Task, []PhaseResult, []error) {
	t.Helper()
	comms, deviceComms := newMemGroup(world), newMemGroup(world)
	tasks := make([]*task.Task, world)
	recs := make([]*recorder, world)
	errs := make([]error, world)
	devs := make([]*cpuAccel, world)
	var wg sync.WaitGroup
	for r := range world {
		tasks[r], recs[r] = mk(), &recorder{}
		o := Options{Seed: 3, Comm: comms[r], Hooks: recs[r]}
		if ar != nil {
			// Wrong weights on the "device": only FromHost makes them right.
			dev := mk()
			for _, p := range dev.Model.Params() {
				p.Value.Data[0] += 1
			}
			devs[r] = newCPUAccel(tasks[r], dev)
			o.Accelerator, o.DeviceReadEvery = devs[r], ar.readEvery
			if ar.deviceReduce {
				o.Accelerator = &reducingAccel{cpuAccel: devs[r], comm: deviceComms[r]}
			}
			if ar.stops != nil {
				o.Hooks, o.Stop = ar.stops[r], ar.stops[r].flag
			}
		}
		tr, err := New(tasks[r], o)
		if err != nil {
			t.Fatal(err)
		}
		if ar != nil && ar.restore != nil {
			if err := tr.Restore(ar.restore); err != nil {
				t.Fatal(err)
			}
		}
		wg.Go(func() { errs[r] = tr.Run() })
	}
	wg.Wait()
	if ar != nil {
		ar.reads = devs[0].reads
	}
	return tasks[0], recs[0].results, errs
}

// runRanksOK is runRanks for runs that must succeed.
func runRanksOK(t *testing.T, world int, mk func() *task.Task, ar *accelRun) (*task.Task, []PhaseResult) {
	t.Helper()
	tk, res, errs := runRanks(t, world, mk, ar)
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return tk, res
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
		readEvery    int
	}{
		{"1 rank", 1, 1, false, false, 0}, {"1 rank, accumulating", 1, 2, false, false, 0},
		{"2 ranks", 2, 1, false, false, 0}, {"2 ranks, accumulating", 2, 2, false, false, 0},
		{"2 ranks, device reduce", 2, 1, true, false, 0}, {"2 ranks, device reduce, accumulating", 2, 2, true, false, 0},
		{"2 ranks, batchnorm", 2, 1, false, true, 0}, {"2 ranks, batchnorm, device reduce", 2, 1, true, true, 0},
		{"1 rank, read every 5 steps", 1, 1, false, false, 5}, {"2 ranks, device reduce, read every 7 steps", 2, 1, true, false, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *task.Task { return newTaskWith(t, 2, 16, tc.accum, 0, tc.batchnorm) }
			plain, plainRes := runRanksOK(t, tc.world, mk, nil)
			ar := &accelRun{deviceReduce: tc.deviceReduce, readEvery: tc.readEvery}
			accel, accelRes := runRanksOK(t, tc.world, mk, ar)
			// A read every readEvery steps and at each phase's last step.
			want, tk, every := 0, mk(), max(tc.readEvery, 1)
			for _, r := range plainRes {
				batch := tk.TrainBatch
				if !r.Phase.Train {
					batch = tk.TestBatch
				}
				steps := (r.Samples/tc.world + batch - 1) / batch
				want += steps/every + min(steps%every, 1)
			}
			if ar.reads != want {
				t.Errorf("%d reads of the device's sums, want %d", ar.reads, want)
			}
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

// A stop asked on one rank of an accelerated run that reduces on the
// device lands one update later than on the host path (the answer lags a
// step), at the same step on every rank; rank 0's checkpoint resumes to
// the uninterrupted weights.
func TestDeviceReducedStopLandsTogether(t *testing.T) {
	mk := func() *task.Task { return newTask(t, 2, 16, 1, 0) }
	full, fullRes := runRanksOK(t, 2, mk, nil)
	for _, tc := range []struct {
		deviceReduce bool
		wantStep     int // the request is set in OnStep after step 5
	}{{false, 7}, {true, 8}} {
		stops := []*stopAt{{phase: -1, flag: new(atomic.Bool)}, {phase: 0, step: 5, flag: new(atomic.Bool)}}
		_, _, errs := runRanks(t, 2, mk, &accelRun{deviceReduce: tc.deviceReduce, readEvery: 100, stops: stops})
		for r, err := range errs {
			if !errors.Is(err, ErrPreempted) {
				t.Fatalf("device reduce %v: rank %d: %v", tc.deviceReduce, r, err)
			}
			if m := stops[r].snap.Meta; m.PhaseIndex != 0 || m.StepInPhase != tc.wantStep {
				t.Errorf("device reduce %v: rank %d stopped at phase %d step %d, want 0/%d", tc.deviceReduce, r, m.PhaseIndex, m.StepInPhase, tc.wantStep)
			}
		}
		resumed, res := runRanksOK(t, 2, mk, &accelRun{deviceReduce: tc.deviceReduce, readEvery: 100, restore: stops[0].snap})
		assertSameWeights(t, full, resumed)
		// The interrupted phase's meters were read from the device before
		// the checkpoint: the resumed phase reports the whole phase.
		got, want := res[0], fullRes[0]
		if d := got.Values["loss"] - want.Values["loss"]; got.Samples != want.Samples || d > 1e-5 || d < -1e-5 {
			t.Errorf("device reduce %v: resumed phase reports %d samples, loss %v; uninterrupted %d, %v",
				tc.deviceReduce, got.Samples, got.Values["loss"], want.Samples, want.Values["loss"])
		}
	}
}
