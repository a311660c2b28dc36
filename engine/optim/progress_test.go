package optim

import (
	"math"
	"testing"
)

func TestProgress(t *testing.T) {
	const stepsPerEpoch, epochs = 10, 5
	cases := []struct {
		interval string
		step     int
		want     float64
	}{
		{IntervalStep, 0, 0},
		{IntervalStep, 9, 0.18},
		{IntervalStep, 25, 0.5},
		{IntervalStep, 49, 0.98},
		{"", 25, 0.5},
		// Per epoch, where holds the epoch's start for all its steps.
		{IntervalEpoch, 0, 0},
		{IntervalEpoch, 9, 0},
		{IntervalEpoch, 10, 0.2},
		{IntervalEpoch, 25, 0.4},
		{IntervalEpoch, 49, 0.8},
	}
	for _, c := range cases {
		if got := Progress(c.interval, c.step, stepsPerEpoch, epochs); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("Progress(%q, %d) = %v, want %v", c.interval, c.step, got, c.want)
		}
	}
}

func TestProgressPanics(t *testing.T) {
	cases := []struct {
		name                  string
		interval              string
		stepsPerEpoch, epochs int
	}{
		{"unknown interval", "batch", 10, 5},
		{"no steps per epoch", IntervalStep, 0, 5},
		{"no epochs", IntervalEpoch, 10, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Progress did not panic")
				}
			}()
			Progress(c.interval, 3, c.stepsPerEpoch, c.epochs)
		})
	}
}

// TestWarmupByStep drives the warmup+cosine composite the way the trainer
// does: per step, over 10 epochs of 10 steps.
func TestWarmupByStep(t *testing.T) {
	spec := warmupCosine()
	s, err := NewSchedule(spec)
	if err != nil {
		t.Fatal(err)
	}
	interval := IntervalOf(spec)
	want := map[int]float64{0: 0, 5: 0.05, 10: 0.1, 55: 0.05, 99: 0.05 * (1 + math.Cos(math.Pi*89/90))}
	for step, w := range want {
		if got := s.At(Progress(interval, step, 10, 10)); math.Abs(got-w) > 1e-12 {
			t.Errorf("step %d: lr %.15g, want %.15g", step, got, w)
		}
	}
}
