package train

import (
	"fmt"
	"slices"

	"cohort/engine/nn"
)

// syncFromRankZero broadcasts rank 0's weights, optimizer state and position
// to every rank, so only rank 0 needs to read a checkpoint (other nodes may
// not see its filesystem) and all replicas start bit-identical.
func (tr *Trainer) syncFromRankZero() error {
	if tr.comm.Size() == 1 {
		return nil
	}
	for _, p := range tr.task.Model.Params() {
		if err := tr.comm.Broadcast(p.Value.Data, 0); err != nil {
			return fmt.Errorf("broadcast %s from rank 0: %w", p.Name, err)
		}
	}
	if err := tr.broadcastBuffers(); err != nil {
		return err
	}
	state := tr.task.Optimizer.State()
	names := make([]string, 0, len(state))
	for name := range state {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := tr.comm.Broadcast(state[name].Data, 0); err != nil {
			return fmt.Errorf("broadcast optimizer state %s from rank 0: %w", name, err)
		}
	}
	if err := tr.task.Optimizer.LoadState(state); err != nil {
		return fmt.Errorf("optimizer state from rank 0: %w", err)
	}
	// Positions travel as float32 pieces below 2^24, which are exact.
	u := tr.state.NumUpdates
	pos := []float32{float32(u & 0xffffff), float32(u >> 24 & 0xffffff), float32(u >> 48), float32(tr.next), float32(tr.resume.step)}
	if err := tr.comm.Broadcast(pos, 0); err != nil {
		return fmt.Errorf("broadcast position from rank 0: %w", err)
	}
	tr.state.NumUpdates = int64(pos[0]) | int64(pos[1])<<24 | int64(pos[2])<<48
	tr.next = int(pos[3])
	tr.resume = position{phase: tr.next, step: int(pos[4])}
	return nil
}

// broadcastBuffers gives every rank rank 0's model buffers (BatchNorm's
// running statistics).
func (tr *Trainer) broadcastBuffers() error {
	if tr.comm.Size() == 1 {
		return nil
	}
	for _, b := range nn.Buffers(tr.task.Model) {
		if err := tr.comm.Broadcast(b.Value.Data, 0); err != nil {
			return fmt.Errorf("broadcast buffer %s from rank 0: %w", b.Name, err)
		}
	}
	return nil
}
