package nn_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// A batch smaller than the first must reuse (re-slice) the buffers and
// give exactly what a fresh model computes at that batch.
func TestSmallerBatchReusesBuffers(t *testing.T) {
	const big, small = 16, 5
	for _, skip := range []bool{false, true} {
		reused, fresh := newMLP(big, 7), newMLP(big, 7)
		reused.model.SkipInputGrad, fresh.model.SkipInputGrad = skip, skip
		reused.step(t, reused.batch(big))
		bigOut := &reused.model.Forward(reused.batch(big), nn.Pass{}).Data[0]
		for _, p := range reused.model.Params() {
			p.Grad.Zero()
		}

		lossReused, lossFresh := reused.step(t, reused.batch(small)), fresh.step(t, fresh.batch(small))
		if lossReused != lossFresh {
			t.Errorf("skip=%v: loss %v after a bigger batch, %v fresh", skip, lossReused, lossFresh)
		}
		ps, fs := reused.model.Params(), fresh.model.Params()
		for i := range ps {
			if !slices.Equal(ps[i].Grad.Data, fs[i].Grad.Data) {
				t.Errorf("skip=%v: %s grad differs after a bigger batch", skip, ps[i].Name)
			}
		}
		y := reused.model.Forward(reused.batch(small), nn.Pass{})
		if y.Rows() != small || &y.Data[0] != bigOut {
			t.Errorf("skip=%v: output %v not re-sliced from the batch-%d buffer", skip, y.Shape, big)
		}
	}
}

// A warm training step must not allocate: the trainer runs it millions of
// times and the GC would show in the step time.
func TestStepAllocatesNothing(t *testing.T) {
	if cpu.BLASName != "openblas" {
		t.Skip("gonum's Sgemm allocates for its goroutines; only our code is under test")
	}
	m := newMLP(32, 3)
	m.model.SkipInputGrad = true
	x := m.batch(32)
	if a := testing.AllocsPerRun(5, func() { m.step(t, x) }); a != 0 {
		t.Errorf("a step allocated %v times", a)
	}
}

func TestSoftmaxCrossEntropyHugeLogits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logits []float32
		label  int32
		want   float64
	}{
		{"confident right", []float32{1e4, 0, -1e4}, 0, 0},
		{"confident wrong", []float32{1e4, 0, -1e4}, 2, 2e4},
		{"all huge", []float32{1e4, 1e4}, 1, math.Ln2},
		{"all very negative", []float32{-1e4, -1e4, -1e4, -1e4}, 3, math.Log(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := len(tc.logits)
			ce := nn.NewSoftmaxCrossEntropy()
			loss, err := ce.Forward(tensor.FromData(tc.logits, 1, k), []int32{tc.label})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(float64(loss)-tc.want) > 1e-6*max(1, tc.want) {
				t.Errorf("loss %v, want %v", loss, tc.want)
			}
			var sum float64
			for _, g := range ce.Backward().Data {
				if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
					t.Fatalf("gradient %v is not finite", g)
				}
				sum += float64(g)
			}
			if math.Abs(sum) > 1e-6 {
				t.Errorf("gradient row sums to %v, want 0", sum)
			}
		})
	}
}

func TestSoftmaxCrossEntropyBadLabel(t *testing.T) {
	logits := tensor.New(3, 4)
	for _, tc := range []struct {
		name   string
		labels []int32
		msg    string
	}{
		{"negative", []int32{0, -1, 2}, "label -1 at index 1"},
		{"too big", []int32{0, 1, 4}, "label 4 at index 2"},
		{"count", []int32{0, 1}, "2 labels for a batch of 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nn.NewSoftmaxCrossEntropy().Forward(logits, tc.labels)
			if !errors.Is(err, nn.ErrLabel) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want ErrLabel saying %q", err, tc.msg)
			}
		})
	}
}

