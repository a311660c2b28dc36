package nn

import (
	"errors"
	"fmt"

	"cohort/engine/tensor"
)

// ErrDropoutP reports a dropout probability outside [0, 1).
var ErrDropoutP = errors.New("nn: dropout probability not in [0, 1)")

// Dropout zeroes each element with probability p while training and scales
// the survivors by 1/(1-p) (inverted dropout), so evaluation is the
// identity.
type Dropout struct {
	p float32

	active bool // whether the last Forward applied a mask
	mask   *tensor.Tensor
	y, dx  *tensor.Tensor
}

// NewDropout returns a Dropout dropping with probability p.
func NewDropout(p float32) (*Dropout, error) {
	if !(p >= 0 && p < 1) {
		return nil, fmt.Errorf("%w: %v", ErrDropoutP, p)
	}
	return &Dropout{p: p}, nil
}

// Forward draws a fresh mask from ps.Rand when ps.Train and p > 0, and is
// the identity (x itself, no copy) otherwise.
func (d *Dropout) Forward(x *tensor.Tensor, ps Pass) *tensor.Tensor {
	d.active = ps.Train && d.p > 0
	if !d.active {
		return x
	}
	mask := tensor.Ensure(&d.mask, x.Shape...)
	y := tensor.Ensure(&d.y, x.Shape...)
	// Each 64-bit draw yields two 32-bit uniforms: half the generator calls.
	keep := 1 / (1 - d.p)
	threshold := uint32(float64(d.p) * (1 << 32)) // p < 1, so no overflow
	var bits uint64
	for i := range mask.Data {
		if i%2 == 0 {
			bits = ps.Rand.Uint64()
		} else {
			bits >>= 32
		}
		if uint32(bits) < threshold {
			mask.Data[i] = 0
		} else {
			mask.Data[i] = keep
		}
		y.Data[i] = x.Data[i] * mask.Data[i]
	}
	return y
}

// Backward multiplies dy by the last mask (scale included), or passes dy
// through when the last Forward was the identity.
func (d *Dropout) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if !d.active {
		return dy
	}
	dx := tensor.Ensure(&d.dx, dy.Shape...)
	m := d.mask.Data[:len(dx.Data)]
	for i, g := range dy.Data {
		dx.Data[i] = g * m[i]
	}
	return dx
}

// Params returns nil: Dropout has no parameters.
func (d *Dropout) Params() []*Param { return nil }

// Cost gives the input shape back and no multiply-adds.
func (d *Dropout) Cost(in []int) ([]int, int64) { return append([]int(nil), in...), 0 }
