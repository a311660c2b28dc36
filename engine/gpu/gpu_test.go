//go:build cuda

package gpu

// These tests need a GPU; scripts/gpu-check.sh runs them on the GPU
// machine. They compare the device model with the CPU engine (engine/nn +
// engine/optim) on the same weights and fresh random batches (seed logged).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"cohort/cuda"
	"cohort/engine/meter"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/tensor"
)

var testDev *cuda.Device

func TestMain(m *testing.M) {
	d, err := cuda.Open(0, cuda.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpu tests need a GPU:", err)
		os.Exit(1)
	}
	testDev = d
	code := m.Run()
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close device:", err)
		code = 1
	}
	os.Exit(code)
}

func newRand(t testing.TB) (*rand.Rand, uint64) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0xbeef)), seed
}

// randBatch is n samples of in uniform [0,1) features and labels below classes.
func randBatch(r *rand.Rand, n, in, classes int) ([]float32, []int32) {
	x := make([]float32, n*in)
	for i := range x {
		x[i] = r.Float32()
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(r.IntN(classes))
	}
	return x, y
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// closeTo fails t unless |got-want| ≤ rel·max|want| elementwise; NaN fails.
func closeTo(t *testing.T, what string, got, want []float32, rel float64) {
	t.Helper()
	closeToScale(t, what, got, want, rel, 0)
}

// closeToScale is closeTo with the bound rel·max(max|want|, scale): for a
// tensor whose exact value is 0 and whose computed values are rounding
// noise (the bias gradient of a layer before a BatchNorm), scale is the
// magnitude of the terms that cancel.
func closeToScale(t *testing.T, what string, got, want []float32, rel, scale float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	tol := rel * max(maxAbs(want), scale)
	worst, at := 0.0, -1
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol) && (at < 0 || !(d <= worst)) {
			worst, at = d, i
		}
	}
	if at >= 0 {
		t.Errorf("%s[%d] = %g, want %g: off by %.3g, bound %.3g (%g × max(max|want|, %.3g))", what, at, got[at], want[at], worst, tol, rel, scale)
	}
}

// layerScales maps each layer (a tensor's name up to its last dot, after
// dropping suffix) to the largest magnitude among its tensors in want.
func layerScales(want map[string][]float32, suffix string) map[string]float64 {
	out := map[string]float64{}
	for name, v := range want {
		l := layerOf(name, suffix)
		out[l] = max(out[l], maxAbs(v))
	}
	return out
}

func layerOf(name, suffix string) string {
	name = strings.TrimSuffix(name, suffix)
	return name[:max(strings.LastIndex(name, "."), 0)]
}

// gradOf returns slot s of a flat gradient.
func gradOf(flat []float32, s Slot) []float32 { return flat[s.Offset : s.Offset+s.Len] }

// cpuStep is one step of the CPU engine: zero grads (unless accumulate),
// forward, loss, backward; it returns the loss and the logits. The samples
// have shape in, or are flat rows when in is left out.
func cpuStep(t *testing.T, model *nn.Sequential, x []float32, y []int32, accumulate bool, in ...int) (float32, *tensor.Tensor) {
	t.Helper()
	if !accumulate {
		for _, p := range model.Params() {
			p.Grad.Zero()
		}
	}
	if len(in) == 0 {
		in = []int{len(x) / len(y)}
	}
	loss := nn.NewSoftmaxCrossEntropy()
	logits := model.Forward(tensor.FromData(x, append([]int{len(y)}, in...)...), nn.Pass{Train: true})
	l, err := loss.Forward(logits, y)
	if err != nil {
		t.Fatal(err)
	}
	model.Backward(loss.Backward())
	return l, logits
}