func TestReLUAtZero(t *testing.T) {
	x := tensor.FromData([]float32{-1, float32(math.Copysign(0, -1)), 0, 2}, 1, 4)
	r := nn.NewReLU()
	y := r.Forward(x, nn.Pass{})
	dx := r.Backward(tensor.FromData([]float32{5, 6, 7, 8}, 1, 4))
	if want := []float32{0, 0, 0, 2}; !slices.Equal(y.Data, want) {
		t.Errorf("y = %v, want %v", y.Data, want)
	}
	if want := []float32{0, 0, 0, 8}; !slices.Equal(dx.Data, want) {
		t.Errorf("dx = %v, want %v", dx.Data, want)
	}
}

func TestNewDropoutRejectsBadP(t *testing.T) {
	for _, p := range []float32{-0.1, 1, 1.5, float32(math.NaN())} {
		if _, err := nn.NewDropout(p); !errors.Is(err, nn.ErrDropoutP) {
			t.Errorf("NewDropout(%v): error %v, want ErrDropoutP", p, err)
		}
	}
}

// Evaluation, and p = 0, must pass data and gradients through untouched.
func TestDropoutIdentity(t *testing.T) {
	x, dy := tensor.New(2, 3), tensor.New(2, 3)
	for _, tc := range []struct {
		name string
		p    float32
		pass nn.Pass
	}{
		{"eval", 0.5, nn.Pass{}},
		{"p=0", 0, nn.Pass{Train: true, Rand: rand.New(rand.NewPCG(1, 1))}},
	} {
		d, err := nn.NewDropout(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if d.Forward(x, tc.pass) != x || d.Backward(dy) != dy {
			t.Errorf("%s: dropout is not the identity", tc.name)
		}
	}
}

func TestCost(t *testing.T) {
	m := newMLP(1, 1)
	for _, tc := range []struct {
		name  string
		layer nn.Layer
		in    []int
		out   []int
		flops int64
	}{
		{"linear", m.model.Layers[1], []int{784}, []int{512}, 2 * 784 * 512},
		{"linear on an image", m.model.Layers[1], []int{1, 28, 28}, []int{512}, 2 * 784 * 512},
		{"relu", nn.NewReLU(), []int{3, 4}, []int{3, 4}, 0},
		{"flatten", nn.NewFlatten(), []int{1, 28, 28}, []int{784}, 0},
		{"mlp", m.model, []int{1, 28, 28}, []int{10}, 2 * (784*512 + 512*512 + 512*10)},
	} {
		out, flops := tc.layer.Cost(tc.in)
		if !slices.Equal(out, tc.out) || flops != tc.flops {
			t.Errorf("%s: Cost(%v) = %v, %d; want %v, %d", tc.name, tc.in, out, flops, tc.out, tc.flops)
		}
	}
}

// Init must follow PyTorch's nn.Linear: U(±1/sqrt(in)) for both tensors,
// and names must be state_dict names.
func TestLinearInit(t *testing.T) {
	const in, out = 400, 300
	l := nn.NewLinear(cpu.BLAS(), rand.New(rand.NewPCG(5, 5)), "3", in, out)
	bound := float32(1 / math.Sqrt(in))
	for _, tc := range []struct {
		p    *nn.Param
		name string
	}{{l.Weight, "3.weight"}, {l.Bias, "3.bias"}} {
		if tc.p.Name != tc.name {
			t.Errorf("name %q, want %q", tc.p.Name, tc.name)
		}
		lo, hi := slices.Min(tc.p.Value.Data), slices.Max(tc.p.Value.Data)
		// 300 draws reach within 5% of both ends with probability
		// 1 - 2·0.975³⁰⁰ ≈ 1 - 1e-3; the seed is fixed, so this is stable.
		if lo < -bound || hi > bound || lo > -0.95*bound || hi < 0.95*bound {
			t.Errorf("%s spans [%v, %v], want about [%v, %v]", tc.name, lo, hi, -bound, bound)
		}
	}
	if !slices.Equal(l.Weight.Value.Shape, []int{out, in}) || !slices.Equal(l.Params(), []*nn.Param{l.Weight, l.Bias}) {
		t.Errorf("weight shape %v, params %v", l.Weight.Value.Shape, l.Params())
	}
}
