package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// newParam returns a flat param with copies of w and g.
func newParam(name string, w, g []float32) *nn.Param {
	return &nn.Param{
		Name:  name,
		Value: tensor.FromData(slices.Clone(w), len(w)),
		Grad:  tensor.FromData(slices.Clone(g), len(g)),
	}
}

// closeTo fails when got and want differ by more than tol·max(1, |want|).
func closeTo(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*math.Max(1, math.Abs(want[i])) {
			t.Errorf("%s[%d] = %.9g, want %.9g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// setGrads fills every gradient from the current weights and the step, so
// runs that start from the same state see the same gradients.
func setGrads(params []*nn.Param, step int) {
	for _, p := range params {
		for i, w := range p.Value.Data {
			p.Grad.Data[i] = w*w - 0.5 + 0.03*float32(step) - 0.01*float32(i)
		}
	}
}

// gradsFloat64 is setGrads' formula in float64 for the references.
func gradsFloat64(w []float64, step int) []float64 {
	g := make([]float64, len(w))
	for i, wi := range w {
		g[i] = wi*wi - 0.5 + 0.03*float64(step) - 0.01*float64(i)
	}
	return g
}

func TestConstructorsReject(t *testing.T) {
	good := func() []*nn.Param { return []*nn.Param{newParam("a", []float32{1, 2}, []float32{0, 0})} }
	mismatched := good()
	mismatched[0].Grad = tensor.New(3)
	cases := []struct {
		name string
		make func() error
	}{
		{"empty params", func() error { _, err := NewSGD(nil, 0, 0, false); return err }},
		{"nil param", func() error { _, err := NewSGD([]*nn.Param{nil}, 0, 0, false); return err }},
		{"no name", func() error {
			_, err := NewSGD([]*nn.Param{newParam("", []float32{1}, []float32{1})}, 0, 0, false)
			return err
		}},
		{"duplicate name", func() error { _, err := NewSGD(append(good(), good()...), 0, 0, false); return err }},
		{"nil grad", func() error { p := good(); p[0].Grad = nil; _, err := NewSGD(p, 0, 0, false); return err }},
		{"grad shape", func() error { _, err := NewAdam(mismatched, 0.9, 0.999, 1e-8, 0); return err }},
		{"negative momentum", func() error { _, err := NewSGD(good(), -0.1, 0, false); return err }},
		{"nan weight decay", func() error { _, err := NewSGD(good(), 0, float32(math.NaN()), false); return err }},
		{"nesterov without momentum", func() error { _, err := NewSGD(good(), 0, 0, true); return err }},
		{"beta1 = 1", func() error { _, err := NewAdam(good(), 1, 0.999, 1e-8, 0); return err }},
		{"beta2 > 1", func() error { _, err := NewAdamW(good(), 0.9, 1.5, 1e-8, 0); return err }},
		{"negative eps", func() error { _, err := NewAdamW(good(), 0.9, 0.999, -1, 0); return err }},
		{"inf weight decay", func() error { _, err := NewAdam(good(), 0.9, 0.999, 1e-8, float32(math.Inf(1))); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.make(); !errors.Is(err, ErrInvalidOptimizer) {
				t.Fatalf("err = %v, want ErrInvalidOptimizer", err)
			}
		})
	}
}

func TestStepAllocatesNothing(t *testing.T) {
	params := func() []*nn.Param {
		return []*nn.Param{newParam("a", []float32{1, 2, 3}, []float32{0.1, -0.2, 0.3}), newParam("b", []float32{4}, []float32{1})}
	}
	sgd, _ := NewSGD(params(), 0, 0.1, false)
	nesterov, _ := NewSGD(params(), 0.9, 0.1, true)
	adam, _ := NewAdam(params(), 0.9, 0.999, 1e-8, 0.1)
	adamw, _ := NewAdamW(params(), 0.9, 0.999, 1e-8, 0.1)
	for name, o := range map[string]Optimizer{"sgd": sgd, "nesterov": nesterov, "adam": adam, "adamw": adamw} {
		if n := testing.AllocsPerRun(20, func() { o.Step(0.01) }); n != 0 {
			t.Errorf("%s: Step allocates %v times", name, n)
		}
	}
}
