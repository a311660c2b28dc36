package optim

import (
	"fmt"
	"math"
	"testing"

	"cohort/engine/nn"
)

// adamReference is torch.optim.Adam/AdamW's documented algorithm in float64:
// decoupled decay θ ← θ(1 − γλ) or L2 g ← g + λθ; m ← β1·m + (1−β1)·g;
// v ← β2·v + (1−β2)·g²; θ ← θ − γ·m̂ / (√v̂ + ε) with m̂ = m/(1−β1^t),
// v̂ = v/(1−β2^t).
func adamReference(w []float64, steps int, lr, b1, b2, eps, wd float64, decoupled bool) {
	m := make([]float64, len(w))
	v := make([]float64, len(w))
	for step := 1; step <= steps; step++ {
		g := gradsFloat64(w, step)
		for i := range w {
			if decoupled {
				w[i] *= 1 - lr*wd
			} else {
				g[i] += wd * w[i]
			}
			m[i] = b1*m[i] + (1-b1)*g[i]
			v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
			mHat := m[i] / (1 - math.Pow(b1, float64(step)))
			vHat := v[i] / (1 - math.Pow(b2, float64(step)))
			w[i] -= lr * mHat / (math.Sqrt(vHat) + eps)
		}
	}
}

func TestAdamAgainstReference(t *testing.T) {
	cases := []struct {
		name                string
		lr, b1, b2, eps, wd float32
		decoupled           bool
	}{
		{"adam defaults", 1e-3, 0.9, 0.999, 1e-8, 0, false},
		{"adam l2", 0.05, 0.9, 0.999, 1e-8, 0.1, false},
		// A large eps makes its place relative to the bias correction show.
		{"adam large eps", 0.05, 0.8, 0.99, 0.1, 0, false},
		// β1 < 0.5 takes torch.lerp's other branch.
		{"adam small beta1", 0.05, 0.3, 0.9, 1e-8, 0.01, false},
		{"adamw", 0.1, 0.9, 0.999, 1e-8, 0.1, true},
		{"adamw no decay", 0.1, 0.9, 0.999, 1e-8, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w0 := []float32{0.8, -1.3, 0.05}
			p := newParam("w", w0, make([]float32, len(w0)))
			var opt Optimizer
			var err error
			if c.decoupled {
				opt, err = NewAdamW([]*nn.Param{p}, c.b1, c.b2, c.eps, c.wd)
			} else {
				opt, err = NewAdam([]*nn.Param{p}, c.b1, c.b2, c.eps, c.wd)
			}
			if err != nil {
				t.Fatal(err)
			}
			for step := 1; step <= 3; step++ {
				setGrads([]*nn.Param{p}, step)
				opt.Step(c.lr)
				want := make([]float64, len(w0))
				for i, w := range w0 {
					want[i] = float64(w)
				}
				adamReference(want, step, float64(c.lr), float64(c.b1), float64(c.b2), float64(c.eps), float64(c.wd), c.decoupled)
				closeTo(t, fmt.Sprintf("step %d w", step), p.Value.Data, want, 1e-6)
			}
		})
	}
}

// TestAdamWDecaysWithoutGradient isolates the decoupled decay: with a zero
// gradient both moments stay 0, so the Adam part adds nothing and each step
// only multiplies by 1 − lr·wd = 0.95.
func TestAdamWDecaysWithoutGradient(t *testing.T) {
	p := newParam("w", []float32{2, -4}, []float32{0, 0})
	opt, err := NewAdamW([]*nn.Param{p}, 0.9, 0.999, 1e-8, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		opt.Step(0.1)
	}
	f := math.Pow(0.95, 3)
	closeTo(t, "w", p.Value.Data, []float64{2 * f, -4 * f}, 1e-6)
}
