package nn

import "cohort/engine/tensor"

// Sequential chains layers: the output of each is the input of the next.
type Sequential struct {
	// Layers are the stages in forward order.
	Layers []Layer
	// SkipInputGrad makes Backward skip the gradient with respect to the
	// model's input and return nil, as for data that does not require
	// grad. Layers before the first one with parameters are then not
	// run backwards at all, and that layer only accumulates its own
	// gradients when it implements ParamBackwarder. The trainer sets it
	// for a top-level model; leave it false for a nested Sequential.
	SkipInputGrad bool
}

// NewSequential returns the chain of layers, in forward order.
func NewSequential(layers ...Layer) *Sequential {
	return &Sequential{Layers: layers}
}

// Forward runs the layers in order.
func (s *Sequential) Forward(x *tensor.Tensor, p Pass) *tensor.Tensor {
	for _, l := range s.Layers {
		x = l.Forward(x, p)
	}
	return x
}

// Backward runs the layers in reverse order; see BackwardNotify.
func (s *Sequential) Backward(dy *tensor.Tensor) *tensor.Tensor {
	return s.BackwardNotify(dy, nil)
}

// BackwardNotify is Backward that calls ready(i), when ready is not nil,
// as soon as layer i's parameter gradients are final, so the trainer can
// start reducing them while earlier layers still run. It is called only
// for layers with parameters, in decreasing i.
func (s *Sequential) BackwardNotify(dy *tensor.Tensor, ready func(layerIndex int)) *tensor.Tensor {
	stop := 0 // the last layer (going backwards) that must run
	if s.SkipInputGrad {
		stop = s.firstWithParams()
		if stop < 0 {
			return nil
		}
	}
	for i := len(s.Layers) - 1; i >= stop; i-- {
		l := s.Layers[i]
		if pb, ok := l.(ParamBackwarder); ok && s.SkipInputGrad && i == stop {
			pb.BackwardParams(dy)
			dy = nil
		} else {
			dy = l.Backward(dy)
		}
		if ready != nil && len(l.Params()) > 0 {
			ready(i)
		}
	}
	if s.SkipInputGrad {
		return nil
	}
	return dy
}

// firstWithParams is the index of the first layer with parameters, or -1.
func (s *Sequential) firstWithParams() int {
	for i, l := range s.Layers {
		if len(l.Params()) > 0 {
			return i
		}
	}
	return -1
}

// Params lists every layer's parameters, in layer order.
func (s *Sequential) Params() []*Param {
	var ps []*Param
	for _, l := range s.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Cost chains the layers' shapes and sums their FLOPs.
func (s *Sequential) Cost(in []int) ([]int, int64) {
	var total int64
	for _, l := range s.Layers {
		var f int64
		in, f = l.Cost(in)
		total += f
	}
	return in, total
}
