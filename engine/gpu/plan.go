package gpu

import (
	"fmt"

	"cohort/engine/nn"
)

// linearSpec is one Linear layer of the device model, with the ReLU that
// follows it folded in.
type linearSpec struct {
	In, Out      int
	ReLU         bool
	weight, bias *nn.Param // the CPU model's, for names and initial values
	w, b         Slot
}

// plan reads a CPU model as a stack of Linear layers, each optionally
// followed by a ReLU (Flatten layers are views and are skipped), and lays
// its parameters out flat, last layer first and bias before weight.
func plan(model *nn.Sequential) ([]linearSpec, []Slot, error) {
	var specs []linearSpec
	for i, l := range model.Layers {
		switch l := l.(type) {
		case *nn.Flatten:
		case *nn.Linear:
			if n := len(specs); n > 0 && specs[n-1].Out != l.In {
				return nil, nil, fmt.Errorf("%w: layer %d takes %d features, the previous Linear gives %d", ErrUnsupported, i, l.In, specs[n-1].Out)
			}
			specs = append(specs, linearSpec{In: l.In, Out: l.Out, weight: l.Weight, bias: l.Bias})
		case *nn.ReLU:
			n := len(specs)
			if n == 0 || specs[n-1].ReLU {
				return nil, nil, fmt.Errorf("%w: layer %d: a ReLU must follow a Linear layer", ErrUnsupported, i)
			}
			specs[n-1].ReLU = true
		default:
			return nil, nil, fmt.Errorf("%w: layer %d is a %T (the GPU backend runs Linear, ReLU and Flatten)", ErrUnsupported, i, l)
		}
	}
	if len(specs) == 0 {
		return nil, nil, fmt.Errorf("%w: the model has no Linear layer", ErrUnsupported)
	}
	var slots []Slot
	off := 0
	add := func(p *nn.Param) Slot {
		s := Slot{Name: p.Name, Shape: append([]int(nil), p.Value.Shape...), Offset: off, Len: p.Value.Len()}
		off += s.Len
		slots = append(slots, s)
		return s
	}
	for i := len(specs) - 1; i >= 0; i-- {
		specs[i].b = add(specs[i].bias)
		specs[i].w = add(specs[i].weight)
	}
	return specs, slots, nil
}
