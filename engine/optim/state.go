package optim

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"cohort/engine/tensor"
)

// stepKey names the Adam step counter in State.
const stepKey = "step"

// stepRadix splits the step counter into float32-exact digits: every
// integer below 2^24 is exact in float32, so two digits hold 2^48 steps
// losslessly, where a single float32 (PyTorch's encoding) stops counting at
// 16,777,216.
const stepRadix = 1 << 24

// namedTensor is one live state buffer with its checkpoint name.
type namedTensor struct {
	name string
	t    *tensor.Tensor
}

// cloneState copies live state buffers into a fresh map for a checkpoint,
// so a writer may serialise it while training continues.
func cloneState(live []namedTensor) map[string]*tensor.Tensor {
	out := make(map[string]*tensor.Tensor, len(live))
	for _, n := range live {
		out[n.name] = n.t.Clone()
	}
	return out
}

// checkState verifies that src holds exactly the tensors of live, with the
// same shapes, so that a later copyState cannot fail half way.
func checkState(live []namedTensor, src map[string]*tensor.Tensor) error {
	want := make(map[string]bool, len(live))
	for _, n := range live {
		want[n.name] = true
		t, ok := src[n.name]
		switch {
		case !ok || t == nil:
			return fmt.Errorf("%w: %q missing", ErrState, n.name)
		case !slices.Equal(t.Shape, n.t.Shape) || t.Len() != n.t.Len():
			return fmt.Errorf("%w: %q has shape %v (%d values), want %v",
				ErrState, n.name, t.Shape, t.Len(), n.t.Shape)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(src)) {
		if !want[name] {
			return fmt.Errorf("%w: unexpected tensor %q", ErrState, name)
		}
	}
	return nil
}

// copyState copies src into the live buffers; checkState must have passed.
func copyState(live []namedTensor, src map[string]*tensor.Tensor) {
	for _, n := range live {
		copy(n.t.Data, src[n.name].Data)
	}
}

// encodeStep writes a step count as {count mod 2^24, count / 2^24}.
func encodeStep(step int64) *tensor.Tensor {
	return tensor.FromData([]float32{float32(step % stepRadix), float32(step / stepRadix)}, 2)
}

// decodeStep reverses encodeStep, rejecting digits that encodeStep cannot
// have produced.
func decodeStep(t *tensor.Tensor) (int64, error) {
	var digits [2]int64
	for i, v := range t.Data {
		f := float64(v)
		if f < 0 || f >= stepRadix || f != math.Trunc(f) {
			return 0, fmt.Errorf("%w: %q digit %d = %v is not an integer in [0, 2^24)", ErrState, stepKey, i, v)
		}
		digits[i] = int64(f)
	}
	return digits[1]*stepRadix + digits[0], nil
}
