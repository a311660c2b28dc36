package nn

import "cohort/engine/tensor"

// Flatten views N×C×H×W (any rank ≥ 2) as N×(C·H·W) without copying.
type Flatten struct {
	in    []int // shape of the last Forward's input
	y, dx tensor.Tensor
}

// NewFlatten returns a Flatten.
func NewFlatten() *Flatten { return &Flatten{} }

// Forward returns a view of x's data as N×Cols. The view shares x's
// storage, so it is valid as long as x is.
func (f *Flatten) Forward(x *tensor.Tensor, _ Pass) *tensor.Tensor {
	f.in = append(f.in[:0], x.Shape...)
	f.y.Data = x.Data
	f.y.Shape = append(f.y.Shape[:0], x.Rows(), x.Cols())
	return &f.y
}

// Backward returns dy's data viewed in the input's shape.
func (f *Flatten) Backward(dy *tensor.Tensor) *tensor.Tensor {
	f.dx.Data = dy.Data
	f.dx.Shape = append(f.dx.Shape[:0], f.in...)
	return &f.dx
}

// Params returns nil: Flatten has no parameters.
func (f *Flatten) Params() []*Param { return nil }

// Cost gives [numel(in)] and no multiply-adds.
func (f *Flatten) Cost(in []int) ([]int, int64) { return []int{numel(in)}, 0 }
