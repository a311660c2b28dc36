//go:build cuda

package gpu

// Whole models with BatchNorm and residual blocks, as engine/task builds
// them, trained for a few steps on the GPU and on the CPU engine.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"cohort/engine/nn"
	"cohort/engine/task"
	"cohort/engine/tensor"
)

// TestResNetMatchesCPU trains engine/task's ResNet (basic and bottleneck
// blocks, with and without small_input; identity, stride-1 and stride-2
// projection shortcuts) like TestLeNetMatchesCPU trains LeNet, and also
// compares the BatchNorm running statistics and batch counts, and an
// evaluation pass that uses them.
func TestResNetMatchesCPU(t *testing.T) {
	for _, c := range resnetCases {
		t.Run(c.String(), func(t *testing.T) {
			r, seed := newRand(t)
			crop := 8
			if !c.small {
				crop = 16 // conv 7×7/2 and max pool 3/2: 4×4 at the first stage
			}
			matchTraining(t, r, seed, 6, func(seed uint64) *task.Task { return resnetTask(t, seed, c.basic, c.small, crop) })
		})
	}
}

// TestBatchNormMLPMatchesCPU does the same for engine/task's MLP with
// use_batchnorm, with and without first_batchnorm.
func TestBatchNormMLPMatchesCPU(t *testing.T) {
	for _, first := range []bool{false, true} {
		t.Run(fmt.Sprintf("first_batchnorm_%v", first), func(t *testing.T) {
			r, seed := newRand(t)
			matchTraining(t, r, seed, 13, func(seed uint64) *task.Task { return bnMLPTask(t, seed, first) })
		})
	}
}

