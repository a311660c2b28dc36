// Package gpu is the engine's CUDA backend: a feed-forward network
// (Linear, Conv2d, MaxPool2d, ReLU and Flatten layers on N×C×H×W float32
// batches, softmax cross-entropy, SGD with momentum) held on one GPU,
// built from the CPU engine's nn.Sequential so that layer sizes, initial
// weights and parameter names are the CPU model's. That covers the MLP and
// LeNet of engine/task.
//
// A ReLU is folded into the layer before it. A convolution is one GEMM
// over the whole batch: the batch's patch matrix (im2col) is multiplied by
// the weight, read as Out×(In·k·k), and an epilogue adds the bias and
// moves the channel-major result to NCHW; backward is the transposed
// products and a gather (col2im), with no atomics.
//
// All parameters live in one flat device buffer and all gradients in
// another with the same layout (Layout): the last layer first, each
// layer's parameters last first (bias before weight), the order of the CPU
// trainer's gradient buckets, so a trainer can copy the whole gradient to
// the host, all-reduce it with the TCP ring and copy it back
// (ReadGrad/WriteGrad) between Train and ApplySGD. A single-rank run uses
// Step, which does both in one device call.
//
// Everything here except the planning of the layer stack needs the cuda
// build tag; without it the package holds only the types below. Nothing in
// this package has run on a GPU yet at the time of writing:
// scripts/gpu-check.sh runs its tests and throughput benchmark there.
package gpu

import (
	"errors"
	"slices"
)

// ErrUnsupported marks a model the GPU backend cannot run (a layer other
// than Linear, Conv2d, MaxPool2d, ReLU and Flatten, or one in a place it
// cannot be); the message names it.
var ErrUnsupported = errors.New("gpu: not supported")

// ErrInput reports a batch, a sample shape or options that do not fit
// the model.
var ErrInput = errors.New("gpu: bad input")

// Options configure a Model.
type Options struct {
	// MaxBatch is the largest batch Train, Step and Eval accept; buffers
	// are sized for it once.
	MaxBatch int
	// InputShape is one sample's shape (C×H×W for images). It may be left
	// out for a model whose first layer with a shape is a Linear.
	InputShape []int
	// Momentum, WeightDecay and Nesterov are torch.optim.SGD's (dampening
	// 0), as the CPU engine's optim.SGD takes them.
	Momentum, WeightDecay float32
	Nesterov              bool
}

// Slot is where one parameter lives in the flat parameter, gradient and
// momentum buffers.
type Slot struct {
	// Name is the CPU model's (PyTorch state_dict) name, e.g. "1.weight".
	Name  string
	Shape []int
	// Offset and Len are in float32 elements.
	Offset, Len int
}

// Stats are the loss and top-1 accuracy summed over the batches trained or
// evaluated since the last call of Model.Stats.
type Stats struct {
	// LossSum is the sum of per-sample losses; Correct counts samples whose
	// label's logit no other logit exceeds (ties count as correct, as
	// engine/meter's accuracy does).
	LossSum, Correct float64
	Samples          int
	// LastLoss is the mean loss of the last batch.
	LastLoss float64
}

// MeanLoss is LossSum/Samples (0 without samples).
func (s Stats) MeanLoss() float64 {
	if s.Samples == 0 {
		return 0
	}
	return s.LossSum / float64(s.Samples)
}

// Accuracy is Correct/Samples (0 without samples).
func (s Stats) Accuracy() float64 {
	if s.Samples == 0 {
		return 0
	}
	return s.Correct / float64(s.Samples)
}

// clone copies a slot list so callers cannot change the model's.
func cloneSlots(s []Slot) []Slot {
	out := slices.Clone(s)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}
