package hooks

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"cohort/engine/checkpoint"
	"cohort/engine/profile"
	"cohort/engine/tensor"
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

// OnStart proves the folder writable before any training time is spent:
// a folder that cannot take a checkpoint is an error now, not an epoch later.
func (h *Checkpoint) OnStart(*train.State) error {
	if st, err := os.Stat(h.Folder); err == nil && !st.IsDir() {
		return fmt.Errorf("checkpoint folder %s is not a directory (choose another with --checkpoint-folder)", h.Folder)
	}
	if err := os.MkdirAll(h.Folder, 0o755); err != nil {
		return fmt.Errorf("checkpoint folder %s: %w (choose another with --checkpoint-folder)", h.Folder, err)
	}
	f, err := os.CreateTemp(h.Folder, ".write-test-*")
	if err != nil {
		return fmt.Errorf("checkpoint folder %s is not writable: %w (choose another with --checkpoint-folder)", h.Folder, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

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
	return h.save(s, meta, tensors)
}

// OnPreempt always saves: the run is about to stop, mid-phase included.
func (h *Checkpoint) OnPreempt(s *train.State) error {
	meta, tensors := s.Trainer.Snapshot()
	return h.save(s, meta, tensors)
}

func (h *Checkpoint) save(s *train.State, meta checkpoint.Meta, tensors map[string]*tensor.Tensor) error {
	defer s.Trainer.Profiler().Begin("checkpoint write", profile.CatCheckpoint).End()
	meta.Version = h.Version
	meta.Config = h.Config
	path, err := checkpoint.Save(h.Folder, meta, tensors)
	if err != nil {
		return err
	}
	if err := checkpoint.Prune(h.Folder, h.Keep); err != nil {
		return err
	}
	_, err = fmt.Fprintf(h.Out, "checkpoint: wrote %s (phase %d step %d, %d updates)\n", path, meta.PhaseIndex, meta.StepInPhase, meta.NumUpdates)
	return err
}
