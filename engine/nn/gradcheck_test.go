package nn_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"

	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// Relative max-norm error bounds against gorgonia's float64 gradients.
// Inputs are float32 values on both sides, so the error is our float32
// arithmetic only: about 1e-7 per rounding, growing with the length of
// the sums in a GEMM (a few dozen terms here).
const (
	tolExact  = 0    // ReLU and Flatten copy or zero values: no rounding
	tolScale  = 2e-7 // Dropout: one float32 multiply per element (seen 4e-8)
	tolLinear = 1e-6 // GEMMs over ≤ 24 terms (seen 1.1e-7)
	tolCE     = 2e-7 // exp/log in float64, softmax stored in float32 (seen 3e-8)
	tolChain  = 2e-6 // three Linears, two ReLUs and the loss (seen 2e-7)
)

func TestLinearMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, c, h, out = 5, 4, 6, 3 // input n×c×h is read as n×24
	in := c * h
	l := nn.NewLinear(cpu.BLAS(), rng, "fc", in, out)
	x := tensor.FromData(randn(rng, n*in), n, c, h)
	r := randn(rng, n*out)

	o := newOracle(t)
	gx := o.input("x", x.Data, n, in)
	gw := o.input("w", l.Weight.Value.Data, out, in)
	gb := o.input("b", l.Bias.Value.Data, out)
	gy := G.Must(G.BroadcastAdd(G.Must(G.Mul(gx, G.Must(G.Transpose(gw)))), gb, nil, []byte{0}))
	o.run(o.weightedSum(gy, r), gx, gw, gb)

	y := l.Forward(x, nn.Pass{})
	checkClose(t, "y", y.Data, value(t, gy), tolLinear)
	// A second Backward on the same forward must add the same gradients
	// again while dx is recomputed, not summed.
	for k := 1; k <= 2; k++ {
		dx := l.Backward(tensor.FromData(r, n, out))
		if len(dx.Shape) != 3 || dx.Shape[1] != c || dx.Shape[2] != h {
			t.Errorf("dx shape %v, want input shape %v", dx.Shape, x.Shape)
		}
		checkClose(t, "dx", dx.Data, grad(t, gx), tolLinear)
		checkClose(t, "dW", l.Weight.Grad.Data, scaled(grad(t, gw), float64(k)), tolLinear)
		checkClose(t, "db", l.Bias.Grad.Data, scaled(grad(t, gb), float64(k)), tolLinear)
	}
}

func TestReLUMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, f = 6, 7
	x := tensor.FromData(randn(rng, n*f), n, f)
	r := randn(rng, n*f)

	o := newOracle(t)
	gx := o.input("x", x.Data, n, f)
	gy := G.Must(G.Rectify(gx))
	o.run(o.weightedSum(gy, r), gx)

	l := nn.NewReLU()
	checkClose(t, "y", l.Forward(x, nn.Pass{}).Data, value(t, gy), tolExact)
	checkClose(t, "dx", l.Backward(tensor.FromData(r, n, f)).Data, grad(t, gx), tolExact)
}

func TestFlattenMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, c, h, w = 3, 2, 3, 4
	x := tensor.FromData(randn(rng, n*c*h*w), n, c, h, w)
	r := randn(rng, n*c*h*w)

	o := newOracle(t)
	gx := o.input("x", x.Data, n, c, h, w)
	gy := G.Must(G.Reshape(gx, []int{n, c * h * w}))
	o.run(o.weightedSum(gy, r), gx)

	l := nn.NewFlatten()
	y := l.Forward(x, nn.Pass{})
	if len(y.Shape) != 2 || y.Shape[0] != n || y.Shape[1] != c*h*w {
		t.Errorf("y shape %v, want [%d %d]", y.Shape, n, c*h*w)
	}
	if &y.Data[0] != &x.Data[0] {
		t.Error("Flatten copied its input; want a view")
	}
	checkClose(t, "y", y.Data, value(t, gy), tolExact)
	dx := l.Backward(tensor.FromData(r, n, c*h*w))
	if len(dx.Shape) != 4 || dx.Shape[3] != w {
		t.Errorf("dx shape %v, want %v", dx.Shape, x.Shape)
	}
	checkClose(t, "dx", dx.Data, grad(t, gx), tolExact)
}

func TestDropoutMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, f, p = 50, 200, 0.3
	x := tensor.FromData(randn(rng, n*f), n, f)
	r := randn(rng, n*f)

	l, err := nn.NewDropout(p)
	if err != nil {
		t.Fatal(err)
	}
	y := l.Forward(x, nn.Pass{Train: true, Rand: rand.New(rand.NewPCG(9, 10))})
	// Recover the mask from y/x (x has no zeros) and give gorgonia the
	// same constant mask/(1-p).
	mask := make([]float32, n*f)
	dropped := 0
	for i := range mask {
		if y.Data[i] == 0 {
			dropped++
		} else {
			mask[i] = 1 / (1 - p)
		}
	}
	if frac := float64(dropped) / float64(n*f); frac < p-0.02 || frac > p+0.02 {
		t.Errorf("dropped %.3f of the elements, want %.1f ± 0.02", frac, p)
	}

	o := newOracle(t)
	gx := o.input("x", x.Data, n, f)
	gy := G.Must(G.HadamardProd(gx, o.input("mask", mask, n, f)))
	o.run(o.weightedSum(gy, r), gx)

	checkClose(t, "y", y.Data, value(t, gy), tolScale)
	checkClose(t, "dx", l.Backward(tensor.FromData(r, n, f)).Data, grad(t, gx), tolScale)
}

func TestSoftmaxCrossEntropyMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n, k = 8, 5
	logits := randn(rng, n*k)
	for i := range logits {
		logits[i] *= 4 // confident rows too, not only near-uniform ones
	}
	labels := make([]int32, n)
	onehot := make([]float32, n*k)
	for i := range labels {
		labels[i] = int32(rng.IntN(k))
		onehot[i*k+int(labels[i])] = 1
	}

	o := newOracle(t)
	gx := o.input("logits", logits, n, k)
	ce := ceOracle(o, gx, onehot)
	o.run(ce, gx)

	l := nn.NewSoftmaxCrossEntropy()
	loss, err := l.Forward(tensor.FromData(logits, n, k), labels)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "loss", []float32{loss}, value(t, ce), tolCE)
	checkClose(t, "dlogits", l.Backward().Data, grad(t, gx), tolCE)
}

// ceOracle is gorgonia's mean over rows of -sum(onehot ⊙ logsoftmax(x)).
func ceOracle(o *oracle, logits *G.Node, onehot []float32) *G.Node {
	ls := G.Must(G.LogSoftMax(logits))
	oh := o.input("onehot", onehot, logits.Shape()...)
	return G.Must(G.Neg(G.Must(G.Mean(G.Must(G.Sum(G.Must(G.HadamardProd(ls, oh)), 1))))))
}

func TestSequentialMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const n, in, h1, h2, k = 6, 10, 8, 7, 4
	impl := cpu.BLAS()
	fcs := []*nn.Linear{
		nn.NewLinear(impl, rng, "0", in, h1),
		nn.NewLinear(impl, rng, "2", h1, h2),
		nn.NewLinear(impl, rng, "4", h2, k),
	}
	x := tensor.FromData(randn(rng, n*in), n, in)
	labels := make([]int32, n)
	onehot := make([]float32, n*k)
	for i := range labels {
		labels[i] = int32(rng.IntN(k))
		onehot[i*k+int(labels[i])] = 1
	}

	o := newOracle(t)
	gx := o.input("x", x.Data, n, in)
	h := gx
	var wrt []*G.Node
	for i, fc := range fcs {
		if i > 0 {
			h = G.Must(G.Rectify(h))
		}
		w := o.input(fc.Weight.Name, fc.Weight.Value.Data, fc.Out, fc.In)
		b := o.input(fc.Bias.Name, fc.Bias.Value.Data, fc.Out)
		h = G.Must(G.BroadcastAdd(G.Must(G.Mul(h, G.Must(G.Transpose(w)))), b, nil, []byte{0}))
		wrt = append(wrt, w, b)
	}
	ce := ceOracle(o, h, onehot)
	o.run(ce, append(wrt, gx)...)

	for _, skip := range []bool{false, true} {
		for _, fc := range fcs {
			fc.Weight.Grad.Zero()
			fc.Bias.Grad.Zero()
		}
		model := nn.NewSequential(fcs[0], nn.NewReLU(), fcs[1], nn.NewReLU(), fcs[2])
		model.SkipInputGrad = skip
		loss := nn.NewSoftmaxCrossEntropy()
		l, err := loss.Forward(model.Forward(x, nn.Pass{Train: true}), labels)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, "loss", []float32{l}, value(t, ce), tolChain)
		var order []int
		dx := model.BackwardNotify(loss.Backward(), func(i int) { order = append(order, i) })
		if want := []int{4, 2, 0}; !slices.Equal(order, want) {
			t.Errorf("skip=%v: ready order %v, want %v", skip, order, want)
		}
		for i, p := range model.Params() {
			checkClose(t, p.Name, p.Grad.Data, grad(t, wrt[i]), tolChain)
		}
		if skip {
			if dx != nil {
				t.Error("SkipInputGrad: Backward returned a dx, want nil")
			}
		} else {
			checkClose(t, "dx", dx.Data, grad(t, gx), tolChain)
		}
	}
}
