package train

import (
	"fmt"

	"cohort/engine/meter"
)

// position is where a run continues: the phase to run and how many of its
// steps are already done.
type position struct{ phase, step int }

// agreeStop tells whether any rank was asked to stop (one tiny all-reduce).
func (tr *Trainer) agreeStop() (bool, error) {
	flag := []float32{0}
	if tr.stop.Load() {
		flag[0] = 1
	}
	if err := tr.comm.AllReduceMax(flag); err != nil {
		return false, fmt.Errorf("agree on a stop request: %w", err)
	}
	return flag[0] > 0, nil
}

// preempt runs the OnPreempt hooks (rank 0 checkpoints) and stops.
func (tr *Trainer) preempt() error {
	if err := tr.syncHost(); err != nil {
		return err
	}
	if err := tr.hooks.OnPreempt(&tr.state); err != nil {
		return fmt.Errorf("hook on preempt: %w", err)
	}
	return fmt.Errorf("%w after %s phase %d step %d (%d updates); resume with --resume auto",
		ErrPreempted, tr.state.Phase.Name(), tr.resume.phase, tr.resume.step, tr.state.NumUpdates)
}

// reducePartialMeters sums the unfinished phase's meters (and sample count)
// over ranks so rank 0's checkpoint holds the whole group's progress.
func (tr *Trainer) reducePartialMeters(samples int) error {
	buf := append([]float32{float32(samples)}, meterStates(tr.state.Meters)...)
	if err := tr.comm.AllReduceSum(buf); err != nil {
		return fmt.Errorf("reduce meters before preemption: %w", err)
	}
	tr.resumeMeters = buf
	return nil
}

func meterStates(ms []meter.Meter) []float32 {
	var buf []float32
	for _, m := range ms {
		buf = append(buf, m.State()...)
	}
	return buf
}

func setMeterStates(ms []meter.Meter, buf []float32) {
	off := 0
	for _, m := range ms {
		n := len(m.State())
		m.SetState(buf[off : off+n])
		off += n
	}
}
