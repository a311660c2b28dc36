// Package meter accumulates per-phase metrics (loss, top-k accuracy) as plain
// sums, so a phase's meters on every rank can be merged with one all-reduce
// of their State vectors.
package meter

import (
	"fmt"

	"cohort/engine/tensor"
)

// Meter accumulates one metric over a phase.
type Meter interface {
	// Name is the metric's key in logs and metrics.jsonl.
	Name() string
	// Update adds a batch: its logits (N×classes), labels and mean loss.
	Update(logits *tensor.Tensor, labels []int32, loss float32)
	// Values reports the metric(s) so far by key.
	Values() map[string]float64
	// State is the meter's sums, to be summed across ranks.
	State() []float32
	// SetState replaces the sums (after a cross-rank reduction or resume).
	SetState([]float32)
	// Reset clears the sums for a new phase.
	Reset()
}

// Loss is the sample-weighted mean loss.
type Loss struct{ sum, count float32 }

// Name is "loss".
func (*Loss) Name() string { return "loss" }

// Update adds a batch's mean loss weighted by its size.
func (m *Loss) Update(logits *tensor.Tensor, _ []int32, loss float32) {
	n := float32(logits.Rows())
	m.sum += loss * n
	m.count += n
}

// Values gives {"loss": mean}.
func (m *Loss) Values() map[string]float64 {
	if m.count == 0 {
		return map[string]float64{"loss": 0}
	}
	return map[string]float64{"loss": float64(m.sum) / float64(m.count)}
}

// State is [sum, count].
func (m *Loss) State() []float32 { return []float32{m.sum, m.count} }

// SetState restores [sum, count].
func (m *Loss) SetState(s []float32) { m.sum, m.count = s[0], s[1] }

// Reset clears the sums.
func (m *Loss) Reset() { m.sum, m.count = 0, 0 }

// Accuracy is top-k accuracy for several k (ClassyVision's accuracy meter).
type Accuracy struct {
	topK    []int
	correct []float32
	count   float32
}

// NewAccuracy makes a top-k accuracy meter; every k must be ≥ 1.
func NewAccuracy(topK []int) (*Accuracy, error) {
	for _, k := range topK {
		if k < 1 {
			return nil, fmt.Errorf("meter: accuracy top-k %d must be ≥ 1", k)
		}
	}
	return &Accuracy{topK: append([]int(nil), topK...), correct: make([]float32, len(topK))}, nil
}

// Name is "accuracy".
func (*Accuracy) Name() string { return "accuracy" }

// Update counts, per k, the rows whose label is among the k largest logits.
// A label's rank is the number of logits strictly larger than it, so ties
// count in the sample's favour, as with a stable sort.
func (m *Accuracy) Update(logits *tensor.Tensor, labels []int32, _ float32) {
	cols := logits.Cols()
	for i, label := range labels {
		row := logits.Data[i*cols : (i+1)*cols]
		target := row[label]
		above := 0
		for _, v := range row {
			if v > target {
				above++
			}
		}
		for j, k := range m.topK {
			if above < k {
				m.correct[j]++
			}
		}
	}
	m.count += float32(len(labels))
}

// Values gives "accuracy" for top-1 and "top<k>" for every other k.
func (m *Accuracy) Values() map[string]float64 {
	out := make(map[string]float64, len(m.topK))
	for j, k := range m.topK {
		v := 0.0
		if m.count > 0 {
			v = float64(m.correct[j]) / float64(m.count)
		}
		if k == 1 {
			out["accuracy"] = v
		} else {
			out[fmt.Sprintf("top%d", k)] = v
		}
	}
	return out
}

// State is [correct per k..., count].
func (m *Accuracy) State() []float32 { return append(append([]float32(nil), m.correct...), m.count) }

// SetState restores State's layout.
func (m *Accuracy) SetState(s []float32) {
	copy(m.correct, s[:len(m.correct)])
	m.count = s[len(m.correct)]
}

// Reset clears the sums.
func (m *Accuracy) Reset() {
	clear(m.correct)
	m.count = 0
}
