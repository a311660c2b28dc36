package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"
)

// oracle is one gorgonia float64 graph that recomputes what a layer does,
// so its symbolic gradient can be compared with our hand-written backward.
type oracle struct {
	t *testing.T
	g *G.ExprGraph
}

func newOracle(t *testing.T) *oracle {
	t.Helper()
	return &oracle{t: t, g: G.NewGraph()}
}

// input is a float64 node holding data (float32 values, so both sides see
// identical inputs and only the arithmetic differs).
func (o *oracle) input(name string, data []float32, shape ...int) *G.Node {
	o.t.Helper()
	v := gt.New(gt.WithShape(shape...), gt.WithBacking(widen(data)))
	return G.NewTensor(o.g, G.Float64, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
}

// weightedSum is sum(y ⊙ r): its gradient with respect to y is r, the
// dy we feed our Backward.
func (o *oracle) weightedSum(y *G.Node, r []float32) *G.Node {
	o.t.Helper()
	rn := o.input("r", r, y.Shape()...)
	return G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
}

// run differentiates loss with respect to wrt and evaluates the graph.
func (o *oracle) run(loss *G.Node, wrt ...*G.Node) {
	o.t.Helper()
	if _, err := G.Grad(loss, wrt...); err != nil {
		o.t.Fatalf("gorgonia grad: %v", err)
	}
	vm := G.NewTapeMachine(o.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		o.t.Fatalf("gorgonia run: %v", err)
	}
}

// value is n's forward value as float64s.
func value(t *testing.T, n *G.Node) []float64 {
	t.Helper()
	switch v := n.Value().Data().(type) {
	case []float64:
		return v
	case float64:
		return []float64{v}
	default:
		t.Fatalf("node %s holds %T", n.Name(), v)
		return nil
	}
}

// grad is dloss/dn as float64s.
func grad(t *testing.T, n *G.Node) []float64 {
	t.Helper()
	g, err := n.Grad()
	if err != nil {
		t.Fatalf("grad of %s: %v", n.Name(), err)
	}
	return g.Data().([]float64)
}

// checkClose fails when got is not within tol of want in the relative
// max-norm: max|got-want| / max|want|.
func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var diff, scale float64
	for i, w := range want {
		diff = max(diff, math.Abs(float64(got[i])-w))
		scale = max(scale, math.Abs(w))
	}
	if scale == 0 {
		scale = 1
	}
	if e := diff / scale; !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.3g", what, e, tol)
	}
}

func widen(d []float32) []float64 {
	w := make([]float64, len(d))
	for i, v := range d {
		w[i] = float64(v)
	}
	return w
}

// randn is n standard normal float32s.
func randn(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return d
}

// scaled returns d times k, in float64.
func scaled(d []float64, k float64) []float64 {
	s := make([]float64, len(d))
	for i, v := range d {
		s[i] = v * k
	}
	return s
}
