// Package tensor holds Cohort's host tensor: a dense, row-major float32
// array with a shape. Activations are N×C×H×W (or N×F for flat features);
// layers keep their output buffers between steps and re-slice them when the
// batch is smaller, so a training step allocates nothing.
package tensor

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
)

// Tensor is a dense row-major float32 array. Data has exactly Len()
// elements; the backing array may have more capacity (see Ensure).
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zeroed tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// FromData wraps data (not copied) as a tensor of the given shape.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("tensor: %d elements do not fit shape %v", len(data), shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Rows is the size of the first (batch) dimension.
func (t *Tensor) Rows() int { return t.Shape[0] }

// Cols is the number of elements per row: the product of all dimensions but
// the first.
func (t *Tensor) Cols() int { return numel(t.Shape[1:]) }

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// View returns a tensor sharing t's data with another shape of equal size.
func (t *Tensor) View(shape ...int) *Tensor { return FromData(t.Data, shape...) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// Ensure makes *buf a tensor of the given shape, reusing its backing array
// when it is large enough, and returns it. Layers call it at the top of
// Forward/Backward so buffers are allocated once, at the largest batch.
func Ensure(buf **Tensor, shape ...int) *Tensor {
	n := numel(shape)
	t := *buf
	if t == nil {
		t = &Tensor{}
		*buf = t
	}
	if cap(t.Data) < n {
		t.Data = make([]float32, n)
	}
	t.Data = t.Data[:n]
	t.Shape = append(t.Shape[:0], shape...)
	return t
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C for 2-D row-major views: A is
// treated as Rows()×Cols() (transposed when transA), likewise B and C.
func Gemm(impl blas.Float32, transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	m, n := c.Rows(), c.Cols()
	k := a.Cols()
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
		k = a.Rows()
	}
	if transB {
		tb = blas.Trans
	}
	impl.Sgemm(ta, tb, m, n, k, alpha, a.Data, a.Cols(), b.Data, b.Cols(), beta, c.Data, c.Cols())
}
