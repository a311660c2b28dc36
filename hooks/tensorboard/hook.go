package tensorboard

import (
	"cmp"
	"path/filepath"
	"slices"

	"cohort/engine/train"
)

// Hook logs the train loss and LR every LogFreq train steps (at the update
// count) and every phase's reduced meters and throughput (at the 1-based
// epoch) to <OutputDir>/tensorboard. Run it on rank 0 only: the phase
// values are already reduced over ranks.
//
// It implements train.Hooks but not hooks.Hook, because package hooks,
// which picks the hooks for a run, imports this one.
type Hook struct {
	OutputDir string
	// LogFreq is the step interval of the train/loss_step and train/lr
	// scalars; 0 writes only phase scalars.
	LogFreq int
	w       *Writer
}

// Name is "tensorboard".
func (*Hook) Name() string { return "tensorboard" }

// OnStart opens a new event file.
func (h *Hook) OnStart(*train.State) error {
	w, err := NewWriter(filepath.Join(h.OutputDir, "tensorboard"))
	h.w = w
	return err
}

// OnPhaseStart does nothing.
func (*Hook) OnPhaseStart(*train.State) error { return nil }

// OnStep writes the last step's local loss and the LR every LogFreq train
// steps.
func (h *Hook) OnStep(s *train.State) error {
	if h.LogFreq <= 0 || !s.Phase.Train || s.Step%h.LogFreq != h.LogFreq-1 {
		return nil
	}
	return h.w.AddScalars(s.NumUpdates,
		Value{Tag: "train/loss_step", SimpleValue: s.Loss},
		Value{Tag: "train/lr", SimpleValue: float32(s.LR)})
}

// OnPhaseEnd writes <phase>/<meter> for every reduced meter value and
// <phase>/samples_per_s, then flushes so TensorBoard shows the phase.
func (h *Hook) OnPhaseEnd(s *train.State) error {
	r := s.Result
	name := r.Phase.Name()
	vals := make([]Value, 0, len(r.Values)+1)
	for k, v := range r.Values {
		vals = append(vals, Value{Tag: name + "/" + k, SimpleValue: float32(v)})
	}
	vals = append(vals, Value{Tag: name + "/samples_per_s", SimpleValue: float32(r.SamplesPerSecond())})
	slices.SortFunc(vals, func(a, b Value) int { return cmp.Compare(a.Tag, b.Tag) })
	if err := h.w.AddScalars(int64(r.Phase.Epoch+1), vals...); err != nil {
		return err
	}
	return h.w.Flush()
}

// OnPreempt closes the file: the run stops without OnEnd.
func (h *Hook) OnPreempt(*train.State) error { return h.close() }

// OnEnd closes the file.
func (h *Hook) OnEnd(*train.State) error { return h.close() }

func (h *Hook) close() error {
	if h.w == nil {
		return nil
	}
	err := h.w.Close()
	h.w = nil
	return err
}
