package optim

import (
	"fmt"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// SGD is torch.optim.SGD with dampening 0: stochastic gradient descent with
// optional L2 weight decay, heavy-ball or Nesterov momentum.
type SGD struct {
	params      []*nn.Param
	momentum    float32
	weightDecay float32
	nesterov    bool
	// bufs holds one momentum buffer per param (nil without momentum).
	// PyTorch starts a buffer as a copy of the first gradient; starting
	// from zeros gives the same values (up to the sign of a zero) because
	// momentum·0 + g == g, so no "first step" flag is kept or checkpointed.
	bufs []*tensor.Tensor
}

// NewSGD returns SGD over params. Nesterov momentum needs momentum > 0, as
// in PyTorch.
func NewSGD(params []*nn.Param, momentum, weightDecay float32, nesterov bool) (*SGD, error) {
	if err := checkParams(params); err != nil {
		return nil, fmt.Errorf("sgd: %w", err)
	}
	for _, h := range []struct {
		name string
		v    float32
	}{{"momentum", momentum}, {"weight_decay", weightDecay}} {
		if err := checkHyper(h.name, h.v); err != nil {
			return nil, fmt.Errorf("sgd: %w", err)
		}
	}
	if nesterov && momentum == 0 {
		return nil, fmt.Errorf("sgd: %w: nesterov momentum requires momentum > 0", ErrInvalidOptimizer)
	}
	s := &SGD{params: params, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov}
	if momentum != 0 {
		s.bufs = zerosLike(params)
	}
	return s, nil
}

// Step applies w -= lr·d, where d is the gradient plus weight decay, passed
// through the momentum buffer when momentum is set.
func (s *SGD) Step(lr float32) {
	for i, p := range s.params {
		w := p.Value.Data
		g := p.Grad.Data[:len(w)]
		if s.bufs == nil {
			sgdPlain(w, g, lr, s.weightDecay)
			continue
		}
		sgdMomentum(w, g, s.bufs[i].Data[:len(w)], lr, s.momentum, s.weightDecay, s.nesterov)
	}
}

// sgdPlain applies w -= lr·(g + wd·w). It and sgdMomentum add wd·w even
// when wd is 0, where PyTorch skips it: g + 0·w == g for every finite w, and
// testing wd per element made the momentum loop twice as slow.
func sgdPlain(w, g []float32, lr, wd float32) {
	g = g[:len(w)]
	for i := range w {
		d := g[i] + float32(wd*w[i])
		w[i] -= float32(lr * d)
	}
}

// sgdMomentum applies buf = m·buf + d, then w -= lr·buf (or lr·(d + m·buf)
// for Nesterov), with d = g + wd·w.
func sgdMomentum(w, g, buf []float32, lr, m, wd float32, nesterov bool) {
	g, buf = g[:len(w)], buf[:len(w)]
	for i := range w {
		d := g[i] + float32(wd*w[i])
		b := float32(m*buf[i]) + d
		buf[i] = b
		if nesterov {
			d += float32(m * b)
		} else {
			d = b
		}
		w[i] -= float32(lr * d)
	}
}

// live lists the momentum buffers under "<param>.momentum_buffer".
func (s *SGD) live() []namedTensor {
	out := make([]namedTensor, len(s.bufs))
	for i, b := range s.bufs {
		out[i] = namedTensor{s.params[i].Name + ".momentum_buffer", b}
	}
	return out
}

// State returns copies of the momentum buffers (none without momentum).
func (s *SGD) State() map[string]*tensor.Tensor { return cloneState(s.live()) }

// LoadState restores the momentum buffers.
func (s *SGD) LoadState(src map[string]*tensor.Tensor) error {
	live := s.live()
	if err := checkState(live, src); err != nil {
		return fmt.Errorf("sgd: %w", err)
	}
	copyState(live, src)
	return nil
}
