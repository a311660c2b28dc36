package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"

	"cohort/engine/tensor"
)

// Residual is y = main(x) + shortcut(x), optionally followed by a ReLU:
// the skeleton of a ResNet block. A nil Shortcut is the identity.
type Residual struct {
	// Main is the residual branch.
	Main *Sequential
	// Shortcut projects x when Main changes its shape; nil passes x as is.
	Shortcut *Sequential

	relu   *ReLU // nil when the block ends without one
	params []*Param
	sum    *tensor.Tensor
	dx     *tensor.Tensor
}

// NewResidual returns the block main(x) + shortcut(x), then a ReLU when
// relu is set. Its params are main's then shortcut's, under the names
// their layers were given.
func NewResidual(main, shortcut *Sequential, relu bool) *Residual {
	if main.SkipInputGrad || (shortcut != nil && shortcut.SkipInputGrad) {
		panic("nn: residual: a branch must not skip its input gradient: the block's dx needs it")
	}
	r := &Residual{Main: main, Shortcut: shortcut, params: main.Params()}
	if shortcut != nil {
		r.params = append(r.params, shortcut.Params()...)
	}
	if relu {
		r.relu = NewReLU()
	}
	return r
}

// NewBasicBlock returns torchvision's (and ClassyVision's) ResNet basic
// block in → out channels with the given stride: conv3×3-BN-ReLU-conv3×3-
// BN plus a shortcut, then a ReLU. The shortcut is conv1×1-BN when the
// stride or the channel count changes, the identity otherwise. Names
// follow torchvision under prefix: "<prefix>.conv1.weight", ".bn1.*",
// ".conv2.*", ".bn2.*", ".downsample.0.weight", ".downsample.1.*".
func NewBasicBlock(impl blas.Float32, rng *rand.Rand, prefix string, in, out, stride int) *Residual {
	main := NewSequential(
		NewConv2d(impl, rng, prefix+".conv1", Conv2dSpec{In: in, Out: out, Kernel: 3, Stride: stride, Padding: 1}),
		NewBatchNorm(prefix+".bn1", out),
		NewReLU(),
		NewConv2d(impl, rng, prefix+".conv2", Conv2dSpec{In: out, Out: out, Kernel: 3, Padding: 1}),
		NewBatchNorm(prefix+".bn2", out),
	)
	return NewResidual(main, projection(impl, rng, prefix, in, out, stride), true)
}

// NewBottleneck returns torchvision's (and ClassyVision's) ResNet
// bottleneck block in → out channels through a mid-wide 3×3 convolution
// that carries the stride: conv1×1-BN-ReLU-conv3×3-BN-ReLU-conv1×1-BN plus
// the shortcut NewBasicBlock uses, then a ReLU. Names follow torchvision:
// "<prefix>.conv1" … ".conv3", ".bn1" … ".bn3", ".downsample.*".
func NewBottleneck(impl blas.Float32, rng *rand.Rand, prefix string, in, mid, out, stride int) *Residual {
	main := NewSequential(
		NewConv2d(impl, rng, prefix+".conv1", Conv2dSpec{In: in, Out: mid, Kernel: 1}),
		NewBatchNorm(prefix+".bn1", mid),
		NewReLU(),
		NewConv2d(impl, rng, prefix+".conv2", Conv2dSpec{In: mid, Out: mid, Kernel: 3, Stride: stride, Padding: 1}),
		NewBatchNorm(prefix+".bn2", mid),
		NewReLU(),
		NewConv2d(impl, rng, prefix+".conv3", Conv2dSpec{In: mid, Out: out, Kernel: 1}),
		NewBatchNorm(prefix+".bn3", out),
	)
	return NewResidual(main, projection(impl, rng, prefix, in, out, stride), true)
}

// projection is a block's shortcut: conv1×1-BN when the stride or the
// channel count changes, nil (the identity) otherwise.
func projection(impl blas.Float32, rng *rand.Rand, prefix string, in, out, stride int) *Sequential {
	if stride == 1 && in == out {
		return nil
	}
	return NewSequential(
		NewConv2d(impl, rng, prefix+".downsample.0", Conv2dSpec{In: in, Out: out, Kernel: 1, Stride: stride}),
		NewBatchNorm(prefix+".downsample.1", out),
	)
}

// Forward adds the two branches (and applies the ReLU).
func (r *Residual) Forward(x *tensor.Tensor, p Pass) *tensor.Tensor {
	a := r.Main.Forward(x, p)
	s := x
	if r.Shortcut != nil {
		s = r.Shortcut.Forward(x, p)
	}
	if !slices.Equal(a.Shape, s.Shape) {
		panic(fmt.Sprintf("nn: residual: main branch gives %v, shortcut %v", a.Shape, s.Shape))
	}
	sum := tensor.Ensure(&r.sum, a.Shape...)
	for i, v := range a.Data {
		sum.Data[i] = v + s.Data[i]
	}
	if r.relu != nil {
		return r.relu.Forward(sum, p)
	}
	return sum
}

// Backward sends the gradient of the sum into both branches and returns
// the sum of their input gradients.
func (r *Residual) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if r.relu != nil {
		dy = r.relu.Backward(dy)
	}
	// The shortcut runs first: Main's Backward may be the slower, and dy
	// (the ReLU's buffer) is read by both, never written.
	ds := dy
	if r.Shortcut != nil {
		ds = r.Shortcut.Backward(dy)
	}
	dm := r.Main.Backward(dy)
	dx := tensor.Ensure(&r.dx, dm.Shape...)
	for i, v := range dm.Data {
		dx.Data[i] = v + ds.Data[i]
	}
	return dx
}

// Params lists the main branch's params, then the shortcut's.
func (r *Residual) Params() []*Param { return r.params }

// EndsWithReLU reports whether a ReLU follows the sum (another backend
// rebuilding the block needs to know).
func (r *Residual) EndsWithReLU() bool { return r.relu != nil }

// Buffers lists the main branch's buffers, then the shortcut's.
func (r *Residual) Buffers() []*Param {
	bs := Buffers(r.Main)
	if r.Shortcut != nil {
		bs = append(bs, Buffers(r.Shortcut)...)
	}
	return bs
}

// Cost is the sum of both branches' costs; the addition and the ReLU are
// not counted, as elsewhere.
func (r *Residual) Cost(in []int) ([]int, int64) {
	out, flops := r.Main.Cost(in)
	if r.Shortcut != nil {
		sout, sflops := r.Shortcut.Cost(in)
		if !slices.Equal(out, sout) {
			panic(fmt.Sprintf("nn: residual: main branch gives %v, shortcut %v", out, sout))
		}
		flops += sflops
	} else if !slices.Equal(out, in) {
		panic(fmt.Sprintf("nn: residual: main branch gives %v for input %v without a shortcut", out, in))
	}
	return out, flops
}
