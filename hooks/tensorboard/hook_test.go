package tensorboard

import (
	"path/filepath"
	"reflect"
	"testing"

	"cohort/engine/train"
)

var _ train.Hooks = (*Hook)(nil)

// runFakeTraining drives h through one epoch of 4 train steps and a test
// phase, as the trainer would.
func runFakeTraining(t *testing.T, h *Hook) {
	t.Helper()
	s := &train.State{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.OnStart(s))
	s.Phase = train.Phase{Index: 0, Train: true, Epoch: 0}
	s.Steps = 4
	must(h.OnPhaseStart(s))
	for s.Step = 0; s.Step < s.Steps; s.Step++ {
		s.Loss = 2 - float32(s.Step)/4
		s.LR = 0.1 * float64(s.Step+1)
		s.NumUpdates++
		must(h.OnStep(s))
	}
	s.Result = &train.PhaseResult{Phase: s.Phase, Samples: 1000, Seconds: 4,
		Values: map[string]float64{"loss": 1.5, "accuracy": 0.75, "top5": 0.875}}
	must(h.OnPhaseEnd(s))
	s.Phase = train.Phase{Index: 1, Train: false, Epoch: 0}
	s.Result = nil
	must(h.OnPhaseStart(s))
	for s.Step = 0; s.Step < 2; s.Step++ {
		must(h.OnStep(s)) // test steps never log step scalars
	}
	s.Result = &train.PhaseResult{Phase: s.Phase, Samples: 200, Seconds: 0.5,
		Values: map[string]float64{"loss": 1.25, "accuracy": 0.5}}
	must(h.OnPhaseEnd(s))
	must(h.OnEnd(s))
}

func TestHookWritesStepAndPhaseScalars(t *testing.T) {
	out := t.TempDir()
	runFakeTraining(t, &Hook{OutputDir: out, LogFreq: 2})
	paths, err := filepath.Glob(filepath.Join(out, "tensorboard", "events.out.tfevents.*"))
	if err != nil || len(paths) != 1 {
		t.Fatalf("event files %v, %v", paths, err)
	}
	evs, err := ReadEvents(paths[0]) // checks both CRCs of every record
	if err != nil {
		t.Fatal(err)
	}
	type scalar struct {
		step int64
		tag  string
		v    float32
	}
	var got []scalar
	for _, e := range evs[1:] {
		for _, v := range e.Values {
			got = append(got, scalar{e.Step, v.Tag, v.SimpleValue})
		}
	}
	want := []scalar{
		{2, "train/loss_step", 1.75}, {2, "train/lr", 0.2},
		{4, "train/loss_step", 1.25}, {4, "train/lr", 0.4},
		{1, "train/accuracy", 0.75}, {1, "train/loss", 1.5}, {1, "train/samples_per_s", 250}, {1, "train/top5", 0.875},
		{1, "test/accuracy", 0.5}, {1, "test/loss", 1.25}, {1, "test/samples_per_s", 400},
	}
	if evs[0].FileVersion != "brain.Event:2" || !reflect.DeepEqual(got, want) {
		t.Fatalf("header %q, scalars\n%v\nwant\n%v", evs[0].FileVersion, got, want)
	}
}

func TestHookWithoutStepLogging(t *testing.T) {
	out := t.TempDir()
	runFakeTraining(t, &Hook{OutputDir: out})
	paths, _ := filepath.Glob(filepath.Join(out, "tensorboard", "*"))
	if len(paths) != 1 {
		t.Fatalf("files %v", paths)
	}
	evs, err := ReadEvents(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 { // header, train phase, test phase
		t.Fatalf("%d events: %+v", len(evs), evs)
	}
}
