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
	normLayer                    // nn.BatchNorm
	avgLayer                     // nn.GlobalAvgPool
	addLayer                     // the sum that ends an nn.Residual
)

// String is the kind's name in logs.
func (k layerKind) String() string {
	switch k {
	case linearLayer:
		return "linear"
	case convLayer:
		return "conv"
	case poolLayer:
		return "pool"
	case normLayer:
		return "batchnorm"
	case avgLayer:
		return "avgpool"
	case addLayer:
		return "add"
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
	// Win is a convolution's or max pool's window over one input sample.
	Win cuda.Window
	// Channels is a convolution's output channel count, a BatchNorm's or
	// an average pool's channel count; Plane is a BatchNorm's values per
	// channel per sample and an average pool's input plane.
	Channels, Plane int
	// src and dst are the activations (network.values) the layer reads
	// and writes; an add reads src (its main branch's output) and src2
	// (its shortcut's output, or the block's input).
	src, src2, dst int
	// An add ends a block whose main branch is layers [main, short) and
	// whose shortcut is layers [short, the add) (empty: the identity).
	main, short int
	// weight and bias are the CPU model's, for names and initial values
	// (γ and β for a BatchNorm); bias is nil without one, weight is nil
	// for layers without parameters.
	weight, bias *nn.Param
	w, b         Slot
	// norm is a BatchNorm's CPU layer (momentum, epsilon); mean, vars
	// and count are its running statistics in the flat buffers area.
	norm              *nn.BatchNorm
	mean, vars, count Slot
}

// hasParams reports whether the layer has a weight.
func (l *layerSpec) hasParams() bool { return l.weight != nil }

// network is a CPU model planned for the device: its layers in forward
// order, each reading and writing activations by index, and where its
// parameters and buffers live in the flat device areas.
type network struct {
	layers []layerSpec
	// values are the activations' sizes per sample; values[0] is the
	// input batch.
	values []int
	// slots lay the parameters out in the order of the CPU trainer's
	// gradient buckets: the model's top-level layers last first, each
	// layer's Params() last first (a Residual's are its main branch's
	// then its shortcut's).
	slots []Slot
	// buffers lay the buffers out in nn.Buffers order.
	buffers []Slot
	// params and bufs are the planned model's tensors behind slots and
	// buffers, in the same order: the initial values.
	params, bufs []*nn.Param
	// start is the first layer whose backward pass runs: that of the
	// first top-level layer (or block) with parameters, which computes no
	// input gradient, as the CPU's Sequential.SkipInputGrad.
	start int
}

// planner builds a network.
type planner struct {
	net    network
	params map[*nn.Param]Slot
	bufs   map[*nn.Param]Slot
}

// plan reads a CPU model for samples of shape in (C×H×W, or any shape for
// an MLP; left out, it is the first Linear's input). Its layers are
// Linear, Conv2d, MaxPool2d, BatchNorm and GlobalAvgPool, each optionally
// followed by a ReLU, Flatten (a view), and Residual blocks of such
// layers.
func plan(model *nn.Sequential, in ...int) (*network, error) {
	net, starts, err := planLayers(model, in)
	if err != nil {
		return nil, err
	}
	for i, l := range model.Layers {
		if len(l.Params()) > 0 {
			net.start = starts[i]
			return net, nil
		}
	}
	return nil, fmt.Errorf("%w: the model has no layer with parameters", ErrUnsupported)
}

// planLayers is plan without the choice of where backward starts; it also
// returns the first device layer of each top-level layer.
func planLayers(model *nn.Sequential, in []int) (*network, []int, error) {
	shape, err := sampleShape(model, in)
	if err != nil {
		return nil, nil, err
	}
	p := &planner{params: map[*nn.Param]Slot{}, bufs: map[*nn.Param]Slot{}}
	p.layout(model)
	p.net.values = []int{numel(shape)}
	starts := make([]int, len(model.Layers))
	if _, _, err := p.sequence(model, 0, shape, "layer ", starts); err != nil {
		return nil, nil, err
	}
	return &p.net, starts, nil
}

// layout places the parameters in the trainer's bucket order and the
// buffers in nn.Buffers order.
func (p *planner) layout(model *nn.Sequential) {
	off := 0
	for i := len(model.Layers) - 1; i >= 0; i-- {
		ps := model.Layers[i].Params()
		for j := len(ps) - 1; j >= 0; j-- {
			s := slotOf(ps[j], off)
			off += s.Len
			p.params[ps[j]] = s
			p.net.slots = append(p.net.slots, s)
			p.net.params = append(p.net.params, ps[j])
		}
	}
	off = 0
	for _, b := range nn.Buffers(model) {
		s := slotOf(b, off)
		off += s.Len
		p.bufs[b] = s
		p.net.buffers = append(p.net.buffers, s)
		p.net.bufs = append(p.net.bufs, b)
	}
}

func slotOf(p *nn.Param, off int) Slot {
	return Slot{Name: p.Name, Shape: slices.Clone(p.Value.Shape), Offset: off, Len: p.Value.Len()}
}

// sequence plans s's layers on activation v of the given shape and returns
// the output activation and its shape. where prefixes error messages;
// starts, when not nil, receives the first device layer of each of s's
// layers.
func (p *planner) sequence(s *nn.Sequential, v int, shape []int, where string, starts []int) (int, []int, error) {
	first := len(p.net.layers)
	for i, l := range s.Layers {
		if starts != nil {
			starts[i] = len(p.net.layers)
		}
		at := fmt.Sprintf("%s%d", where, i)
		var spec layerSpec
		var err error
		switch l := l.(type) {
		case *nn.Flatten:
			shape = []int{numel(shape)}
			continue
		case *nn.ReLU:
			// Folded into the layer before, which must be this
			// sequence's and must have made v: a ReLU at the start of a
			// block's branch would change the block's input for the
			// other branch too.
			n := len(p.net.layers)
			if n == first || p.net.layers[n-1].dst != v || p.net.layers[n-1].ReLU {
				return 0, nil, fmt.Errorf("%w: %s: a ReLU must follow a Linear, Conv2d, MaxPool2d, BatchNorm or Residual layer of its sequence", ErrUnsupported, at)
			}
			p.net.layers[n-1].ReLU = true
			continue
		case *nn.Residual:
			if v, shape, err = p.residual(l, v, shape, at); err != nil {
				return 0, nil, err
			}
			continue
		default:
			if spec, shape, err = p.single(l, shape, at); err != nil {
				return 0, nil, err
			}
		}
		spec.src = v
		v = p.add(spec)
	}
	return v, shape, nil
}

// add appends l, writing a new activation, and returns that activation.
func (p *planner) add(l layerSpec) int {
	l.dst = len(p.net.values)
	p.net.values = append(p.net.values, l.Out)
	p.net.layers = append(p.net.layers, l)
	return l.dst
}

// residual plans block r on activation v: its main branch, its shortcut,
// then the add (and ReLU) that joins them.
func (p *planner) residual(r *nn.Residual, v int, shape []int, at string) (int, []int, error) {
	main := len(p.net.layers)
	m, mshape, err := p.sequence(r.Main, v, shape, at+".main.", nil)
	if err != nil {
		return 0, nil, err
	}
	short := len(p.net.layers)
	s, sshape := v, shape
	if r.Shortcut != nil {
		if s, sshape, err = p.sequence(r.Shortcut, v, shape, at+".shortcut.", nil); err != nil {
			return 0, nil, err
		}
	}
	switch {
	case main == short:
		return 0, nil, fmt.Errorf("%w: %s: a residual block's main branch has no layers", ErrUnsupported, at)
	case r.Shortcut != nil && short == len(p.net.layers):
		return 0, nil, fmt.Errorf("%w: %s: a residual block's shortcut has no layers (leave it nil for the identity)", ErrUnsupported, at)
	case !slices.Equal(mshape, sshape):
		return 0, nil, fmt.Errorf("%w: %s: the main branch gives %v, the shortcut %v", ErrUnsupported, at, mshape, sshape)
	}
	relu := r.EndsWithReLU()
	out := numel(mshape)
	return p.add(layerSpec{Kind: addLayer, In: out, Out: out, ReLU: relu, src: m, src2: s, main: main, short: short}), mshape, nil
}

// single plans a layer that is neither a ReLU, a Flatten nor a block, on
// input of the given shape, and returns it and its output shape.
func (p *planner) single(l nn.Layer, shape []int, at string) (layerSpec, []int, error) {
	var s layerSpec
	switch l := l.(type) {
	case *nn.Linear:
		if numel(shape) != l.In {
			return s, nil, fmt.Errorf("%w: %s takes %d features, its input has %v = %d", ErrUnsupported, at, l.In, shape, numel(shape))
		}
		s = layerSpec{Kind: linearLayer, In: l.In, Out: l.Out}
		p.withParams(&s, l.Weight, l.Bias)
		return s, []int{l.Out}, nil
	case *nn.Conv2d:
		if len(shape) != 3 || shape[0] != l.Spec.In {
			return s, nil, fmt.Errorf("%w: %s is a convolution of %d-channel images, its input is %v", ErrUnsupported, at, l.Spec.In, shape)
		}
		g, err := cuda.NewWindow(shape[0], shape[1], shape[2], l.Spec.Kernel, max(l.Spec.Stride, 1), l.Spec.Padding)
		if err != nil {
			return s, nil, fmt.Errorf("%w: %s: %w", ErrUnsupported, at, err)
		}
		s = layerSpec{Kind: convLayer, In: g.InLen(), Out: l.Spec.Out * g.OutPlane(), Win: g, Channels: l.Spec.Out}
		p.withParams(&s, l.Weight, l.Bias)
		return s, []int{l.Spec.Out, g.OH, g.OW}, nil
	case *nn.MaxPool2d:
		if len(shape) != 3 {
			return s, nil, fmt.Errorf("%w: %s is a max pool over images, its input is %v", ErrUnsupported, at, shape)
		}
		g, err := cuda.NewWindow(shape[0], shape[1], shape[2], l.Kernel, max(l.Stride, 1), l.Padding)
		if err == nil && 2*l.Padding > l.Kernel {
			err = fmt.Errorf("padding %d is more than half the %d×%d window", l.Padding, l.Kernel, l.Kernel)
		}
		if err != nil {
			return s, nil, fmt.Errorf("%w: %s: %w", ErrUnsupported, at, err)
		}
		return layerSpec{Kind: poolLayer, In: g.InLen(), Out: g.C * g.OutPlane(), Win: g}, []int{g.C, g.OH, g.OW}, nil
	case *nn.BatchNorm:
		if shape[0] != l.Features {
			return s, nil, fmt.Errorf("%w: %s is a BatchNorm of %d channels, its input is %v", ErrUnsupported, at, l.Features, shape)
		}
		n := numel(shape)
		s = layerSpec{Kind: normLayer, In: n, Out: n, Channels: l.Features, Plane: n / l.Features, norm: l,
			mean: p.bufs[l.RunningMean], vars: p.bufs[l.RunningVar], count: p.bufs[l.NumBatchesTracked]}
		p.withParams(&s, l.Weight, l.Bias)
		return s, slices.Clone(shape), nil
	case *nn.GlobalAvgPool:
		if len(shape) < 2 {
			return s, nil, fmt.Errorf("%w: %s is a global average pool over images, its input is %v", ErrUnsupported, at, shape)
		}
		n := numel(shape)
		return layerSpec{Kind: avgLayer, In: n, Out: shape[0], Channels: shape[0], Plane: n / shape[0]}, []int{shape[0]}, nil
	}
	return s, nil, fmt.Errorf("%w: %s is a %T (the GPU backend runs Linear, Conv2d, MaxPool2d, BatchNorm, GlobalAvgPool, ReLU, Flatten and Residual)", ErrUnsupported, at, l)
}

// withParams gives s its parameters and their slots.
func (p *planner) withParams(s *layerSpec, weight, bias *nn.Param) {
	s.weight, s.w = weight, p.params[weight]
	if bias != nil {
		s.bias, s.b = bias, p.params[bias]
	}
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
		case *nn.Conv2d, *nn.MaxPool2d, *nn.BatchNorm, *nn.GlobalAvgPool, *nn.Residual:
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

// paramsByName indexes tensors by their state_dict names.
func paramsByName(ps []*nn.Param) map[string]*nn.Param {
	byName := make(map[string]*nn.Param, len(ps))
	for _, p := range ps {
		byName[p.Name] = p
	}
	return byName
}
