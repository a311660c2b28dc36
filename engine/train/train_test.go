package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"cohort/engine/checkpoint"
	"cohort/engine/cpu"
	"cohort/engine/data"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/task"
)

// newTask builds a small MLP task on synthetic data directly, so the
// trainer is tested without the config loader.
func newTask(t *testing.T, epochs, batch, accum int, dropout float32) *task.Task {
	t.Helper()
	return newTaskWith(t, epochs, batch, accum, dropout, false)
}

// newTaskWith is newTask with, when batchnorm is set, a BatchNorm1d after
// the hidden Linear.
func newTaskWith(t *testing.T, epochs, batch, accum int, dropout float32, batchnorm bool) *task.Task {
	t.Helper()
	train, err := data.NewSynthetic(512, 4, []int{1, 4, 4}, 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	test, _ := data.NewSynthetic(128, 4, []int{1, 4, 4}, 0, 1, 1)
	rng := rand.New(rand.NewPCG(7, 7))
	layers := []nn.Layer{nn.NewFlatten(), nn.NewLinear(cpu.BLAS(), rng, "1", 16, 32)}
	if batchnorm {
		layers = append(layers, nn.NewBatchNorm("bn", 32))
	}
	layers = append(layers, nn.NewReLU())
	if dropout > 0 {
		d, err := nn.NewDropout(dropout)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, d)
	}
	layers = append(layers, nn.NewLinear(cpu.BLAS(), rng, "3", 32, 4))
	model := nn.NewSequential(layers...)
	model.SkipInputGrad = true
	opt, err := optim.NewSGD(model.Params(), 0.9, 1e-4, true)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := optim.NewSchedule(optim.ScheduleSpec{Name: "cosine", StartValue: 0.1, EndValue: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	return &task.Task{
		Model: model, Loss: nn.NewSoftmaxCrossEntropy(), Optimizer: opt, LR: lr, LRInterval: "step",
		Train: train, Test: test, TrainBatch: batch, TestBatch: 64, ShuffleTrain: true,
		NumEpochs: epochs, TestPhasePeriod: 1, AccumSteps: accum, TopK: []int{1},
	}
}

// recorder keeps every phase result.
type recorder struct {
	noHooks
	results []PhaseResult
}

func (r *recorder) OnPhaseEnd(s *State) error {
	r.results = append(r.results, *s.Result)
	return nil
}

// weights lists the model's params and buffers.
func weights(tk *task.Task) [][]float32 {
	var w [][]float32
	for _, p := range append(tk.Model.Params(), nn.Buffers(tk.Model)...) {
		w = append(w, slices.Clone(p.Value.Data))
	}
	return w
}

// resumeAndRun restores snap into a fresh trainer of tk and runs it to the end.
func resumeAndRun(t *testing.T, tk *task.Task, snap *checkpoint.Checkpoint, o Options) *Trainer {
	t.Helper()
	tr, err := New(tk, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// assertSameWeights fails unless both tasks' weights are bit-identical.
func assertSameWeights(t *testing.T, a, b *task.Task) {
	t.Helper()
	wa, wb := weights(a), weights(b)
	for i := range wa {
		if !slices.Equal(wa[i], wb[i]) {
			t.Fatalf("param %d differs", i)
		}
	}
}

func TestTrainingLearnsAndReportsPhases(t *testing.T) {
	tk := newTask(t, 3, 32, 1, 0)
	rec := &recorder{}
	tr, err := New(tk, Options{Seed: 1, Hooks: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	if len(rec.results) != 6 {
		t.Fatalf("%d phases, want 3 train + 3 test", len(rec.results))
	}
	first, last := rec.results[0], rec.results[4]
	if !(last.Values["loss"] < first.Values["loss"]/2) {
		t.Errorf("train loss %v → %v: did not halve", first.Values["loss"], last.Values["loss"])
	}
	if acc := rec.results[5].Values["accuracy"]; acc < 0.9 {
		t.Errorf("test accuracy %v on a separable synthetic task", acc)
	}
	if first.Samples != 512 || rec.results[1].Samples != 128 {
		t.Errorf("samples %d/%d", first.Samples, rec.results[1].Samples)
	}
	if got := tr.State().NumUpdates; got != 3*16 {
		t.Errorf("%d updates, want 48", got)
	}
}

// Resume from a phase-end snapshot must give bit-identical weights to an
// uninterrupted run, dropout included.
// The same holds with BatchNorm: its running statistics travel in the
// snapshot (and a snapshot without them is refused).
func TestResumeIsBitIdentical(t *testing.T) {
	for _, batchnorm := range []bool{false, true} {
		t.Run(fmt.Sprintf("batchnorm=%v", batchnorm), func(t *testing.T) {
			full := newTaskWith(t, 4, 32, 1, 0.2, batchnorm)
			tr, _ := New(full, Options{Seed: 3})
			if err := tr.Run(); err != nil {
				t.Fatal(err)
			}

			// First half: stop after the train phase of epoch 2 (phase index 2).
			half := newTaskWith(t, 4, 32, 1, 0.2, batchnorm)
			var snap *checkpoint.Checkpoint
			stopper := &snapshotAt{phase: 2, take: func(tr *Trainer) {
				meta, tensors := tr.Snapshot()
				snap = &checkpoint.Checkpoint{Path: "memory", Meta: meta, Tensors: tensors}
			}}
			tr1, _ := New(half, Options{Seed: 3, Hooks: stopper})
			if err := tr1.Run(); !errors.Is(err, errStop) {
				t.Fatalf("first half: %v", err)
			}
			resumed := newTaskWith(t, 4, 32, 1, 0.2, batchnorm)
			tr2 := resumeAndRun(t, resumed, snap, Options{Seed: 3})
			assertSameWeights(t, full, resumed)
			if tr2.State().NumUpdates != tr.State().NumUpdates {
				t.Fatalf("updates %d vs %d", tr2.State().NumUpdates, tr.State().NumUpdates)
			}
			if !batchnorm {
				return
			}
			delete(snap.Tensors, "model.bn.running_var")
			tr3, _ := New(newTaskWith(t, 4, 32, 1, 0.2, true), Options{Seed: 3})
			if err := tr3.Restore(snap); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "no tensor model.bn.running_var") {
				t.Fatalf("snapshot without running_var: %v", err)
			}
		})
	}
}

var errStop = errors.New("stop here")

type snapshotAt struct {
	noHooks
	phase int
	take  func(*Trainer)
}

func (h *snapshotAt) OnPhaseEnd(s *State) error {
	if s.Phase.Index == h.phase {
		h.take(s.Trainer)
		return errStop
	}
	return nil
}

func TestRestoreRejectsMismatches(t *testing.T) {
	tk := newTask(t, 2, 32, 1, 0)
	tr, _ := New(tk, Options{Seed: 1})
	meta, tensors := tr.Snapshot()
	ck := &checkpoint.Checkpoint{Path: "x", Meta: meta, Tensors: tensors}
	other, _ := New(newTask(t, 2, 32, 1, 0), Options{Seed: 2})
	if err := other.Restore(ck); err == nil {
		t.Fatal("seed mismatch accepted")
	}
	delete(tensors, "model.3.bias")
	same, _ := New(newTask(t, 2, 32, 1, 0), Options{Seed: 1})
	if err := same.Restore(ck); err == nil {
		t.Fatal("missing tensor accepted")
	}
}

// Accumulating two micro-batches of 32 must equal one batch of 64 (up to
// float rounding: the sums are ordered differently).
func TestGradientAccumulationMatchesBigBatch(t *testing.T) {
	big := newTask(t, 1, 64, 1, 0)
	small := newTask(t, 1, 32, 2, 0)
	for _, tk := range []*task.Task{big, small} {
		tr, _ := New(tk, Options{Seed: 5})
		if err := tr.Run(); err != nil {
			t.Fatal(err)
		}
		if tr.State().NumUpdates != 8 {
			t.Fatalf("%d updates, want 8", tr.State().NumUpdates)
		}
	}
	a, b := weights(big), weights(small)
	for i := range a {
		for j := range a[i] {
			if d := a[i][j] - b[i][j]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("param %d[%d]: %v vs %v", i, j, a[i][j], b[i][j])
			}
		}
	}
}

// stopAt asks for a stop once the phase reaches a step, as a signal would.
type stopAt struct {
	noHooks
	phase, step int
	flag        *atomic.Bool
	snap        *checkpoint.Checkpoint
}

func (h *stopAt) OnStep(s *State) error {
	if s.Phase.Index == h.phase && s.Step == h.step {
		h.flag.Store(true)
	}
	return nil
}

func (h *stopAt) OnPreempt(s *State) error {
	meta, tensors := s.Trainer.Snapshot()
	h.snap = &checkpoint.Checkpoint{Path: "memory", Meta: meta, Tensors: tensors}
	return nil
}

// A stop mid-phase checkpoints that step; resuming from it ends with the
// weights and the phase metrics of an uninterrupted run.
func TestPreemptMidPhaseResumesBitIdentical(t *testing.T) {
	full := newTask(t, 3, 32, 1, 0.2)
	rec := &recorder{}
	tr, _ := New(full, Options{Seed: 4, Hooks: rec})
	if err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	for _, stopStep := range []int{0, 6, 14, 15} {
		t.Run(fmt.Sprint("step", stopStep), func(t *testing.T) {
			h := &stopAt{phase: 2, step: stopStep, flag: new(atomic.Bool)}
			tr1, _ := New(newTask(t, 3, 32, 1, 0.2), Options{Seed: 4, Hooks: h, Stop: h.flag})
			if err := tr1.Run(); !errors.Is(err, ErrPreempted) {
				t.Fatalf("run: %v", err)
			}
			// The request set after step k is agreed at the next update.
			wantPos, wantStep := 2, stopStep+2
			if stopStep == 15 { // after the last step: the stop lands at the next boundary
				wantPos, wantStep = 3, 0
			}
			if h.snap.Meta.PhaseIndex != wantPos || h.snap.Meta.StepInPhase != wantStep {
				t.Fatalf("snapshot at phase %d step %d, want %d/%d", h.snap.Meta.PhaseIndex, h.snap.Meta.StepInPhase, wantPos, wantStep)
			}
			resumed := newTask(t, 3, 32, 1, 0.2)
			rec2 := &recorder{}
			resumeAndRun(t, resumed, h.snap, Options{Seed: 4, Hooks: rec2})
			assertSameWeights(t, full, resumed)
			if got, want := rec2.results[0], rec.results[wantPos]; got.Samples != want.Samples || got.Values["loss"] != want.Values["loss"] {
				t.Fatalf("resumed phase reports %v samples loss %v, uninterrupted %v / %v", got.Samples, got.Values["loss"], want.Samples, want.Values["loss"])
			}
			// Its throughput counts only the samples after the resume.
			if got := rec2.results[0].ResumedSamples; got != 32*wantStep {
				t.Errorf("resumed phase says %d samples came before the resume, want %d", got, 32*wantStep)
			}
		})
	}
}
