// Package gpu is the engine's CUDA backend: a network of Linear, Conv2d,
// MaxPool2d, BatchNorm, GlobalAvgPool, ReLU and Flatten layers and residual
// blocks of them, on N×C×H×W float32 batches, with softmax cross-entropy
// and SGD with momentum, held on one GPU and built from the CPU engine's
// nn.Sequential so that layer sizes, initial weights and buffers, and
// names are the CPU model's. That covers engine/task's MLP (with or
// without BatchNorm), LeNet and ResNet (basic and bottleneck blocks).
//
// Planning (plan.go) flattens the model into layers that read and write
// activations by index: a residual block becomes its main branch's
// layers, its shortcut's, and an add that joins them. A ReLU is folded
// into the layer before it. The backward pass (schedule.go) is a flat list
// of steps over a few gradient buffers, reused as soon as they are dead; a
// block's output gradient feeds both branches and their input gradients
// are summed. A convolution is one GEMM over the whole batch: the batch's
// patch matrix (im2col) is multiplied by the weight, read as
// Out×(In·k·k), and an epilogue adds the bias and moves the channel-major
// result to NCHW; backward is the transposed products and a gather
// (col2im). BatchNorm reduces each channel in fixed-order double partial
// sums and updates its running statistics as the CPU does. Nothing uses
// float atomics: results are deterministic.
//
// A host batch reaches the GPU through one of two slots of pinned host
// memory and device buffers (staging.go), uploaded on the device's copy
// stream while the previous batch computes; events keep the host from
// refilling a slot still being copied and the copy from overwriting a
// batch still being read. Loss and accuracy are summed on the device and
// read back only when asked (Stats), so a training step makes the host
// wait for the GPU nowhere but there and in ReadGrad.
//
// With NCCL (TrainReduce), the flat gradient is averaged over the ranks in
// buckets (buckets.go), each handed to NCCL on the device's communication
// stream as soon as the backward pass has written it.
//
// All parameters live in one flat device buffer and all gradients in
// another with the same layout (Layout): the model's top-level layers last
// first, each layer's Params() last first (bias before weight; a residual
// block's are its main branch's then its shortcut's), the order of the
// CPU trainer's gradient buckets, so a trainer can copy the whole gradient
// to the host, all-reduce it with the TCP ring and copy it back
// (ReadGrad/WriteGrad) between Train and ApplySGD. A single-rank run uses
// Step, which does both in one device call. BatchNorm's running
// statistics and batch counts live in a flat buffers area in nn.Buffers
// order (BufferLayout), moved by BuffersToHost and BuffersFromHost. Each
// rank keeps its own statistics, unless SyncBatchNorm has them summed over
// the ranks at every training pass (through NCCL, or through the host).
//
// Everything here except the planning needs the cuda build tag; without it
// the package holds only the planning and the types below. Nothing in this
// package has run on a GPU yet at the time of writing: scripts/gpu-check.sh
// runs its tests and throughput benchmark there.
package gpu

import (
	"errors"
	"slices"
)

// ErrUnsupported marks a model the GPU backend cannot run (a layer it does
// not have, such as Dropout, or one in a place it cannot be); the message
// names it.
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
	// BucketBytes bounds the gradient buckets TrainReduce hands to NCCL
	// (the first is at most 1 MiB); 0 means DDP's 25 MiB.
	BucketBytes int
}

// Slot is where one parameter lives in the flat parameter, gradient and
// momentum buffers, or one buffer (BatchNorm's running statistics) in the
// flat buffers area.
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
