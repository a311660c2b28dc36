package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"

	"cohort/engine/tensor"
)

// Conv2dSpec describes a square 2-D convolution (groups = 1, dilation = 1).
type Conv2dSpec struct {
	// In and Out are the input and output channel counts.
	In, Out int
	// Kernel is the side of the square kernel.
	Kernel int
	// Stride is the step between windows; 0 means 1.
	Stride int
	// Padding is the zero border added on every side.
	Padding int
	// Bias adds a learnable per-channel bias (PyTorch's default is true;
	// ResNets turn it off before a BatchNorm).
	Bias bool
}

// Conv2d is PyTorch's nn.Conv2d over N×C×H×W, computed as im2col + GEMM.
// The patch matrix of the whole batch is one patch()×(N·OH·OW) matrix, so
// each direction is a single large GEMM; it is kept from Forward to
// Backward for the weight gradient.
type Conv2d struct {
	// Spec is the geometry (Stride normalised to ≥ 1).
	Spec Conv2dSpec
	// Weight is [Out, In, Kernel, Kernel]; Bias is [Out], or nil when
	// Spec.Bias is false.
	Weight, Bias *Param

	params []*Param
	impl   blas.Float32
	name   string
	g      window // geometry of the last Forward
	x      *tensor.Tensor
	col    *tensor.Tensor // patch()×(N·OH·OW) im2col of the last Forward
	cy     *tensor.Tensor // Out×(N·OH·OW): GEMM output, or dy in that layout
	dcol   *tensor.Tensor // gradient of col
	y, dx  *tensor.Tensor
}

// NewConv2d returns a convolution whose params are named "<prefix>.weight"
// and "<prefix>.bias", initialised like PyTorch's (kaiming_uniform with
// a=√5, which is U(±1/√fan_in), and the bias U(±1/√fan_in), fan_in =
// In·Kernel²), drawn from rng.
func NewConv2d(impl blas.Float32, rng *rand.Rand, prefix string, s Conv2dSpec) *Conv2d {
	if s.Stride == 0 {
		s.Stride = 1
	}
	if s.In <= 0 || s.Out <= 0 || s.Kernel <= 0 || s.Stride < 0 || s.Padding < 0 {
		panic(fmt.Sprintf("nn: conv %s: bad spec %+v", prefix, s))
	}
	fanIn := s.In * s.Kernel * s.Kernel
	bound := 1 / math.Sqrt(float64(fanIn))
	c := &Conv2d{
		Spec:   s,
		Weight: &Param{Name: prefix + ".weight", Value: tensor.New(s.Out, s.In, s.Kernel, s.Kernel), Grad: tensor.New(s.Out, s.In, s.Kernel, s.Kernel)},
		impl:   impl,
		name:   "conv " + prefix,
	}
	uniform(rng, c.Weight.Value.Data, bound)
	c.params = []*Param{c.Weight}
	if s.Bias {
		c.Bias = &Param{Name: prefix + ".bias", Value: tensor.New(s.Out), Grad: tensor.New(s.Out)}
		uniform(rng, c.Bias.Value.Data, bound)
		c.params = append(c.params, c.Bias)
	}
	return c
}

// window gives the geometry for an input of shape C×H×W.
func (c *Conv2d) window(in []int) window {
	g := windowOf(c.name, in, c.Spec.Kernel, c.Spec.Stride, c.Spec.Padding)
	if g.c != c.Spec.In {
		panic(fmt.Sprintf("nn: %s: input %v has %d channels, want %d", c.name, in, g.c, c.Spec.In))
	}
	return g
}

// weight2d views the weight as Out×patch() without allocating.
func (c *Conv2d) weight2d() (data []float32, ld int) {
	return c.Weight.Value.Data, c.Spec.In * c.Spec.Kernel * c.Spec.Kernel
}