// TestMatchesCPU trains the same MLP on the CPU and the GPU for a few SGD
// steps. Bounds: gradients within 1e-4 and weights and momentum within
// 1e-5 of each tensor's largest magnitude, losses within 1e-5 relative:
// FP32 GEMMs that sum in other orders differ by ~1e-6 relative, a wrong
// formula by far more.
func TestMatchesCPU(t *testing.T) {
	r, seed := newRand(t)
	const in, classes, n, lr = 100, 10, 37, 0.1
	cpu := mlp(seed, in, 64, 48, classes)
	gm, opt, byName := newTwin(t, cpu, Options{MaxBatch: 64, Momentum: 0.9, WeightDecay: 1e-3})
	grad := make([]float32, gm.NumParams())
	for step := range 4 {
		// Step 2 accumulates a second micro-batch onto step 1's gradient.
		accumulate := step == 2
		x, y := randBatch(r, n, in, classes)
		want, _ := cpuStep(t, cpu, x, y, accumulate)
		if err := gm.Train(Input{X: x, Labels: y}, accumulate); err != nil {
			t.Fatal(err)
		}
		checkLoss(t, gm, step, want, 0)
		checkGrads(t, gm, grad, byName, step)
		if step == 1 {
			continue // no update: step 2 accumulates onto this gradient
		}
		opt.Step(lr)
		if err := gm.ApplySGD(lr); err != nil {
			t.Fatal(err)
		}
	}
	host := mlp(seed+1, in, 64, 48, classes) // other values, same names
	if err := gm.ParamsToHost(host); err != nil {
		t.Fatal(err)
	}
	for i, p := range host.Params() {
		closeTo(t, "weights "+p.Name, p.Value.Data, cpu.Params()[i].Value.Data, 1e-5)
	}
	mom, err := gm.MomentumState()
	if err != nil {
		t.Fatal(err)
	}
	wantMom := opt.State()
	if len(mom) != len(wantMom) {
		t.Fatalf("%d momentum buffers, CPU has %d", len(mom), len(wantMom))
	}
	for name, w := range wantMom {
		g := mom[name]
		if g == nil {
			t.Fatalf("momentum state lacks %s", name)
		}
		closeTo(t, name, g.Data, w.Data, 1e-5)
	}
}

