package gpu

import "slices"

// The backward pass as a flat list of steps over gradient slots: device
// buffers of the widest activation, reused as soon as the gradient they
// hold has been read for the last time. A residual block's output
// gradient feeds both branches, so it is protected while the shortcut
// runs, and the branches' input gradients are summed at the end.

// stepKind is what a backward step does.
type stepKind int

const (
	layerStep stepKind = iota // a layer's backward pass: dy → parameter gradients and dx
	maskStep                  // dx = dy where the layer's ReLU output is positive, else 0
	sumStep                   // dx = a + b: a block's input gradient
)

// gradStep is one step of the backward pass. Slots are indices into the
// model's gradient buffers; -1 is none.
type gradStep struct {
	kind  stepKind
	layer int // the layer whose pass or ReLU this is (sumStep: the block's add)
	dy    int
	dx    int // the step's output
	a, b  int // sumStep's terms
	size  int // sumStep: values per sample
}

// schedule is the backward pass of a network and the number of gradient
// slots it needs. Slot loss receives the gradient of the loss with respect
// to the logits, where the pass starts.
type schedule struct {
	steps []gradStep
	slots int
	loss  int
}

// scheduler assigns slots while emitting steps. refs counts each slot's
// holders: a slot with one holder may be overwritten by it.
type scheduler struct {
	layers []layerSpec
	values []int
	steps  []gradStep
	refs   []int
}

// newSchedule plans net's backward pass, from the loss down to net.start.
// A slot still held at the end would be a bug in the scheduler itself.
func newSchedule(net *network) schedule {
	s := &scheduler{layers: net.layers, values: net.values}
	loss := s.alloc()
	if dx := s.back(net.start, len(net.layers), loss, false); dx >= 0 || slices.ContainsFunc(s.refs, func(r int) bool { return r != 0 }) {
		panic("gpu: schedule: gradient slots still held at the end of the pass")
	}
	return schedule{steps: s.steps, slots: len(s.refs), loss: loss}
}

// alloc returns a free slot, or a new one, held once.
func (s *scheduler) alloc() int {
	for i, r := range s.refs {
		if r == 0 {
			s.refs[i] = 1
			return i
		}
	}
	s.refs = append(s.refs, 1)
	return len(s.refs) - 1
}

func (s *scheduler) hold(slot int) { s.refs[slot]++ }
func (s *scheduler) drop(slot int) { s.refs[slot]-- }

// back emits the backward pass of layers [lo, hi), a run of whole layers
// and blocks, from gradient slot gy of their output, taking over the
// caller's hold on gy (it overwrites gy in place when that was gy's only
// hold). It returns a slot it holds for the caller with the gradient of
// the run's input, or -1 when needDx is false: the run's first layer or
// block then computes no input gradient.
func (s *scheduler) back(lo, hi, gy int, needDx bool) int {
	cur := gy
	for k := hi - 1; k >= lo; {
		first := k // the first layer of the unit ending at k
		if s.layers[k].Kind == addLayer {
			first = s.layers[k].main
		}
		need := first > lo || needDx
		if s.layers[k].Kind == addLayer {
			cur = s.block(k, cur, need)
		} else {
			cur = s.layer(k, cur, need)
		}
		k = first - 1
	}
	return cur
}

// masked emits the ReLU backward of layer k on gy, taking over the
// caller's hold on gy, and returns the slot of the result, held: gy itself
// (in place) when nobody else holds it.
func (s *scheduler) masked(k, gy int) int {
	if s.refs[gy] == 1 {
		s.steps = append(s.steps, gradStep{kind: maskStep, layer: k, dy: gy, dx: gy, a: -1, b: -1})
		return gy
	}
	g := s.alloc()
	s.steps = append(s.steps, gradStep{kind: maskStep, layer: k, dy: gy, dx: g, a: -1, b: -1})
	s.drop(gy)
	return g
}

// layer emits layer k's backward pass from gy, taking over the caller's
// hold on it, and returns the slot of its input gradient (-1 unless need).
func (s *scheduler) layer(k, gy int, need bool) int {
	l := &s.layers[k]
	if !need && !l.hasParams() {
		s.drop(gy)
		return -1 // nothing to compute
	}
	g := gy
	if l.ReLU && l.Kind == linearLayer {
		// The other layers mask inside their backward kernels.
		g = s.masked(k, gy)
	}
	dx := -1
	if need {
		dx = s.alloc()
	}
	s.steps = append(s.steps, gradStep{kind: layerStep, layer: k, dy: g, dx: dx, a: -1, b: -1})
	s.drop(g)
	return dx
}

// block emits the backward pass of the residual block that add k ends,
// from gy (whose hold it takes over): its ReLU, the shortcut, the main
// branch, then the sum of their input gradients.
func (s *scheduler) block(k, gy int, need bool) int {
	l := &s.layers[k]
	g := gy
	if l.ReLU {
		g = s.masked(k, gy)
	}
	// Both branches read g, the main branch second: held twice, the
	// shortcut cannot overwrite it. An identity shortcut's gradient is g
	// itself, read again by the sum, so the main branch cannot either.
	s.hold(g)
	ds := g
	if l.short < k {
		ds = s.back(l.short, k, g, need)
	}
	dm := s.back(l.main, l.short, g, need)
	if need {
		s.steps = append(s.steps, gradStep{kind: sumStep, layer: k, dx: dm, a: dm, b: ds, dy: -1, size: s.values[s.layers[l.main].src]})
	}
	if ds >= 0 {
		s.drop(ds)
	}
	return dm
}
