package hooks

import (
	"encoding/json"
	"fmt"
	"io"

	"cohort/engine/checkpoint"
	"cohort/engine/train"
)

// Checkpoint writes a checkpoint after every Period-th train phase and after
// the last one, on rank 0 only, atomically, keeping the newest Keep:
// ClassyVision's CheckpointHook.
type Checkpoint struct {
	Base
	Folder  string
	Period  int
	Keep    int
	Version string
	// Config is the resolved task config, stored in each checkpoint.
	Config json.RawMessage
	Out    io.Writer
}

// Name is "checkpoint".
func (*Checkpoint) Name() string { return "checkpoint" }

// Scope is rank 0: the weights are identical on every rank.
func (*Checkpoint) Scope() Scope { return RankZero }

// OnPhaseEnd saves after a train phase when the period says so.
func (h *Checkpoint) OnPhaseEnd(s *train.State) error {
	if !s.Phase.Train {
		return nil
	}
	meta, tensors := s.Trainer.Snapshot()
	lastEpoch := meta.Epoch == s.Task.NumEpochs
	if h.Period > 0 && meta.Epoch%h.Period != 0 && !lastEpoch {
		return nil
	}
	meta.Version = h.Version
	meta.Config = h.Config
	path, err := checkpoint.Save(h.Folder, meta, tensors)
	if err != nil {
		return err
	}
	if err := checkpoint.Prune(h.Folder, h.Keep); err != nil {
		return err
	}
	_, err = fmt.Fprintf(h.Out, "checkpoint: wrote %s (epoch %d, %d updates)\n", path, meta.Epoch, meta.NumUpdates)
	return err
}