// TestEvalStats checks Eval's loss and top-1 counts against the CPU loss
// and engine/meter's accuracy over several batches.
func TestEvalStats(t *testing.T) {
	r, seed := newRand(t)
	const in, classes = 50, 7
	cpu := mlp(seed, in, 40, classes)
	gm, err := New(testDev, cpu, Options{MaxBatch: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	acc, err := meter.NewAccuracy([]int{1})
	if err != nil {
		t.Fatal(err)
	}
	var lossSum float64
	samples := 0
	for _, n := range []int{300, 1, 123} {
		x, y := randBatch(r, n, in, classes)
		l, logits := cpuStep(t, cpu, x, y, false)
		acc.Update(logits, y, l)
		lossSum += float64(l) * float64(n)
		samples += n
		if err := gm.Eval(Input{X: x, Labels: y}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := gm.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != samples || !(math.Abs(st.LossSum-lossSum) <= 1e-5*lossSum) {
		t.Errorf("stats %+v, want %d samples and loss sum %v", st, samples, lossSum)
	}
	// A logit within rounding of the label's could tip either way.
	if want := acc.Values()["accuracy"] * float64(samples); !(math.Abs(st.Correct-want) <= 1) {
		t.Errorf("correct %v, CPU %v", st.Correct, want)
	}
	if st2, err := gm.Stats(); err != nil || st2.Samples != 0 || st2.LossSum != 0 || st2.Correct != 0 {
		t.Errorf("Stats after Stats = %+v, %v; want zero sums", st2, err)
	}
}

func TestInputErrors(t *testing.T) {
	gm, err := New(testDev, mlp(1, 8, 4, 3), Options{MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	for name, in := range map[string]Input{
		"too big":     {X: make([]float32, 5*8), Labels: make([]int32, 5)},
		"short x":     {X: make([]float32, 7), Labels: make([]int32, 1)},
		"bad label":   {X: make([]float32, 8), Labels: []int32{3}},
		"empty batch": {},
	} {
		if err := gm.Train(in, false); err == nil {
			t.Errorf("%s: Train accepted it", name)
		}
	}
	if err := gm.ReadGrad(make([]float32, 3)); err == nil {
		t.Error("ReadGrad accepted a short buffer")
	}
}

// TestStepDeviceInput runs Step (train and update in one call) on batches
// already on the device, with Nesterov momentum and weight decay, against
// the CPU engine; the batch is smaller than MaxBatch.
func TestStepDeviceInput(t *testing.T) {
	r, seed := newRand(t)
	const in, classes, n, lr = 30, 6, 50, 0.05
	cpu := mlp(seed, in, 40, classes)
	gm, opt, _ := newTwin(t, cpu, Options{MaxBatch: 64, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	var dx, dy cuda.Buffer
	if err := testDev.Do(func(q *cuda.Queue) error {
		dx, dy = q.Alloc(4*n*in), q.Alloc(4*n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer testDev.Do(func(q *cuda.Queue) error { q.Free(dx); q.Free(dy); return nil })
	for step := range 3 {
		x, y := randBatch(r, n, in, classes)
		want, _ := cpuStep(t, cpu, x, y, false)
		opt.Step(lr)
		if err := testDev.Do(func(q *cuda.Queue) error {
			cuda.Upload(q, dx, x)
			cuda.Upload(q, dy, y)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := gm.Step(Input{DevX: dx, DevLabels: dy, N: n}, lr); err != nil {
			t.Fatal(err)
		}
		checkLoss(t, gm, step, want, n)
	}
	host := mlp(seed+1, in, 40, classes)
	if err := gm.ParamsToHost(host); err != nil {
		t.Fatal(err)
	}
	for i, p := range host.Params() {
		closeTo(t, "weights "+p.Name, p.Value.Data, cpu.Params()[i].Value.Data, 1e-5)
	}
}

// TestHostRoundTrips writes gradients, parameters and momentum buffers to
// the device and reads them back, with and without momentum (the trainer's
// FromHost loads an empty optimizer state then).
func TestHostRoundTrips(t *testing.T) {
	r, seed := newRand(t)
	for _, momentum := range []float32{0, 0.9} {
		gm, err := New(testDev, mlp(seed, 12, 9, 5), Options{MaxBatch: 8, Momentum: momentum})
		if err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("momentum %v", momentum)
		same := func(what string, got, want []float32) {
			t.Helper()
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Errorf("%s: %s[%d] = %g, want %g", tag, what, i, got[i], want[i])
					return
				}
			}
		}
		grad, back := make([]float32, gm.NumParams()), make([]float32, gm.NumParams())
		for i := range grad {
			grad[i] = r.Float32() - 0.5
		}
		if err := gm.WriteGrad(grad); err != nil {
			t.Fatal(err)
		}
		if err := gm.ReadGrad(back); err != nil {
			t.Fatal(err)
		}
		same("gradient", back, grad)

		src, dst := mlp(seed+1, 12, 9, 5), mlp(seed+2, 12, 9, 5)
		if err := gm.ParamsFromHost(src); err != nil {
			t.Fatal(err)
		}
		if err := gm.ParamsToHost(dst); err != nil {
			t.Fatal(err)
		}
		for i, p := range dst.Params() {
			same(p.Name, p.Value.Data, src.Params()[i].Value.Data)
		}

		opt, err := optim.NewSGD(src.Params(), momentum, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		state := opt.State()
		for _, v := range state {
			for i := range v.Data {
				v.Data[i] = r.Float32()
			}
		}
		if err := gm.LoadMomentum(state); err != nil {
			t.Fatalf("%s: LoadMomentum: %v", tag, err)
		}
		got, err := gm.MomentumState()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(state) {
			t.Errorf("%s: %d momentum buffers back, %d loaded", tag, len(got), len(state))
		}
		for name, v := range state {
			if g := got[name]; g == nil {
				t.Errorf("%s: momentum state lacks %s", tag, name)
			} else {
				same(name, g.Data, v.Data)
			}
		}
		state["stray.momentum_buffer"] = tensor.New(1)
		if err := gm.LoadMomentum(state); err == nil {
			t.Errorf("%s: LoadMomentum accepted a buffer the optimizer does not have", tag)
		}
		if err := gm.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLoss reads the model's stats and compares its last batch's loss
// (and, when n > 0, its sample count) with the CPU's.
func checkLoss(t *testing.T, gm *Model, step int, want float32, n int) {
	t.Helper()
	st, err := gm.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(st.LastLoss - float64(want)); (n > 0 && st.Samples != n) || !(d <= 1e-5*math.Abs(float64(want))) {
		t.Errorf("step %d: loss %v over %d samples, CPU %v over %d", step, st.LastLoss, st.Samples, want, n)
	}
}

// newTwin puts cpu on the test device with o and returns it with a CPU SGD
// of the same hyperparameters over cpu's params and those params by name,
// for step-by-step comparisons; the device model is closed with the test.
func newTwin(t *testing.T, cpu *nn.Sequential, o Options) (*Model, *optim.SGD, map[string]*nn.Param) {
	t.Helper()
	gm, err := New(testDev, cpu, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gm.Close() })
	opt, err := optim.NewSGD(cpu.Params(), o.Momentum, o.WeightDecay, o.Nesterov)
	if err != nil {
		t.Fatal(err)
	}
	return gm, opt, paramsByName(cpu.Params())
}

// checkGrads compares the device's flat gradient (read into grad) with the
// CPU params' gradients, slot by slot.
func checkGrads(t *testing.T, gm *Model, grad []float32, byName map[string]*nn.Param, step int) {
	t.Helper()
	if err := gm.ReadGrad(grad); err != nil {
		t.Fatal(err)
	}
	for _, s := range gm.Layout() {
		closeTo(t, fmt.Sprintf("step %d grad %s", step, s.Name), gradOf(grad, s), byName[s.Name].Grad.Data, 1e-4)
	}
}
