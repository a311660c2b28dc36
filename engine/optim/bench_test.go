package optim

import (
	"fmt"
	"testing"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// benchParams returns 669,706 parameters split like a small CNN's
// conv/bias/linear tensors, with non-zero gradients.
func benchParams() []*nn.Param {
	sizes := []int{432, 16, 4608, 32, 73728, 128, 590336, 426}
	params := make([]*nn.Param, len(sizes))
	for i, n := range sizes {
		p := &nn.Param{Name: fmt.Sprintf("%d.weight", i), Value: tensor.New(n), Grad: tensor.New(n)}
		for j := range n {
			p.Value.Data[j] = float32(j%97) * 1e-3
			p.Grad.Data[j] = float32(j%89-44) * 1e-4
		}
		params[i] = p
	}
	return params
}

func benchmarkStep(b *testing.B, opt Optimizer) {
	b.ReportAllocs()
	for b.Loop() {
		opt.Step(1e-3)
	}
}

// BenchmarkSGDMomentumStep is the ResNet-style default: momentum 0.9 and
// weight decay 1e-4 over 669,706 params.
func BenchmarkSGDMomentumStep(b *testing.B) {
	opt, err := NewSGD(benchParams(), 0.9, 1e-4, false)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkStep(b, opt)
}

// BenchmarkAdamWStep is AdamW over the same 669,706 params.
func BenchmarkAdamWStep(b *testing.B) {
	opt, err := NewAdamW(benchParams(), 0.9, 0.999, 1e-8, 0.05)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkStep(b, opt)
}
