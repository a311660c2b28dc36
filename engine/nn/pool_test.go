package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// tolPool bounds pooling errors: max copies values; the means are float32
// sums of up to 5·7 = 35 terms (seen 2.5e-7).
const tolPool = 1e-6

// checkLayer runs l forward and backward on x with dy = r and compares y
// and dx with gorgonia's value and gradient of build(x).
func checkLayer(t *testing.T, l nn.Layer, x *tensor.Tensor, r []float32, build func(o *oracle, x *G.Node) *G.Node, tol float64) {
	t.Helper()
	o := newOracle(t)
	gx := o.input("x", x.Data, x.Shape...)
	gy := build(o, gx)
	o.run(o.weightedSum(gy, r), gx)
	y := l.Forward(x, nn.Pass{})
	if !slices.Equal(y.Shape, gy.Shape()) {
		t.Fatalf("y shape %v, gorgonia %v", y.Shape, gy.Shape())
	}
	checkClose(t, "y", y.Data, forwardValue(t, x, build), tol)
	dx := l.Backward(tensor.FromData(r, y.Shape...))
	if !slices.Equal(dx.Shape, x.Shape) {
		t.Errorf("dx shape %v, want %v", dx.Shape, x.Shape)
	}
	checkClose(t, "dx", dx.Data, grad(t, gx), tol)
}

// forwardValue evaluates build(x) in a graph of its own that ends there:
// gorgonia's tape machine may overwrite a node's value in place when
// later ops (the weighted sum) consume it.
func forwardValue(t *testing.T, x *tensor.Tensor, build func(o *oracle, x *G.Node) *G.Node) []float64 {
	t.Helper()
	o := newOracle(t)
	y := build(o, o.input("x", x.Data, x.Shape...))
	vm := G.NewTapeMachine(o.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("gorgonia run: %v", err)
	}
	return value(t, y)
}

// outLen is the element count of l's output for x, from its Cost.
func outLen(l nn.Layer, x *tensor.Tensor) int {
	out, _ := l.Cost(x.Shape[1:])
	return x.Rows() * numelOf(out)
}

func numelOf(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func TestMaxPool2dMatchesGorgonia(t *testing.T) {
	for _, tc := range []struct {
		k, s, p    int
		n, c, h, w int
		tol        float64
	}{
		// Disjoint windows copy values; overlapping ones sum gradients.
		{2, 2, 0, 3, 2, 6, 8, tolExact},
		{3, 2, 1, 2, 3, 7, 7, tolPool}, // ResNet's stem pool
		{3, 1, 0, 2, 2, 5, 6, tolPool},
		{2, 2, 0, 2, 2, 7, 5, tolExact}, // floor mode drops the last row and column
	} {
		t.Run(fmt.Sprintf("k%d s%d p%d", tc.k, tc.s, tc.p), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, uint64(tc.k*10+tc.p)))
			x := tensor.FromData(randn(rng, tc.n*tc.c*tc.h*tc.w), tc.n, tc.c, tc.h, tc.w)
			l := nn.NewMaxPool2d(tc.k, tc.s, tc.p)
			checkLayer(t, l, x, randn(rng, outLen(l, x)), func(_ *oracle, x *G.Node) *G.Node {
				return G.Must(G.MaxPool2D(x, gt.Shape{tc.k, tc.k}, []int{tc.p, tc.p}, []int{tc.s, tc.s}))
			}, tc.tol)
		})
	}
}

// PyTorch's CPU kernel keeps the first of equal maxima and lets a NaN win,
// so a diverged model shows NaN rather than hiding it.
func TestMaxPool2dTiesAndNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name   string
		window []float32 // one 2×2 window, row-major
		max    float32
		argmax int
	}{
		{"tie", []float32{1, 3, 3, 2}, 3, 1},
		{"all equal", []float32{5, 5, 5, 5}, 5, 0},
		{"negative", []float32{-4, -2, -3, -9}, -2, 1},
		{"NaN", []float32{1, nan, 7, 2}, nan, 1},
		{"NaN first", []float32{nan, 1, 7, 2}, nan, 0},
		{"-Inf", []float32{float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))}, float32(math.Inf(-1)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := nn.NewMaxPool2d(2, 0, 0)
			y := l.Forward(tensor.FromData(tc.window, 1, 1, 2, 2), nn.Pass{})
			if got := y.Data[0]; got != tc.max && !(got != got && tc.max != tc.max) {
				t.Errorf("max %v, want %v", got, tc.max)
			}
			dx := l.Backward(tensor.FromData([]float32{1}, 1, 1, 1, 1))
			want := make([]float32, 4)
			want[tc.argmax] = 1
			if !slices.Equal(dx.Data, want) {
				t.Errorf("gradient went to %v, want %v", dx.Data, want)
			}
		})
	}
}

// AvgPool2d is checked against gorgonia's Conv2d with a constant filter
// that averages each channel on its own (gorgonia has no average pool).
func TestAvgPool2dMatchesGorgonia(t *testing.T) {
	for _, tc := range []struct {
		k, s       int
		n, c, h, w int
	}{
		{2, 2, 2, 3, 6, 8},
		{3, 1, 2, 2, 5, 7},
		{3, 2, 1, 2, 8, 7},
	} {
		t.Run(fmt.Sprintf("k%d s%d", tc.k, tc.s), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, uint64(tc.k)))
			x := tensor.FromData(randn(rng, tc.n*tc.c*tc.h*tc.w), tc.n, tc.c, tc.h, tc.w)
			filter := make([]float32, tc.c*tc.c*tc.k*tc.k)
			for c := range tc.c {
				for j := range tc.k * tc.k {
					filter[(c*tc.c+c)*tc.k*tc.k+j] = 1 / float32(tc.k*tc.k)
				}
			}
			l := nn.NewAvgPool2d(tc.k, tc.s)
			checkLayer(t, l, x, randn(rng, outLen(l, x)), func(o *oracle, x *G.Node) *G.Node {
				f := o.input("filter", filter, tc.c, tc.c, tc.k, tc.k)
				return G.Must(G.Conv2d(x, f, gt.Shape{tc.k, tc.k}, []int{0, 0}, []int{tc.s, tc.s}, []int{1, 1}))
			}, tolPool)
		})
	}
}

func TestGlobalAvgPoolMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 0))
	const n, c, h, w = 3, 4, 5, 7
	x := tensor.FromData(randn(rng, n*c*h*w), n, c, h, w)
	checkLayer(t, nn.NewGlobalAvgPool(), x, randn(rng, n*c), func(_ *oracle, x *G.Node) *G.Node {
		return G.Must(G.Mul(sumAxes(x, 3, 2), G.NewConstant(1.0/(h*w))))
	}, tolPool)
}

// sumAxes sums x over the given axes one at a time, in the order given
// (so list them from the last): gorgonia v0.9.18's Sum over several axes
// at once returns wrong values for all but the first output.
func sumAxes(x *G.Node, axes ...int) *G.Node {
	for _, a := range axes {
		x = G.Must(G.Sum(x, a))
	}
	return x
}
