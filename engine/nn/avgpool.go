package nn

import (
	"fmt"

	"cohort/engine/tensor"
)

// AvgPool2d is PyTorch's nn.AvgPool2d without padding (floor mode) over
// N×C×H×W: the mean of each Kernel×Kernel window.
type AvgPool2d struct {
	// Kernel and Stride are the window geometry.
	Kernel, Stride int

	name  string
	g     window
	in    []int // shape of the last Forward's input
	y, dx *tensor.Tensor
}

// NewAvgPool2d returns an average pool; stride 0 means stride = kernel, as
// in PyTorch.
func NewAvgPool2d(kernel, stride int) *AvgPool2d {
	if stride == 0 {
		stride = kernel
	}
	if kernel <= 0 || stride < 0 {
		panic(fmt.Sprintf("nn: avgpool: bad kernel %d, stride %d", kernel, stride))
	}
	return &AvgPool2d{Kernel: kernel, Stride: stride, name: fmt.Sprintf("avgpool %d/%d", kernel, stride)}
}

// Forward returns the window means.
func (a *AvgPool2d) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	n, g := batchWindow(a.name, x, a.Kernel, a.Stride, 0)
	y := tensor.Ensure(&a.y, n, g.c, g.oh, g.ow)
	inv := 1 / float32(g.k*g.k)
	inPlane, outPlane := g.inPlane(), g.outPlane()
	for pl := range n * g.c {
		src := x.Data[pl*inPlane : (pl+1)*inPlane]
		dst := y.Data[pl*outPlane : (pl+1)*outPlane]
		for oh := range g.oh {
			for ow := range g.ow {
				var sum float32
				for h := oh * g.s; h < oh*g.s+g.k; h++ {
					for _, v := range src[h*g.w+ow*g.s:][:g.k] {
						sum += v
					}
				}
				dst[oh*g.ow+ow] = sum * inv
			}
		}
	}
	a.g, a.in = g, append(a.in[:0], x.Shape...)
	return y
}

// Backward spreads each output gradient evenly over its window.
func (a *AvgPool2d) Backward(dy *tensor.Tensor) *tensor.Tensor {
	g := a.g
	dx := tensor.Ensure(&a.dx, a.in...)
	dx.Zero()
	inv := 1 / float32(g.k*g.k)
	inPlane, outPlane := g.inPlane(), g.outPlane()
	for pl := range dy.Rows() * g.c {
		src := dy.Data[pl*outPlane : (pl+1)*outPlane]
		dst := dx.Data[pl*inPlane : (pl+1)*inPlane]
		for oh := range g.oh {
			for ow := range g.ow {
				d := src[oh*g.ow+ow] * inv
				for h := oh * g.s; h < oh*g.s+g.k; h++ {
					row := dst[h*g.w+ow*g.s:][:g.k]
					for j := range row {
						row[j] += d
					}
				}
			}
		}
	}
	return dx
}

// Params returns nil: pooling has no parameters.
func (a *AvgPool2d) Params() []*Param { return nil }

// Cost gives [C, OH, OW] and one add per window element, Kernel² per
// output, as ClassyVision's profiler counts pooling.
func (a *AvgPool2d) Cost(in []int) ([]int, int64) {
	return poolCost(windowOf(a.name, in, a.Kernel, a.Stride, 0))
}

// GlobalAvgPool averages each channel over its whole plane: N×C×H×W (or
// any N×C×…) to N×C, like PyTorch's AdaptiveAvgPool2d(1) followed by
// Flatten, which ResNet heads use.
type GlobalAvgPool struct {
	in    []int // shape of the last Forward's input
	y, dx *tensor.Tensor
}

// NewGlobalAvgPool returns a global average pool.
func NewGlobalAvgPool() *GlobalAvgPool { return &GlobalAvgPool{} }

// Forward returns the per-channel means as N×C.
func (p *GlobalAvgPool) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	if len(x.Shape) < 3 {
		panic(fmt.Sprintf("nn: global avgpool: input %v, want N×C×H×W", x.Shape))
	}
	n, c := x.Shape[0], x.Shape[1]
	plane := numel(x.Shape[2:])
	y := tensor.Ensure(&p.y, n, c)
	inv := 1 / float32(plane)
	for i := range y.Data {
		var sum float32
		for _, v := range x.Data[i*plane : (i+1)*plane] {
			sum += v
		}
		y.Data[i] = sum * inv
	}
	p.in = append(p.in[:0], x.Shape...)
	return y
}

// Backward spreads each gradient evenly over its plane.
func (p *GlobalAvgPool) Backward(dy *tensor.Tensor) *tensor.Tensor {
	dx := tensor.Ensure(&p.dx, p.in...)
	plane := numel(p.in[2:])
	inv := 1 / float32(plane)
	for i, d := range dy.Data {
		row := dx.Data[i*plane : (i+1)*plane]
		for j := range row {
			row[j] = d * inv
		}
	}
	return dx
}

// Params returns nil: pooling has no parameters.
func (p *GlobalAvgPool) Params() []*Param { return nil }

// Cost gives [C] and one add per input element.
func (p *GlobalAvgPool) Cost(in []int) ([]int, int64) {
	if len(in) < 2 {
		panic(fmt.Sprintf("nn: global avgpool: input shape %v, want C×H×W", in))
	}
	return []int{in[0]}, int64(numel(in))
}
