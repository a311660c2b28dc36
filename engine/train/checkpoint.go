package train

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"cohort/engine/checkpoint"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// ErrIncompatible marks a checkpoint that does not fit this task.
var ErrIncompatible = errors.New("train: checkpoint does not fit this task")

const (
	modelPrefix     = "model."
	optimizerPrefix = "optimizer."
)

// Snapshot captures what a resume needs at the current position (after a
// phase, or mid-phase when preempted): weights, optimizer state, the
// position and, mid-phase, the phase's meter sums so far. Tensors are
// copies, so the caller may write them while training goes on.
func (tr *Trainer) Snapshot() (checkpoint.Meta, map[string]*tensor.Tensor) {
	s := &tr.state
	tensors := map[string]*tensor.Tensor{}
	for _, p := range tr.modelState() {
		tensors[modelPrefix+p.Name] = p.Value.Clone()
	}
	for name, v := range tr.task.Optimizer.State() {
		tensors[optimizerPrefix+name] = v.Clone()
	}
	epochs := 0
	for _, p := range s.Phases[:tr.resume.phase] {
		if p.Train {
			epochs++
		}
	}
	meta := checkpoint.Meta{
		PhaseIndex:  tr.resume.phase,
		StepInPhase: tr.resume.step,
		Epoch:       epochs,
		NumUpdates:  s.NumUpdates,
		Seed:        tr.seed,
		WorldSize:   s.World,
		Meters:      map[string]float64{},
	}
	if tr.resume.step > 0 {
		for i, v := range tr.resumeMeters {
			meta.Meters[fmt.Sprintf("%s%d", partialMeterPrefix, i)] = float64(v)
		}
	} else if s.Result != nil {
		for k, v := range s.Result.Values {
			meta.Meters[s.Phase.Name()+"_"+k] = v
		}
	}
	return meta, tensors
}

// modelState is what a checkpoint holds of the model: its params, then its
// buffers (PyTorch's state_dict).
func (tr *Trainer) modelState() []*nn.Param {
	return append(tr.task.Model.Params(), nn.Buffers(tr.task.Model)...)
}

// partialMeterPrefix names the meter sums of an unfinished phase in Meta.Meters.
const partialMeterPrefix = "partial."

// Restore loads a checkpoint's weights and optimizer state and makes Run
// continue with the phase after the one it was taken at.
func (tr *Trainer) Restore(ck *checkpoint.Checkpoint) error {
	m := ck.Meta
	if m.PhaseIndex < 0 || m.PhaseIndex > len(tr.state.Phases) || (m.StepInPhase > 0 && m.PhaseIndex == len(tr.state.Phases)) {
		return fmt.Errorf("%w: %s resumes at phase %d step %d but this config has %d phases", ErrIncompatible, ck.Path, m.PhaseIndex, m.StepInPhase, len(tr.state.Phases))
	}
	if m.Seed != tr.seed {
		return fmt.Errorf("%w: %s was trained with seed %d, this run has seed %d (pass --seed %d)", ErrIncompatible, ck.Path, m.Seed, tr.seed, m.Seed)
	}
	for _, p := range tr.modelState() {
		v, ok := ck.Tensors[modelPrefix+p.Name]
		if !ok {
			return fmt.Errorf("%w: %s has no tensor %s%s", ErrIncompatible, ck.Path, modelPrefix, p.Name)
		}
		if !slices.Equal(v.Shape, p.Value.Shape) {
			return fmt.Errorf("%w: %s: %s has shape %v, the model's is %v", ErrIncompatible, ck.Path, p.Name, v.Shape, p.Value.Shape)
		}
		copy(p.Value.Data, v.Data)
	}
	opt := map[string]*tensor.Tensor{}
	for name, v := range ck.Tensors {
		if rest, ok := strings.CutPrefix(name, optimizerPrefix); ok {
			opt[rest] = v
		}
	}
	if err := tr.task.Optimizer.LoadState(opt); err != nil {
		return fmt.Errorf("%w: %s: optimizer state: %v", ErrIncompatible, ck.Path, err)
	}
	tr.state.NumUpdates = m.NumUpdates
	tr.next = m.PhaseIndex
	tr.resume = position{phase: m.PhaseIndex, step: m.StepInPhase}
	tr.resumeMeters = nil
	if m.StepInPhase > 0 {
		for i := 0; ; i++ {
			v, ok := m.Meters[fmt.Sprintf("%s%d", partialMeterPrefix, i)]
			if !ok {
				break
			}
			tr.resumeMeters = append(tr.resumeMeters, float32(v))
		}
		if want := 1 + len(meterStates(tr.task.NewMeters())); len(tr.resumeMeters) != want {
			return fmt.Errorf("%w: %s holds %d meter sums for its unfinished phase, this task's meters need %d", ErrIncompatible, ck.Path, len(tr.resumeMeters), want)
		}
	}
	return nil
}
