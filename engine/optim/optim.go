// Package optim holds the engine's optimizers (SGD, Adam, AdamW with
// torch.optim's exact update rules) and ClassyVision's learning-rate
// schedules.
//
// Every update runs one pass per parameter tensor, allocates nothing, and
// rounds each product to float32 before it is added (see the float32(...)
// conversions): Go may otherwise fuse a*b+c into one FMA on some
// architectures, and PyTorch's reference (scalar) kernels round separately,
// so the explicit conversions keep results identical across machines and
// within a few ulp of a PyTorch CPU run.
package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr using each param's Grad.
	// Grads are read, never modified.
	Step(lr float32)
	// State returns a copy of the optimizer state as named tensors for a
	// checkpoint: "<param>.momentum_buffer", "<param>.exp_avg",
	// "<param>.exp_avg_sq", and for Adam(W) the step counter "step".
	State() map[string]*tensor.Tensor
	// LoadState restores State's output. A missing, mis-shaped or
	// unexpected tensor is an error naming it; on error nothing changes.
	LoadState(map[string]*tensor.Tensor) error
}

// The three optimizers satisfy Optimizer.
var (
	_ Optimizer = (*SGD)(nil)
	_ Optimizer = (*Adam)(nil)
	_ Optimizer = (*AdamW)(nil)
)

var (
	// ErrInvalidOptimizer reports bad parameters or hyperparameters given to
	// a constructor.
	ErrInvalidOptimizer = errors.New("optim: invalid optimizer setting")
	// ErrState reports optimizer state that does not fit the optimizer.
	ErrState = errors.New("optim: bad optimizer state")
)

// checkParams rejects parameter lists the update loops and the checkpoint
// naming cannot handle: gradients are required up front so that Step never
// has to test for them, and names must be unique because they key State.
func checkParams(params []*nn.Param) error {
	if len(params) == 0 {
		return fmt.Errorf("%w: empty parameter list", ErrInvalidOptimizer)
	}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		switch {
		case p == nil:
			return fmt.Errorf("%w: param %d is nil", ErrInvalidOptimizer, i)
		case p.Name == "":
			return fmt.Errorf("%w: param %d has no name", ErrInvalidOptimizer, i)
		case seen[p.Name]:
			return fmt.Errorf("%w: duplicate param name %q", ErrInvalidOptimizer, p.Name)
		case p.Value == nil || p.Grad == nil:
			return fmt.Errorf("%w: param %q needs both Value and Grad", ErrInvalidOptimizer, p.Name)
		case !slices.Equal(p.Value.Shape, p.Grad.Shape) || p.Value.Len() != p.Grad.Len():
			return fmt.Errorf("%w: param %q: grad shape %v differs from value shape %v",
				ErrInvalidOptimizer, p.Name, p.Grad.Shape, p.Value.Shape)
		}
		seen[p.Name] = true
	}
	return nil
}

// checkHyper rejects a negative or non-finite hyperparameter.
func checkHyper(name string, v float32) error {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return fmt.Errorf("%w: %s = %v must be finite and >= 0", ErrInvalidOptimizer, name, v)
	}
	return nil
}

// zerosLike allocates one zeroed buffer per parameter, shaped like its value.
func zerosLike(params []*nn.Param) []*tensor.Tensor {
	bufs := make([]*tensor.Tensor, len(params))
	for i, p := range params {
		bufs[i] = tensor.New(p.Value.Shape...)
	}
	return bufs
}
