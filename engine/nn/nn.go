// Package nn holds the layers and losses of the engine's CPU backend. Each
// layer is a Forward/Backward pair over buffers it allocates once (at the
// largest batch seen) and re-slices afterwards, in the manner of llm.c.
package nn

import (
	"math/rand/v2"

	"cohort/engine/tensor"
)

// Param is one learnable tensor with its gradient. Name follows PyTorch's
// state_dict naming ("0.weight", "2.bias") so checkpoints load there.
type Param struct {
	Name  string
	Value *tensor.Tensor
	Grad  *tensor.Tensor
}

// Pass carries what a forward pass needs besides its input.
type Pass struct {
	// Train enables training-only behaviour (dropout).
	Train bool
	// Rand drives stochastic layers; the trainer seeds it from
	// (seed, rank, step) so runs and resumes are reproducible.
	Rand *rand.Rand
}

// Layer is one differentiable stage of a model.
type Layer interface {
	// Forward returns the output for input x (batch first). The result is
	// owned by the layer and valid until its next Forward.
	Forward(x *tensor.Tensor, p Pass) *tensor.Tensor
	// Backward takes dL/dy for the last Forward, adds the parameter
	// gradients into each Param.Grad (accumulating, so several
	// micro-batches can be summed) and returns dL/dx, owned by the layer.
	Backward(dy *tensor.Tensor) *tensor.Tensor
	// Params lists the learnable tensors (none for stateless layers).
	Params() []*Param
	// Cost gives the output shape (without batch) for an input shape
	// (without batch) and the forward multiply-adds ×2 per sample.
	Cost(in []int) (out []int, flops int64)
}

// ParamBackwarder is a Layer that can accumulate its parameter gradients
// without computing dL/dx. Sequential uses it for its first parameterised
// layer when nothing upstream needs a gradient, as PyTorch skips the input
// gradient of a tensor that does not require grad.
type ParamBackwarder interface {
	Layer
	// BackwardParams does Backward's gradient accumulation and nothing else.
	BackwardParams(dy *tensor.Tensor)
}

// numel is the number of elements of a shape.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
