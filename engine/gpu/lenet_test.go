//go:build cuda

package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"cohort/cuda"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/tensor"
)

// snapConvs puts every convolution parameter of m on the 1/128 grid (each
// stays within its PyTorch initialisation bound, up to half a step). With
// inputs on the 1/4 grid in [0, 1) every product and partial sum of both
// convolutions is then exact in float32 (LeNet's worst case needs 23
// bits), so the CPU and the GPU see the same pool inputs and take the same
// max and ReLU decisions: a near-tie decided by rounding would send a
// gradient to another position and differ by far more than rounding.
func snapConvs(m *nn.Sequential) {
	for _, l := range m.Layers {
		if c, ok := l.(*nn.Conv2d); ok {
			for _, p := range c.Params() {
				snap(p.Value.Data, 1.0/128)
			}
		}
	}
}

// quarterImages is n samples of 1×28×28 on the 1/4 grid in [0, 1), and labels.
func quarterImages(r *rand.Rand, n int) ([]float32, []int32) {
	x, y := randBatch(r, n, 28*28, 10)
	snap(x, 0.25)
	for i := range x {
		x[i] = min(x[i], 0.75)
	}
	return x, y
}

// fairBatch draws quarterImages until no ReLU after a Linear layer of m
// gets an input within 1e-6 of 0 (the inputs are ≈1, their rounding
// differences ≈1e-7): such a ReLU could decide differently on the GPU and
// the CPU, and pass one sample's whole gradient on one side only.
func fairBatch(t *testing.T, r *rand.Rand, m *nn.Sequential, n int) ([]float32, []int32) {
	t.Helper()
	for range 20 {
		x, y := quarterImages(r, n)
		out, margin := tensor.FromData(x, n, 1, 28, 28), math.Inf(1)
		for i, l := range m.Layers {
			out = l.Forward(out, nn.Pass{})
			if _, ok := l.(*nn.Linear); ok && i+1 < len(m.Layers) {
				if _, ok := m.Layers[i+1].(*nn.ReLU); ok {
					for _, v := range out.Data {
						margin = min(margin, math.Abs(float64(v)))
					}
				}
			}
		}
		if margin > 1e-6 {
			return x, y
		}
	}
	t.Fatal("20 batches in a row put a ReLU input within 1e-6 of 0")
	return nil, nil
}

// TestLeNetMatchesCPU trains engine/task's LeNet (as `cohort train` builds
// it for configs/mnist_lenet.yaml) on the CPU and the GPU for a few SGD
// steps with momentum and weight decay: an update, a micro-batch
// accumulated onto the next, and a Step on device-resident data, on
// batches whose ReLU decisions rounding cannot tip (fairBatch). Before
// each step the CPU weights are snapped to the grid (snapConvs) and copied
// to the GPU with the momentum, so each step starts from equal state; the
// GPU's own weights and momentum are compared before that. Bounds: loss
// within 1e-5 relative; gradients and momentum buffers (sums of
// gradients) within 1e-4, weights within 1e-5 of each tensor's largest
// magnitude: FP32 sums of up to 11k terms (the first convolution's weight
// gradient) in other orders differ by a few 1e-6 of it (seen: 2e-6 with
// host-emulated kernels), a wrong index or formula by far more.
func TestLeNetMatchesCPU(t *testing.T) {
	r, seed := newRand(t)
	const n, lr, momentum, wd = 19, 0.05, 0.9, 5e-4
	tk := lenetTask(t, seed)
	cpu := tk.Model
	gm, opt, byName := newTwin(t, cpu, Options{MaxBatch: 32, InputShape: tk.InputShape(), Momentum: momentum, WeightDecay: wd})
	var dx, dy cuda.Buffer
	onDevice(t, func(q *cuda.Queue) error {
		dx, dy = q.Alloc(4*n*28*28), q.Alloc(4*n)
		return nil
	})
	defer testDev.Do(func(q *cuda.Queue) error { q.Free(dx); q.Free(dy); return nil })
	grad := make([]float32, gm.NumParams())
	for step := range 4 {
		accumulate := step == 2 // onto step 1's gradient, which is not applied
		if !accumulate {
			snapConvs(cpu)
			if err := gm.ParamsFromHost(cpu); err != nil {
				t.Fatal(err)
			}
			if err := gm.LoadMomentum(opt.State()); err != nil {
				t.Fatal(err)
			}
		}
		x, y := fairBatch(t, r, cpu, n)
		want, _ := cpuStep(t, cpu, x, y, accumulate, 1, 28, 28)
		if step == 3 {
			// Forward, backward and update in one device call, on device data.
			onDevice(t, func(q *cuda.Queue) error {
				cuda.Upload(q, dx, x)
				cuda.Upload(q, dy, y)
				return nil
			})
			if err := gm.Step(Input{DevX: dx, DevLabels: dy, N: n}, lr); err != nil {
				t.Fatal(err)
			}
		} else if err := gm.Train(Input{X: x, Labels: y}, accumulate); err != nil {
			t.Fatal(err)
		}
		checkLoss(t, gm, step, want, n)
		if step < 3 {
			checkGrads(t, gm, grad, byName, step)
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
		compareState(t, fmt.Sprintf("after step %d", step), gm, lenetTask(t, seed+1).Model, cpu, opt)
	}
	// Eval at a batch size other than training's, on the trained weights.
	x, y := quarterImages(r, 32)
	snapConvs(cpu)
	if err := gm.ParamsFromHost(cpu); err != nil {
		t.Fatal(err)
	}
	want, _ := cpuStep(t, cpu, x, y, false, 1, 28, 28)
	if err := gm.Eval(Input{X: x, Labels: y}); err != nil {
		t.Fatal(err)
	}
	if st, err := gm.Stats(); err != nil || st.Samples != 32 || !(math.Abs(st.LossSum-32*float64(want)) <= 1e-5*32*float64(want)) {
		t.Errorf("eval: %+v, %v; CPU mean loss %v over 32 samples", st, err, want)
	}
}

// compareState checks the GPU's weights, buffers (BatchNorm's running
// statistics) and momentum buffers against the CPU model's and optimizer's,
// reading them into host, a model built like cpu with other values. Each
// tensor's bound scales with the largest magnitude in its layer (see
// closeToScale).
func compareState(t *testing.T, when string, gm *Model, host, cpu *nn.Sequential, opt *optim.SGD) {
	t.Helper()
	if err := gm.ParamsToHost(host); err != nil {
		t.Fatal(err)
	}
	if err := gm.BuffersToHost(host); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for _, p := range append(cpu.Params(), nn.Buffers(cpu)...) {
		want[p.Name] = p.Value.Data
	}
	scale := layerScales(want, "")
	for _, p := range append(host.Params(), nn.Buffers(host)...) {
		closeToScale(t, when+": "+p.Name, p.Value.Data, want[p.Name], 1e-5, scale[layerOf(p.Name, "")])
	}
	mom, err := gm.MomentumState()
	if err != nil {
		t.Fatal(err)
	}
	wantMom := opt.State()
	if len(mom) != len(wantMom) {
		t.Fatalf("%s: %d momentum buffers, CPU has %d", when, len(mom), len(wantMom))
	}
	want = map[string][]float32{}
	for name, w := range wantMom {
		want[name] = w.Data
	}
	scale = layerScales(want, ".momentum_buffer")
	for name, w := range wantMom {
		g := mom[name]
		if g == nil {
			t.Fatalf("%s: momentum state lacks %s", when, name)
		}
		closeToScale(t, when+": "+name, g.Data, w.Data, 1e-4, scale[layerOf(name, ".momentum_buffer")])
	}
}
