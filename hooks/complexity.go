package hooks

import (
	"fmt"
	"io"

	"cohort/engine/train"
)

// Complexity prints the model's parameter count and FLOPs per sample at the
// start: ClassyVision's ModelComplexityHook.
type Complexity struct {
	Base
	Out io.Writer
}

// Name is "model_complexity".
func (*Complexity) Name() string { return "model_complexity" }

// Scope is rank 0.
func (*Complexity) Scope() Scope { return RankZero }

// OnStart prints the counts.
func (h *Complexity) OnStart(s *train.State) error {
	params := 0
	for _, p := range s.Task.Model.Params() {
		params += p.Value.Len()
	}
	in := s.Task.InputShape()
	out, flops := s.Task.Model.Cost(in)
	_, err := fmt.Fprintf(h.Out, "model: %s %v → %v, %d parameters, %.3g MFLOPs per sample forward (≈%.3g training)\n",
		s.Task.Config.Model.Name, in, out, params, float64(flops)/1e6, 3*float64(flops)/1e6)
	return err
}