// Forward computes y = W ⋆ x + b.
func (c *Conv2d) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("nn: %s: input %v, want N×C×H×W", c.name, x.Shape))
	}
	g := c.window(x.Shape[1:])
	n, plane, patch := x.Rows(), g.outPlane(), g.patch()
	cols := n * plane
	col := tensor.Ensure(&c.col, patch, cols)
	for i := range n {
		im2col(g, x.Data[i*g.c*g.inPlane():], col.Data[i*plane:], cols)
	}
	cy := tensor.Ensure(&c.cy, c.Spec.Out, cols)
	w, ldw := c.weight2d()
	c.impl.Sgemm(blas.NoTrans, blas.NoTrans, c.Spec.Out, cols, patch, 1, w, ldw, col.Data, cols, 0, cy.Data, cols)

	// Out×(N·plane) to N×Out×plane, adding the bias on the way.
	y := tensor.Ensure(&c.y, n, c.Spec.Out, g.oh, g.ow)
	for o := range c.Spec.Out {
		var b float32
		if c.Bias != nil {
			b = c.Bias.Value.Data[o]
		}
		src := cy.Data[o*cols : (o+1)*cols]
		for i := range n {
			dst := y.Data[(i*c.Spec.Out+o)*plane:][:plane]
			for j, v := range src[i*plane : (i+1)*plane] {
				dst[j] = v + b
			}
		}
	}
	c.g, c.x = g, x
	return y
}

// Backward accumulates the parameter gradients and returns dx: the patch
// gradient Wᵀ·dy scattered back by col2im.
func (c *Conv2d) Backward(dy *tensor.Tensor) *tensor.Tensor {
	c.BackwardParams(dy)
	g, n := c.g, dy.Rows()
	cols := n * g.outPlane()
	dcol := tensor.Ensure(&c.dcol, g.patch(), cols)
	w, ldw := c.weight2d()
	c.impl.Sgemm(blas.Trans, blas.NoTrans, g.patch(), cols, c.Spec.Out, 1, w, ldw, c.cy.Data, cols, 0, dcol.Data, cols)
	dx := tensor.Ensure(&c.dx, c.x.Shape...)
	dx.Zero()
	for i := range n {
		col2im(g, dcol.Data[i*g.outPlane():], cols, dx.Data[i*g.c*g.inPlane():])
	}
	return dx
}

// BackwardParams accumulates dW += dy·colᵀ and db += Σdy. It leaves dy in
// the Out×(N·OH·OW) layout in c.cy, where Backward reads it.
func (c *Conv2d) BackwardParams(dy *tensor.Tensor) {
	g, n := c.g, dy.Rows()
	plane := g.outPlane()
	cols := n * plane
	cy := tensor.Ensure(&c.cy, c.Spec.Out, cols)
	for o := range c.Spec.Out {
		dst := cy.Data[o*cols : (o+1)*cols]
		var sum float32
		for i := range n {
			src := dy.Data[(i*c.Spec.Out+o)*plane:][:plane]
			copy(dst[i*plane:], src)
			for _, v := range src {
				sum += v
			}
		}
		if c.Bias != nil {
			c.Bias.Grad.Data[o] += sum
		}
	}
	_, ldw := c.weight2d()
	c.impl.Sgemm(blas.NoTrans, blas.Trans, c.Spec.Out, g.patch(), cols, 1, cy.Data, cols, c.col.Data, cols, 1, c.Weight.Grad.Data, ldw)
}

// Params returns the weight, then the bias if there is one.
func (c *Conv2d) Params() []*Param { return c.params }

// Cost gives [Out, OH, OW] and 2·Out·OH·OW·In·Kernel² FLOPs per sample;
// the bias add is not counted, as for Linear.
func (c *Conv2d) Cost(in []int) ([]int, int64) {
	g := c.window(in)
	return []int{c.Spec.Out, g.oh, g.ow}, 2 * int64(c.Spec.Out) * int64(g.outPlane()) * int64(g.patch())
}