// matchTraining runs four steps of SGD with momentum and weight decay on
// the CPU and on the GPU from the same state, as TestLeNetMatchesCPU does
// (an update, a micro-batch accumulated onto the next, a Step), then an
// evaluation at another batch size. Before each step but the accumulated
// one the GPU gets the CPU's weights, buffers and momentum, so each step
// starts from equal state; the GPU's own are compared before that.
// Batches come from fairBatchOf, so no ReLU or max decision can tip on
// rounding. Bounds: losses within 1e-5 relative; gradients and momentum
// within 1e-4, weights and running statistics within 1e-5 of the largest
// magnitude in their layer (closeToScale: the bias gradient of a Linear
// before a BatchNorm is 0 up to rounding noise): FP32 sums in other
// orders, through BatchNorm's normalisation, differ by a few 1e-6, a wrong
// index or formula by far more.
func matchTraining(t *testing.T, r *rand.Rand, seed uint64, n int, build func(seed uint64) *task.Task) {
	const lr, momentum, wd = 0.05, 0.9, 5e-4
	tk := build(seed)
	cpu, probe, host := tk.Model, build(seed).Model, build(seed+1).Model
	in, classes := tk.InputShape(), tk.Train.NumClasses()
	gm, opt, byName := newTwin(t, cpu, Options{MaxBatch: n + 3, InputShape: in, Momentum: momentum, WeightDecay: wd})
	toDevice := func() {
		t.Helper()
		if err := gm.ParamsFromHost(cpu); err != nil {
			t.Fatal(err)
		}
		if err := gm.BuffersFromHost(cpu); err != nil {
			t.Fatal(err)
		}
		if err := gm.LoadMomentum(opt.State()); err != nil {
			t.Fatal(err)
		}
	}
	grad := make([]float32, gm.NumParams())
	for step := range 4 {
		accumulate := step == 2 // onto step 1's gradient, which is not applied
		if !accumulate {
			toDevice()
		}
		x, y := fairBatchOf(t, r, probe, cpu, n, in, classes, true)
		want, _ := cpuStep(t, cpu, x, y, accumulate, in...)
		var err error
		if step == 3 {
			err = gm.Step(Input{X: x, Labels: y}, lr)
		} else {
			err = gm.Train(Input{X: x, Labels: y}, accumulate)
		}
		if err != nil {
			t.Fatal(err)
		}
		checkLoss(t, gm, step, want, n)
		if step < 3 {
			if err := gm.ReadGrad(grad); err != nil {
				t.Fatal(err)
			}
			want := map[string][]float32{}
			for name, p := range byName {
				want[name] = p.Grad.Data
			}
			scale := layerScales(want, "")
			for _, s := range gm.Layout() {
				closeToScale(t, fmt.Sprintf("step %d grad %s", step, s.Name), gradOf(grad, s), want[s.Name], 1e-4, scale[layerOf(s.Name, "")])
			}
		}
		if step == 1 {
			continue // no update: step 2 accumulates onto this gradient
		}
		opt.Step(lr)
		if step < 3 {
			if err := gm.ApplySGD(lr); err != nil {
				t.Fatal(err)
			}
		}
		compareState(t, fmt.Sprintf("after step %d", step), gm, host, cpu, opt)
	}
	// Evaluation normalises with the running statistics four training
	// passes made.
	toDevice()
	x, y := fairBatchOf(t, r, probe, cpu, n+3, in, classes, false)
	logits := cpu.Forward(tensor.FromData(x, append([]int{n + 3}, in...)...), nn.Pass{})
	want, err := nn.NewSoftmaxCrossEntropy().Forward(logits, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := gm.Eval(Input{X: x, Labels: y}); err != nil {
		t.Fatal(err)
	}
	if st, err := gm.Stats(); err != nil || st.Samples != n+3 || !(math.Abs(st.LossSum-float64(n+3)*float64(want)) <= 1e-5*float64(n+3)*float64(want)) {
		t.Errorf("eval: %+v, %v; CPU mean loss %v over %d samples", st, err, want, n+3)
	}
	if err := gm.BuffersToHost(host); err != nil {
		t.Fatal(err)
	}
	for i, b := range nn.Buffers(host) {
		closeTo(t, "after eval: buffer "+b.Name, b.Value.Data, nn.Buffers(cpu)[i].Value.Data, 0) // untouched
	}
}

// fairBatchOf draws batches of n samples (values in [-1, 1), labels below
// classes) until no ReLU input of cpu's forward pass (training or
// evaluation) is within 2e-5 of 0 and no max pool window holds a value
// within 2e-5 of its maximum but not equal to it: the GPU's activations
// differ from the CPU's by rounding (≈1e-6 after BatchNorm), and a
// decision tipped the other way would send a whole gradient elsewhere. It
// runs the forward pass on probe, a copy of cpu, so cpu's running
// statistics stay as they are.
func fairBatchOf(t *testing.T, r *rand.Rand, probe, cpu *nn.Sequential, n int, in []int, classes int, train bool) ([]float32, []int32) {
	t.Helper()
	for i, p := range probe.Params() {
		copy(p.Value.Data, cpu.Params()[i].Value.Data)
	}
	for i, b := range nn.Buffers(probe) {
		copy(b.Value.Data, nn.Buffers(cpu)[i].Value.Data)
	}
	for range 50 {
		x := make([]float32, n*numel(in))
		for i := range x {
			x[i] = 2*r.Float32() - 1
		}
		y := make([]int32, n)
		for i := range y {
			y[i] = int32(r.IntN(classes))
		}
		m := margins{min: math.Inf(1)}
		m.forward(probe, tensor.FromData(x, append([]int{n}, in...)...), nn.Pass{Train: train})
		if m.min > 2e-5 {
			return x, y
		}
	}
	t.Fatal("50 batches in a row put a ReLU input or a max pool near-tie within 2e-5")
	return nil, nil
}

// margins runs a model forward as its layers do and records in min the
// smallest |input| of a ReLU and the smallest gap between a max pool
// window's maximum and a different value in the window.
type margins struct{ min float64 }

func (m *margins) forward(l nn.Layer, x *tensor.Tensor, p nn.Pass) *tensor.Tensor {
	switch l := l.(type) {
	case *nn.Sequential:
		for _, sub := range l.Layers {
			x = m.forward(sub, x, p)
		}
		return x
	case *nn.Residual:
		a := m.forward(l.Main, x, p)
		s := x
		if l.Shortcut != nil {
			s = m.forward(l.Shortcut, x, p)
		}
		sum := tensor.New(a.Shape...)
		for i, v := range a.Data {
			sum.Data[i] = v + s.Data[i]
		}
		if l.EndsWithReLU() {
			return m.forward(nn.NewReLU(), sum, p)
		}
		return sum
	case *nn.ReLU:
		for _, v := range x.Data {
			m.min = min(m.min, math.Abs(float64(v)))
		}
	case *nn.MaxPool2d:
		m.pool(l, x)
	}
	return l.Forward(x, p)
}

func (m *margins) pool(l *nn.MaxPool2d, x *tensor.Tensor) {
	h, w, k, s, pad := x.Shape[2], x.Shape[3], l.Kernel, max(l.Stride, 1), l.Padding
	oh, ow := (h+2*pad-k)/s+1, (w+2*pad-k)/s+1
	for pl := range x.Shape[0] * x.Shape[1] {
		plane := x.Data[pl*h*w : (pl+1)*h*w]
		for oy := range oh {
			for ox := range ow {
				var win []float32
				for i := max(oy*s-pad, 0); i < min(oy*s-pad+k, h); i++ {
					win = append(win, plane[i*w+max(ox*s-pad, 0):i*w+min(ox*s-pad+k, w)]...)
				}
				top := float32(math.Inf(-1))
				for _, v := range win {
					top = max(top, v)
				}
				for _, v := range win {
					if v != top {
						m.min = min(m.min, float64(top-v))
					}
				}
			}
		}
	}
}

// TestAcceleratedBuffers checks that the trainer's Accelerator moves the
// BatchNorm buffers both ways with the weights (checkpoints and rank 0's
// broadcast depend on it) and refuses synchronised BatchNorm.
func TestAcceleratedBuffers(t *testing.T) {
	r, seed := newRand(t)
	tk := resnetTask(t, seed, true, true, 8)
	a, err := NewAccelerated(testDev, tk, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	x, y := randBatch(r, tk.TrainBatch, numel(tk.InputShape()), 2)
	for range 3 {
		if err := a.Train(x, y, false); err != nil {
			t.Fatal(err)
		}
		if err := a.Update(0.05); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ToHost(); err != nil {
		t.Fatal(err)
	}
	bufs := nn.Buffers(tk.Model)
	for i := 0; i < len(bufs); i += 3 { // running_mean, running_var, num_batches_tracked
		if mean, count := bufs[i].Value.Data, bufs[i+2].Value.Data[0]; maxAbs(mean) == 0 || count != 3 {
			t.Errorf("after 3 steps: %s = %v, %s = %v", bufs[i].Name, mean, bufs[i+2].Name, count)
		}
	}
	want := make([][]float32, len(bufs))
	for i, b := range bufs {
		for j := range b.Value.Data {
			b.Value.Data[j] = float32(i + j)
		}
		want[i] = append([]float32(nil), b.Value.Data...)
	}
	if err := a.FromHost(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bufs {
		clear(b.Value.Data)
	}
	if err := a.ToHost(); err != nil {
		t.Fatal(err)
	}
	for i, b := range bufs {
		exactly(t, "round trip of "+b.Name, b.Value.Data, want[i])
	}
}
