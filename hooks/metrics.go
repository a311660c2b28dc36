package hooks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"cohort/engine/train"
)

// MetricsFile appends one JSON line per finished phase to Path
// (<output dir>/metrics.jsonl), for plots and scripts.
type MetricsFile struct {
	Base
	Path string
}

// Name is "metrics_file".
func (*MetricsFile) Name() string { return "metrics_file" }

// Scope is rank 0: one file per run.
func (*MetricsFile) Scope() Scope { return RankZero }

// OnPhaseEnd appends the phase's line; the line is written with one write
// call so a reader never sees half of it.
func (h *MetricsFile) OnPhaseEnd(s *train.State) error {
	r := s.Result
	line := map[string]any{
		"phase":           r.Phase.Name(),
		"phase_index":     r.Phase.Index,
		"epoch":           r.Phase.Epoch + 1,
		"num_updates":     s.NumUpdates,
		"samples":         r.Samples,
		"resumed_samples": r.ResumedSamples,
		"seconds":         r.Seconds,
		"samples_per_s":   r.SamplesPerSecond(),
		"world_size":      s.World,
	}
	for k, v := range r.Values {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("metrics file %s: %w", h.Path, err)
	}
	return f.Close()
}
