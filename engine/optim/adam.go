package optim

import (
	"fmt"
	"math"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// Adam is torch.optim.Adam (amsgrad off): weight decay is L2, added to the
// gradient before the moment estimates.
type Adam struct{ adam }

// AdamW is torch.optim.AdamW: weight decay is decoupled, w *= 1 − lr·wd
// before the Adam update.
type AdamW struct{ adam }

// NewAdam returns Adam over params.
func NewAdam(params []*nn.Param, beta1, beta2, eps, weightDecay float32) (*Adam, error) {
	a, err := newAdam(params, beta1, beta2, eps, weightDecay, false)
	if err != nil {
		return nil, fmt.Errorf("adam: %w", err)
	}
	return &Adam{a}, nil
}

// NewAdamW returns AdamW over params.
func NewAdamW(params []*nn.Param, beta1, beta2, eps, weightDecay float32) (*AdamW, error) {
	a, err := newAdam(params, beta1, beta2, eps, weightDecay, true)
	if err != nil {
		return nil, fmt.Errorf("adamw: %w", err)
	}
	return &AdamW{a}, nil
}

// adam is the state and update shared by Adam and AdamW.
type adam struct {
	params       []*nn.Param
	beta1, beta2 float32
	eps          float32
	weightDecay  float32
	decoupled    bool
	// step counts completed updates; PyTorch keeps one per param, but all
	// params here step together.
	step             int64
	expAvg, expAvgSq []*tensor.Tensor
}

func newAdam(params []*nn.Param, beta1, beta2, eps, weightDecay float32, decoupled bool) (adam, error) {
	if err := checkParams(params); err != nil {
		return adam{}, err
	}
	for _, h := range []struct {
		name string
		v    float32
	}{{"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weightDecay}} {
		if err := checkHyper(h.name, h.v); err != nil {
			return adam{}, err
		}
	}
	if beta1 >= 1 || beta2 >= 1 {
		return adam{}, fmt.Errorf("%w: betas (%v, %v) must be below 1", ErrInvalidOptimizer, beta1, beta2)
	}
	return adam{
		params: params, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
		decoupled: decoupled, expAvg: zerosLike(params), expAvgSq: zerosLike(params),
	}, nil
}

// adamScalars are the per-step constants of the element loop, each cast to
// float32 once, as PyTorch casts its Python-double scalars for a float32
// kernel.
type adamScalars struct {
	decay      float32 // AdamW's 1 − lr·wd; 1 for Adam (exact no-op)
	l2         float32 // Adam's weight decay added to the gradient; 0 for AdamW
	lerpSmall  bool    // which of torch.lerp's two forms applies
	lerpW      float32 // exp_avg.lerp_(g, 1 − β1): the weight, or weight − 1
	beta2      float32
	oneMinusB2 float32
	bc2Sqrt    float32 // sqrt(1 − β2^t)
	eps        float32
	negStep    float32 // −lr / (1 − β1^t)
}

func (a *adam) scalars(lr float32) adamScalars {
	t := float64(a.step)
	b1, b2 := float64(a.beta1), float64(a.beta2)
	w1 := 1 - b1
	c := adamScalars{
		decay:      1,
		lerpSmall:  w1 < 0.5,
		beta2:      a.beta2,
		oneMinusB2: float32(1 - b2),
		bc2Sqrt:    float32(math.Sqrt(1 - math.Pow(b2, t))),
		eps:        a.eps,
		negStep:    float32(-float64(lr) / (1 - math.Pow(b1, t))),
	}
	// torch.lerp switches form at weight 0.5 for accuracy; writing the large
	// form as end + (w−1)·(end−start) keeps one multiply in both.
	c.lerpW = float32(w1)
	if !c.lerpSmall {
		c.lerpW = float32(w1) - 1
	}
	if a.decoupled {
		c.decay = float32(1 - float64(lr)*float64(a.weightDecay))
	} else {
		c.l2 = a.weightDecay
	}
	return c
}

// Step applies one Adam update. Per element, in PyTorch's order:
// w *= decay; g += l2·w; m = lerp(m, g, 1−β1); v = β2·v + (1−β2)·g·g;
// w += (−lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps).
func (a *adam) Step(lr float32) {
	a.step++
	c := a.scalars(lr)
	for i, p := range a.params {
		w := p.Value.Data
		adamUpdate(w, p.Grad.Data[:len(w)], a.expAvg[i].Data[:len(w)], a.expAvgSq[i].Data[:len(w)], &c)
	}
}

func adamUpdate(w, g, m, v []float32, c *adamScalars) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i := range w {
		wi := w[i] * c.decay
		gi := g[i]
		if c.l2 != 0 {
			gi += float32(c.l2 * wi)
		}
		mi := m[i]
		if c.lerpSmall {
			mi += float32(c.lerpW * (gi - mi))
		} else {
			mi = gi + float32(c.lerpW*(gi-mi))
		}
		m[i] = mi
		vi := float32(v[i]*c.beta2) + float32(float32(c.oneMinusB2*gi)*gi)
		v[i] = vi
		denom := float32(math.Sqrt(float64(vi)))/c.bc2Sqrt + c.eps
		w[i] = wi + float32(c.negStep*mi)/denom
	}
}

// live lists "<param>.exp_avg" and "<param>.exp_avg_sq" per param, then the
// step counter (a fresh tensor, so loading into it is harmless).
func (a *adam) live() []namedTensor {
	out := make([]namedTensor, 0, 2*len(a.params)+1)
	for i, p := range a.params {
		out = append(out,
			namedTensor{p.Name + ".exp_avg", a.expAvg[i]},
			namedTensor{p.Name + ".exp_avg_sq", a.expAvgSq[i]})
	}
	return append(out, namedTensor{stepKey, encodeStep(a.step)})
}

// State returns copies of the moment estimates and the step counter, the
// latter as a 2-element tensor {step mod 2^24, step / 2^24} so that it stays
// exact in float32.
func (a *adam) State() map[string]*tensor.Tensor { return cloneState(a.live()) }

// LoadState restores the moment estimates and the step counter.
func (a *adam) LoadState(src map[string]*tensor.Tensor) error {
	live := a.live()
	if err := checkState(live, src); err != nil {
		return err
	}
	step, err := decodeStep(src[stepKey])
	if err != nil {
		return err
	}
	copyState(live, src)
	a.step = step
	return nil
}
