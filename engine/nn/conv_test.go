package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// tolConv bounds convolution errors: GEMMs over up to 5·5·2 = 50 terms,
// twice chained for dx (seen 2e-7).
const tolConv = 2e-6

// convOracle is gorgonia's Conv2d (its own im2col and GEMM) plus the bias
// broadcast over N, H and W.
func convOracle(o *oracle, x *G.Node, c *nn.Conv2d) (y, w, b *G.Node) {
	s := c.Spec
	w = o.input(c.Weight.Name, c.Weight.Value.Data, c.Weight.Value.Shape...)
	y = G.Must(G.Conv2d(x, w, gt.Shape{s.Kernel, s.Kernel}, []int{s.Padding, s.Padding}, []int{s.Stride, s.Stride}, []int{1, 1}))
	if c.Bias != nil {
		b = o.input(c.Bias.Name, c.Bias.Value.Data, s.Out)
		y = G.Must(G.BroadcastAdd(y, b, nil, []byte{0, 2, 3}))
	}
	return y, w, b
}

func TestConv2dMatchesGorgonia(t *testing.T) {
	for _, tc := range []struct {
		spec    nn.Conv2dSpec
		n, h, w int
	}{
		{nn.Conv2dSpec{In: 2, Out: 3, Kernel: 3, Padding: 1, Bias: true}, 2, 6, 5},
		{nn.Conv2dSpec{In: 3, Out: 4, Kernel: 3, Stride: 2, Padding: 1}, 3, 7, 7},
		{nn.Conv2dSpec{In: 1, Out: 2, Kernel: 5, Bias: true}, 2, 9, 8},
		{nn.Conv2dSpec{In: 2, Out: 3, Kernel: 1, Stride: 2}, 2, 6, 6},
		{nn.Conv2dSpec{In: 2, Out: 2, Kernel: 4, Stride: 3, Padding: 2, Bias: true}, 2, 8, 10},
	} {
		t.Run(fmt.Sprintf("%+v", tc.spec), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, uint64(tc.h*tc.w)))
			c := nn.NewConv2d(cpu.BLAS(), rng, "conv", tc.spec)
			x := tensor.FromData(randn(rng, tc.n*tc.spec.In*tc.h*tc.w), tc.n, tc.spec.In, tc.h, tc.w)
			out, _ := c.Cost(x.Shape[1:])
			r := randn(rng, tc.n*out[0]*out[1]*out[2])

			o := newOracle(t)
			gx := o.input("x", x.Data, x.Shape...)
			gy, gw, gb := convOracle(o, gx, c)
			wrt := []*G.Node{gx, gw}
			if gb != nil {
				wrt = append(wrt, gb)
			}
			o.run(o.weightedSum(gy, r), wrt...)

			y := c.Forward(x, nn.Pass{})
			if want := append([]int{tc.n}, out...); !slices.Equal(y.Shape, want) || !slices.Equal(gy.Shape(), gt.Shape(want)) {
				t.Fatalf("y shape %v, gorgonia %v, Cost %v", y.Shape, gy.Shape(), want)
			}
			checkClose(t, "y", y.Data, value(t, gy), tolConv)
			dy := tensor.FromData(r, y.Shape...)
			checkClose(t, "dx", c.Backward(dy).Data, grad(t, gx), tolConv)
			checkClose(t, "dW", c.Weight.Grad.Data, grad(t, gw), tolConv)
			if gb != nil {
				checkClose(t, "db", c.Bias.Grad.Data, grad(t, gb), tolConv)
			}
			// BackwardParams must add the same parameter gradients again.
			c.BackwardParams(dy)
			checkClose(t, "dW twice", c.Weight.Grad.Data, scaled(grad(t, gw), 2), tolConv)
			if gb != nil {
				checkClose(t, "db twice", c.Bias.Grad.Data, scaled(grad(t, gb), 2), tolConv)
			}
		})
	}
}

// Init must follow PyTorch's nn.Conv2d: U(±1/sqrt(In·k²)) for both
// tensors, PyTorch's shapes and state_dict names, and no bias tensor when
// the spec has none.
func TestConv2dInit(t *testing.T) {
	const in, out, k = 8, 256, 3
	bound := float32(1 / math.Sqrt(in*k*k))
	c := nn.NewConv2d(cpu.BLAS(), rand.New(rand.NewPCG(6, 6)), "features.0", nn.Conv2dSpec{In: in, Out: out, Kernel: k, Bias: true})
	for _, tc := range []struct {
		p     *nn.Param
		name  string
		shape []int
	}{{c.Weight, "features.0.weight", []int{out, in, k, k}}, {c.Bias, "features.0.bias", []int{out}}} {
		if tc.p.Name != tc.name || !slices.Equal(tc.p.Value.Shape, tc.shape) {
			t.Errorf("param %q %v, want %q %v", tc.p.Name, tc.p.Value.Shape, tc.name, tc.shape)
		}
		lo, hi := slices.Min(tc.p.Value.Data), slices.Max(tc.p.Value.Data)
		// 256 draws reach within 10% of both ends with probability
		// 1 - 2·0.95²⁵⁶ > 0.999; the seed is fixed, so this is stable.
		if lo < -bound || hi > bound || lo > -0.9*bound || hi < 0.9*bound {
			t.Errorf("%s spans [%v, %v], want about [%v, %v]", tc.name, lo, hi, -bound, bound)
		}
	}
	noBias := nn.NewConv2d(cpu.BLAS(), rand.New(rand.NewPCG(6, 6)), "c", nn.Conv2dSpec{In: 1, Out: 1, Kernel: 1})
	if noBias.Bias != nil || len(noBias.Params()) != 1 || noBias.Spec.Stride != 1 {
		t.Errorf("bias-free conv: bias %v, %d params, stride %d", noBias.Bias, len(noBias.Params()), noBias.Spec.Stride)
	}
}
