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

// Conv2d is PyTorch's nn.Conv2d over N×C×H×W, computed image by image as
// im2col + GEMM. Per image the output comes out of the GEMM already in
// NCHW order and the patch matrix stays in cache; for LeNet at batch 128
// that measured faster per step than one GEMM over the whole batch's
// patch matrix, which needs transposes to and from NCHW. Backward
// recomputes each image's patch matrix instead of keeping the batch's:
// the same time here, and memory stays at one image's patches per layer
// (a ResNet's batch-wide ones would not fit).
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
	col    *tensor.Tensor // one image's patch matrix, or its gradient
	// cols keeps the whole batch's patch matrices from Forward for
	// Backward when they fit in colCacheFloats (cached says whether the
	// last Forward did); coli views one image's.
	cols, coli *tensor.Tensor
	cached     bool
	yi         *tensor.Tensor // view of one image's output
	dyi        *tensor.Tensor // view of one image's output gradient
	y, dx      *tensor.Tensor
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

// colCacheFloats bounds the patch matrices a Conv2d keeps between Forward
// and Backward (32 MiB). Keeping them spares Backward its im2col (9 % of a
// LeNet step); a larger batch recomputes them image by image instead.
const colCacheFloats = 8 << 20

// patches returns the buffer for image i's patch matrix: its slot in the
// batch cache when the batch fits, the one-image buffer otherwise.
func (c *Conv2d) patches(i int) *tensor.Tensor {
	if c.cached {
		size := c.g.patch() * c.g.outPlane()
		return view(&c.coli, c.cols.Data[i*size:], c.g.patch(), c.g.outPlane())
	}
	return c.col
}

// Forward computes y = W ⋆ x + b one image at a time: the image's patch
// matrix stays in cache between im2col and the GEMM.
func (c *Conv2d) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("nn: %s: input %v, want N×C×H×W", c.name, x.Shape))
	}
	g := c.window(x.Shape[1:])
	n, plane, out := x.Rows(), g.outPlane(), c.Spec.Out
	tensor.Ensure(&c.col, g.patch(), plane)
	c.g, c.x = g, x
	c.cached = n*g.patch()*plane <= colCacheFloats
	if c.cached {
		tensor.Ensure(&c.cols, n, g.patch(), plane)
	}
	y := tensor.Ensure(&c.y, n, out, g.oh, g.ow)
	beta := float32(0) // the GEMM adds onto the bias when there is one
	if c.Bias != nil {
		beta = 1
	}
	for i := range n {
		col := c.patches(i)
		im2col(g, x.Data[i*g.c*g.inPlane():], col.Data)
		yi := view(&c.yi, y.Data[i*out*plane:], out, plane)
		if c.Bias != nil {
			for o, b := range c.Bias.Value.Data {
				row := yi.Data[o*plane : (o+1)*plane]
				for j := range row {
					row[j] = b
				}
			}
		}
		// The weight [Out, In, k, k] is read as Out×patch.
		tensor.Gemm(c.impl, false, false, 1, c.Weight.Value, col, beta, yi)
	}
	return y
}

// Backward accumulates the parameter gradients and returns dx.
func (c *Conv2d) Backward(dy *tensor.Tensor) *tensor.Tensor {
	dx := tensor.Ensure(&c.dx, c.x.Shape...)
	dx.Zero()
	c.backward(dy, dx)
	return dx
}

// BackwardParams accumulates the parameter gradients only.
func (c *Conv2d) BackwardParams(dy *tensor.Tensor) { c.backward(dy, nil) }

// backward accumulates dW += dy·colᵀ and db += Σdy image by image and,
// when dx is not nil, adds col2im(Wᵀ·dy) into it, with the one-image
// patch buffer holding the patch gradient. The patches come from
// Forward's cache or are recomputed into that buffer first.
func (c *Conv2d) backward(dy, dx *tensor.Tensor) {
	g, n := c.g, dy.Rows()
	plane, out := g.outPlane(), c.Spec.Out
	for i := range n {
		col := c.patches(i)
		dyi := view(&c.dyi, dy.Data[i*out*plane:], out, plane)
		if c.Bias != nil {
			for o := range out {
				var sum float32
				for _, v := range dyi.Data[o*plane : (o+1)*plane] {
					sum += v
				}
				c.Bias.Grad.Data[o] += sum
			}
		}
		if !c.cached {
			im2col(g, c.x.Data[i*g.c*g.inPlane():], col.Data)
		}
		tensor.Gemm(c.impl, false, true, 1, dyi, col, 1, c.Weight.Grad)
		if dx != nil {
			// The patch gradient goes to the one-image buffer, so the
			// cached patches survive for another Backward.
			tensor.Gemm(c.impl, true, false, 1, c.Weight.Value, dyi, 0, c.col)
			col2im(g, c.col.Data, dx.Data[i*g.c*g.inPlane():])
		}
	}
}

// view points *v at the rows×cols matrix at the start of data without
// allocating, so per-image GEMMs can go through tensor.Gemm.
func view(v **tensor.Tensor, data []float32, rows, cols int) *tensor.Tensor {
	if *v == nil {
		*v = &tensor.Tensor{}
	}
	t := *v
	t.Data = data[:rows*cols]
	t.Shape = append(t.Shape[:0], rows, cols)
	return t
}

// Params returns the weight, then the bias if there is one.
func (c *Conv2d) Params() []*Param { return c.params }

// Cost gives [Out, OH, OW] and 2·Out·OH·OW·In·Kernel² FLOPs per sample;
// the bias add is not counted, as for Linear.
func (c *Conv2d) Cost(in []int) ([]int, int64) {
	g := c.window(in)
	return []int{c.Spec.Out, g.oh, g.ow}, 2 * int64(c.Spec.Out) * int64(g.outPlane()) * int64(g.patch())
}
