package gpu

import (
	"fmt"
	"slices"

	"cohort/cuda"
	"cohort/engine/nn"
)

// layerKind is what a device layer computes.
type layerKind int

const (
	linearLayer layerKind = iota // nn.Linear
	convLayer                    // nn.Conv2d
	poolLayer                    // nn.MaxPool2d
)

// String is the kind's name in logs: linear, conv or pool.
func (k layerKind) String() string {
	switch k {
	case linearLayer:
		return "linear"
	case convLayer:
		return "conv"
	case poolLayer:
		return "pool"
	}
	return fmt.Sprintf("layerKind(%d)", int(k))
}

// layerSpec is one layer of the device model, with the ReLU that follows
// it folded in. Flatten layers are not layers here: every layer reads and
// writes its samples as flat rows of NCHW data, so a Flatten is a no-op.
type layerSpec struct {
	Kind layerKind
	// In and Out are the values per sample of the layer's input and
	// output: a Linear's features, C·H·W of an image.
	In, Out int
	ReLU    bool
	// Win is a convolution's or pool's window over one input sample;
	// Channels is a convolution's output channel count.
	Win      cuda.Window
	Channels int
	// weight and bias are the CPU model's, for names and initial values;
	// bias is nil for a pool and a convolution without one.
	weight, bias *nn.Param
	w, b         Slot
}

// hasParams reports whether the layer has a weight (pools have none).
func (l *layerSpec) hasParams() bool { return l.weight != nil }

// plan reads a CPU model as a stack of Linear, Conv2d and MaxPool2d
// layers, each optionally followed by a ReLU (Flatten layers are views and
// are skipped), for samples of shape in (C×H×W, or any shape for an MLP;
// left out, it is the first Linear's input), and lays its parameters out
// flat in the order of the CPU trainer's gradient buckets: the last layer
// first and each layer's Params() last first (bias before weight).
func plan(model *nn.Sequential, in ...int) ([]layerSpec, []Slot, error) {
	shape, err := sampleShape(model, in)
	if err != nil {
		return nil, nil, err
	}
	var specs []layerSpec
	for i, l := range model.Layers {
		var s layerSpec
		switch l := l.(type) {
		case *nn.Flatten:
			shape = []int{numel(shape)}
			continue
		case *nn.ReLU:
			n := len(specs)
			if n == 0 || specs[n-1].ReLU {
				return nil, nil, fmt.Errorf("%w: layer %d: a ReLU must follow a Linear, Conv2d or MaxPool2d layer", ErrUnsupported, i)
			}
			specs[n-1].ReLU = true
			continue
		case *nn.Linear:
			if numel(shape) != l.In {
				return nil, nil, fmt.Errorf("%w: layer %d takes %d features, its input has %v = %d", ErrUnsupported, i, l.In, shape, numel(shape))
			}
			s = layerSpec{Kind: linearLayer, In: l.In, Out: l.Out, weight: l.Weight, bias: l.Bias}
			shape = []int{l.Out}
		case *nn.Conv2d:
			if len(shape) != 3 || shape[0] != l.Spec.In {
				return nil, nil, fmt.Errorf("%w: layer %d is a convolution of %d-channel images, its input is %v", ErrUnsupported, i, l.Spec.In, shape)
			}
			g, err := cuda.NewWindow(shape[0], shape[1], shape[2], l.Spec.Kernel, max(l.Spec.Stride, 1), l.Spec.Padding)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: layer %d: %w", ErrUnsupported, i, err)
			}
			s = layerSpec{Kind: convLayer, In: g.InLen(), Out: l.Spec.Out * g.OutPlane(), Win: g, Channels: l.Spec.Out, weight: l.Weight, bias: l.Bias}
			shape = []int{l.Spec.Out, g.OH, g.OW}
		case *nn.MaxPool2d:
			if len(shape) != 3 {
				return nil, nil, fmt.Errorf("%w: layer %d is a max pool over images, its input is %v", ErrUnsupported, i, shape)
			}
			g, err := cuda.NewWindow(shape[0], shape[1], shape[2], l.Kernel, max(l.Stride, 1), l.Padding)
			if err == nil && 2*l.Padding > l.Kernel {
				err = fmt.Errorf("padding %d is more than half the %d×%d window", l.Padding, l.Kernel, l.Kernel)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%w: layer %d: %w", ErrUnsupported, i, err)
			}
			s = layerSpec{Kind: poolLayer, In: g.InLen(), Out: g.C * g.OutPlane(), Win: g}
			shape = []int{g.C, g.OH, g.OW}
		default:
			return nil, nil, fmt.Errorf("%w: layer %d is a %T (the GPU backend runs Linear, Conv2d, MaxPool2d, ReLU and Flatten)", ErrUnsupported, i, l)
		}
		specs = append(specs, s)
	}
	if !slices.ContainsFunc(specs, func(s layerSpec) bool { return s.hasParams() }) {
		return nil, nil, fmt.Errorf("%w: the model has no layer with parameters", ErrUnsupported)
	}
	var slots []Slot
	off := 0
	add := func(p *nn.Param) Slot {
		s := Slot{Name: p.Name, Shape: slices.Clone(p.Value.Shape), Offset: off, Len: p.Value.Len()}
		off += s.Len
		slots = append(slots, s)
		return s
	}
	// Linear's and Conv2d's Params() are weight, then bias if any.
	for i := len(specs) - 1; i >= 0; i-- {
		if s := &specs[i]; s.hasParams() {
			if s.bias != nil {
				s.b = add(s.bias)
			}
			s.w = add(s.weight)
		}
	}
	return specs, slots, nil
}

// sampleShape is in, or when in is empty the input of the model's first
// Linear layer, which must then come before any image layer.
func sampleShape(model *nn.Sequential, in []int) ([]int, error) {
	if len(in) > 0 {
		if slices.ContainsFunc(in, func(d int) bool { return d <= 0 }) {
			return nil, fmt.Errorf("%w: sample shape %v", ErrInput, in)
		}
		return slices.Clone(in), nil
	}
	for _, l := range model.Layers {
		switch l := l.(type) {
		case *nn.Linear:
			return []int{l.In}, nil
		case *nn.Conv2d, *nn.MaxPool2d:
			return nil, fmt.Errorf("%w: a model that starts with a %T needs the sample shape (Options.InputShape)", ErrInput, l)
		}
	}
	return nil, nil // no layer that reads a shape: plan reports what is missing
}

// numel is the number of values of a shape.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
