package hooks

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"cohort/engine/train"
)

// Logging prints the loss and LR every Freq steps of a train phase (0 = only
// phase summaries) and every phase's reduced meters and throughput:
// ClassyVision's LossLrMeterLoggingHook.
type Logging struct {
	Base
	Out  io.Writer
	Freq int
}

// Name is "logging".
func (*Logging) Name() string { return "logging" }

// Scope is rank 0: the values it prints are already reduced.
func (*Logging) Scope() Scope { return RankZero }

// OnStep prints the running loss every Freq train steps.
func (h *Logging) OnStep(s *train.State) error {
	if h.Freq <= 0 || !s.Phase.Train || s.Step%h.Freq != h.Freq-1 {
		return nil
	}
	_, err := fmt.Fprintf(h.Out, "epoch %d/%d train step %d/%d: loss %.4f lr %.6g\n",
		s.Phase.Epoch+1, s.Task.NumEpochs, s.Step+1, s.Steps, s.Loss, s.LR)
	return err
}

// OnPhaseEnd prints the phase's reduced meters and samples/s.
func (h *Logging) OnPhaseEnd(s *train.State) error {
	r := s.Result
	timed := fmt.Sprintf("%d samples in %.1f s", r.Samples, r.Seconds)
	if r.ResumedSamples > 0 {
		timed = fmt.Sprintf("%d samples in %.1f s after resuming at %d", r.Samples-r.ResumedSamples, r.Seconds, r.ResumedSamples)
	}
	_, err := fmt.Fprintf(h.Out, "epoch %d/%d %s: %s, %.0f samples/s (%s)\n",
		r.Phase.Epoch+1, s.Task.NumEpochs, r.Phase.Name(), formatValues(r.Values), r.SamplesPerSecond(), timed)
	return err
}

// formatValues prints loss first, then the rest by name; fractions that
// are accuracies print as percentages.
func formatValues(v map[string]float64) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != "loss" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := []string{fmt.Sprintf("loss %.4f", v["loss"])}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f%%", k, 100*v[k]))
	}
	return strings.Join(parts, ", ")
}
