package optim

import (
	"fmt"
	"slices"
	"testing"

	"cohort/engine/nn"
)

// TestSGDHandComputed checks three steps from w = [1, 2] with a constant
// gradient [1, -2] and lr 0.1 against values worked out by hand.
func TestSGDHandComputed(t *testing.T) {
	cases := []struct {
		name                  string
		momentum, weightDecay float32
		nesterov              bool
		want                  [3][2]float64
	}{
		// w -= 0.1·g
		{"plain", 0, 0, false, [3][2]float64{{0.9, 2.2}, {0.8, 2.4}, {0.7, 2.6}}},
		// buf = g, 1.9g, 2.71g; w -= 0.1·buf
		{"momentum", 0.9, 0, false, [3][2]float64{{0.9, 2.2}, {0.71, 2.58}, {0.439, 3.122}}},
		// d = g + 0.9·buf = 1.9g, 2.71g, 3.439g; w -= 0.1·d
		{"nesterov", 0.9, 0, true, [3][2]float64{{0.81, 2.38}, {0.539, 2.922}, {0.1951, 3.6098}}},
		// d = g + 0.1·w: [1.1, -1.8], [1.089, -1.782], [1.07811, -1.76418]
		{"weight decay", 0, 0.1, false, [3][2]float64{{0.89, 2.18}, {0.7811, 2.3582}, {0.673289, 2.534618}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newParam("w", []float32{1, 2}, []float32{1, -2})
			opt, err := NewSGD([]*nn.Param{p}, c.momentum, c.weightDecay, c.nesterov)
			if err != nil {
				t.Fatal(err)
			}
			for step, want := range c.want {
				opt.Step(0.1)
				closeTo(t, fmt.Sprintf("step %d w", step+1), p.Value.Data, want[:], 1e-6)
			}
			if p.Grad.Data[0] != 1 || p.Grad.Data[1] != -2 {
				t.Errorf("Step modified the gradient: %v", p.Grad.Data)
			}
		})
	}
}

// sgdReference is torch.optim.SGD's documented algorithm in float64,
// including the buffer starting as a copy of the first gradient.
func sgdReference(w []float64, grad func(w []float64, step int) []float64, steps int, lr, momentum, wd float64, nesterov bool) {
	var buf []float64
	for step := 1; step <= steps; step++ {
		d := grad(w, step)
		for i := range d {
			d[i] += wd * w[i]
		}
		if momentum != 0 {
			if buf == nil {
				buf = slices.Clone(d)
			} else {
				for i := range buf {
					buf[i] = momentum*buf[i] + d[i]
				}
			}
			for i := range d {
				if nesterov {
					d[i] += momentum * buf[i]
				} else {
					d[i] = buf[i]
				}
			}
		}
		for i := range w {
			w[i] -= lr * d[i]
		}
	}
}

// TestSGDAgainstReference runs every option at once with gradients that
// depend on the weights, against the float64 reference.
func TestSGDAgainstReference(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		p := newParam("w", []float32{0.8, -1.3}, []float32{0, 0})
		opt, err := NewSGD([]*nn.Param{p}, 0.7, 0.05, nesterov)
		if err != nil {
			t.Fatal(err)
		}
		const steps = 3
		for step := 1; step <= steps; step++ {
			setGrads([]*nn.Param{p}, step)
			opt.Step(0.2)
		}
		want := []float64{float64(float32(0.8)), float64(float32(-1.3))}
		sgdReference(want, gradsFloat64, steps, float64(float32(0.2)), float64(float32(0.7)), float64(float32(0.05)), nesterov)
		closeTo(t, fmt.Sprintf("nesterov=%v w", nesterov), p.Value.Data, want, 2e-6)
	}
}
