package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"

	"cohort/engine/tensor"
)

// Linear is a fully connected layer in PyTorch's layout: Weight is
// [Out, In], Bias is [Out] and y = x·Weightᵀ + Bias. Inputs of any rank
// are read as N×In, so a Linear may follow a convolution without a Flatten.
type Linear struct {
	// In and Out are the feature counts of one input and one output row.
	In, Out int
	// Weight ([Out, In]) and Bias ([Out]) are the learnable parameters.
	Weight, Bias *Param

	params []*Param // Weight and Bias, built once so Params does not allocate
	impl   blas.Float32
	x      *tensor.Tensor // input of the last Forward, kept for Backward
	y      *tensor.Tensor
	dx     *tensor.Tensor
}

// NewLinear returns an in→out Linear whose params are named
// "<prefix>.weight" and "<prefix>.bias", initialised like PyTorch's
// nn.Linear: both uniform in ±1/sqrt(in), drawn from rng.
func NewLinear(impl blas.Float32, rng *rand.Rand, prefix string, in, out int) *Linear {
	if in <= 0 || out <= 0 {
		panic(fmt.Sprintf("nn: linear %s: sizes %d→%d must be positive", prefix, in, out))
	}
	bound := 1 / math.Sqrt(float64(in))
	l := &Linear{
		In:     in,
		Out:    out,
		Weight: &Param{Name: prefix + ".weight", Value: tensor.New(out, in), Grad: tensor.New(out, in)},
		Bias:   &Param{Name: prefix + ".bias", Value: tensor.New(out), Grad: tensor.New(out)},
		impl:   impl,
	}
	l.params = []*Param{l.Weight, l.Bias}
	uniform(rng, l.Weight.Value.Data, bound)
	uniform(rng, l.Bias.Value.Data, bound)
	return l
}

// uniform fills d from U(-bound, bound).
func uniform(rng *rand.Rand, d []float32, bound float64) {
	for i := range d {
		d[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// Forward computes x·Wᵀ + b. The bias is written first and the GEMM adds
// onto it (beta = 1), which saves a second pass over the output.
func (l *Linear) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	if x.Cols() != l.In {
		panic(fmt.Sprintf("nn: linear %s: input %v has %d features, want %d", l.Weight.Name, x.Shape, x.Cols(), l.In))
	}
	n := x.Rows()
	y := tensor.Ensure(&l.y, n, l.Out)
	b := l.Bias.Value.Data
	for i := 0; i < n; i++ {
		copy(y.Data[i*l.Out:(i+1)*l.Out], b)
	}
	tensor.Gemm(l.impl, false, true, 1, x, l.Weight.Value, 1, y)
	l.x = x
	return y
}

// Backward accumulates dW += dyᵀ·x and db += colsum(dy) and returns
// dx = dy·W in the shape of the input.
func (l *Linear) Backward(dy *tensor.Tensor) *tensor.Tensor {
	l.BackwardParams(dy)
	dx := tensor.Ensure(&l.dx, l.x.Shape...)
	tensor.Gemm(l.impl, false, false, 1, dy, l.Weight.Value, 0, dx)
	return dx
}

// BackwardParams accumulates the parameter gradients only. Sequential uses
// it for a first layer whose input is data: dx would be its largest GEMM,
// and nobody reads it.
func (l *Linear) BackwardParams(dy *tensor.Tensor) {
	tensor.Gemm(l.impl, true, false, 1, dy, l.x, 1, l.Weight.Grad)
	db := l.Bias.Grad.Data
	for r := 0; r < dy.Rows(); r++ {
		row := dy.Data[r*l.Out : (r+1)*l.Out]
		for j, v := range row {
			db[j] += v
		}
	}
}

// Params returns the weight and the bias.
func (l *Linear) Params() []*Param { return l.params }

// Cost gives [Out] and 2·In·Out FLOPs per sample; the bias add is not
// counted, by the multiply-add convention of Layer.Cost.
func (l *Linear) Cost(in []int) ([]int, int64) {
	if numel(in) != l.In {
		panic(fmt.Sprintf("nn: linear %s: input shape %v has %d features, want %d", l.Weight.Name, in, numel(in), l.In))
	}
	return []int{l.Out}, 2 * int64(l.In) * int64(l.Out)
}
