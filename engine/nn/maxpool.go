package nn

import (
	"fmt"
	"math"

	"cohort/engine/tensor"
)

// MaxPool2d is PyTorch's nn.MaxPool2d (floor mode, dilation 1) over
// N×C×H×W: the maximum of each Kernel×Kernel window, with padding that
// never wins. Forward keeps where each maximum came from, and Backward
// routes the gradient there.
type MaxPool2d struct {
	// Kernel, Stride and Padding are the window geometry.
	Kernel, Stride, Padding int

	name  string
	g     window
	arg   []int32 // per output: the input offset, within its plane, of the max
	in    []int   // shape of the last Forward's input
	y, dx *tensor.Tensor
}

// NewMaxPool2d returns a max pool. stride 0 means stride = kernel, as in
// PyTorch; padding may be at most kernel/2, also as in PyTorch, so every
// window holds at least one input value.
func NewMaxPool2d(kernel, stride, padding int) *MaxPool2d {
	if stride == 0 {
		stride = kernel
	}
	if kernel <= 0 || stride < 0 || padding < 0 || 2*padding > kernel {
		panic(fmt.Sprintf("nn: maxpool: bad kernel %d, stride %d, padding %d", kernel, stride, padding))
	}
	return &MaxPool2d{Kernel: kernel, Stride: stride, Padding: padding, name: fmt.Sprintf("maxpool %d/%d", kernel, stride)}
}

// Forward returns the window maxima. Ties go to the first position in
// row-major order and a NaN wins (the last one), as in PyTorch's CPU
// kernel.
func (m *MaxPool2d) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	n, g := batchWindow(m.name, x, m.Kernel, m.Stride, m.Padding)
	y := tensor.Ensure(&m.y, n, g.c, g.oh, g.ow)
	if cap(m.arg) < len(y.Data) {
		m.arg = make([]int32, len(y.Data))
	}
	m.arg = m.arg[:len(y.Data)]
	inPlane, outPlane := g.inPlane(), g.outPlane()
	pool := maxPlane
	if g.k == 2 && g.s == 2 && g.p == 0 {
		pool = maxPlane2x2
	}
	for pl := range n * g.c {
		pool(g, x.Data[pl*inPlane:(pl+1)*inPlane], y.Data[pl*outPlane:(pl+1)*outPlane], m.arg[pl*outPlane:(pl+1)*outPlane])
	}
	m.g, m.in = g, append(m.in[:0], x.Shape...)
	return y
}

// Backward adds each output gradient to the input that was the maximum.
func (m *MaxPool2d) Backward(dy *tensor.Tensor) *tensor.Tensor {
	dx := tensor.Ensure(&m.dx, m.in...)
	dx.Zero()
	inPlane, outPlane := m.g.inPlane(), m.g.outPlane()
	for pl := range len(dy.Data) / outPlane {
		dst := dx.Data[pl*inPlane : (pl+1)*inPlane]
		arg := m.arg[pl*outPlane : (pl+1)*outPlane]
		for i, d := range dy.Data[pl*outPlane : (pl+1)*outPlane] {
			dst[arg[i]] += d
		}
	}
	return dx
}

// Params returns nil: pooling has no parameters.
func (m *MaxPool2d) Params() []*Param { return nil }

// Cost gives [C, OH, OW] and one comparison per window element, Kernel²
// per output, as ClassyVision's profiler counts pooling.
func (m *MaxPool2d) Cost(in []int) ([]int, int64) {
	return poolCost(windowOf(m.name, in, m.Kernel, m.Stride, m.Padding))
}

// maxPlane pools one H×W plane into dst, recording each maximum's offset
// in arg.
func maxPlane(g window, src, dst []float32, arg []int32) {
	for oh := range g.oh {
		h0, h1 := clampRange(oh*g.s-g.p, g.k, g.h)
		for ow := range g.ow {
			w0, w1 := clampRange(ow*g.s-g.p, g.k, g.w)
			best, at := float32(math.Inf(-1)), h0*g.w+w0
			for row := h0 * g.w; row < h1*g.w; row += g.w {
				for i := row + w0; i < row+w1; i++ {
					// Only the integer goes under the condition, and
					// the float through max, so both compile to
					// conditional moves: with random data a branch here
					// is mispredicted half the time.
					v := src[i]
					if (v > best) != (v != v) {
						at = i
					}
					best = max(best, v)
				}
			}
			dst[oh*g.ow+ow], arg[oh*g.ow+ow] = best, int32(at)
		}
	}
}

// maxPlane2x2 is maxPlane for 2×2 windows at stride 2 without padding
// (LeNet's and most CNNs' pool), unrolled over the two input rows of each
// output row: the generic loops spend more on their bounds than on the
// four comparisons. The winner's place in the window is kept as a number
// 0–3 updated by arithmetic on the comparisons (b2i), not by assignments
// under them, which the compiler turns into branches that random data
// mispredicts half the time (they cost 18 % of a LeNet step).
func maxPlane2x2(g window, src, dst []float32, arg []int32) {
	for oh := range g.oh {
		top := 2 * oh * g.w
		r0, r1 := src[top:top+2*g.ow], src[top+g.w:top+g.w+2*g.ow]
		out, at := dst[oh*g.ow:(oh+1)*g.ow], arg[oh*g.ow:(oh+1)*g.ow]
		for ow := range out {
			// As in maxPlane: a NaN wins, ties keep the first.
			j := 2 * ow
			a, b, c, d := r0[j], r0[j+1], r1[j], r1[j+1]
			k := b2i((b > a) != (b != b))
			best := max(a, b)
			k += b2i((c > best) != (c != c)) * (2 - k)
			best = max(best, c)
			k += b2i((d > best) != (d != d)) * (3 - k)
			out[ow], at[ow] = max(best, d), int32(top+j+k&1+k>>1*g.w)
		}
	}
}

// b2i is 1 for true and 0 for false, without a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// batchWindow checks that x is N×C×H×W and returns N and the window over
// one image.
func batchWindow(layer string, x *tensor.Tensor, k, s, p int) (int, window) {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("nn: %s: input %v, want N×C×H×W", layer, x.Shape))
	}
	return x.Rows(), windowOf(layer, x.Shape[1:], k, s, p)
}

// clampRange is [start, start+k) cut to [0, size).
func clampRange(start, k, size int) (lo, hi int) {
	return max(start, 0), min(start+k, size)
}

// poolCost is a pooling layer's Cost for window g.
func poolCost(g window) ([]int, int64) {
	return []int{g.c, g.oh, g.ow}, int64(g.c) * int64(g.outPlane()) * int64(g.k*g.k)
}
