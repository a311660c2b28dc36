package optim

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// warmupCosine is the warmup-by-step case: linear 0 → 0.1 for the first
// tenth of training, then cosine 0.1 → 0.
func warmupCosine(scaling ...string) ScheduleSpec {
	return ScheduleSpec{
		Name: "composite",
		Schedulers: []ScheduleSpec{
			{Name: "linear", StartValue: 0, EndValue: 0.1},
			{Name: "cosine", StartValue: 0.1, EndValue: 0},
		},
		Lengths:         []float64{0.1, 0.9},
		IntervalScaling: scaling,
	}
}

func TestScheduleValues(t *testing.T) {
	multistep := ScheduleSpec{Name: "multistep", Values: []float64{1, 0.1, 0.01}, Milestones: []int{30, 60}, NumEpochs: 90}
	cases := []struct {
		name  string
		spec  ScheduleSpec
		where []float64
		want  []float64
	}{
		{"constant", ScheduleSpec{Name: "constant", Value: 0.1},
			[]float64{0, 0.5, 0.999}, []float64{0.1, 0.1, 0.1}},
		// Three equal thirds; 1/3 reaches the second value despite rounding.
		{"step", ScheduleSpec{Name: "step", Values: []float64{1, 0.1, 0.01}, NumEpochs: 90},
			[]float64{0, 0.3333, 1.0 / 3, 0.5, 2.0 / 3, 0.999}, []float64{1, 1, 0.1, 0.1, 0.01, 0.01}},
		// Epochs 0-29 → 1, 30-59 → 0.1, 60-89 → 0.01.
		{"multistep", multistep,
			[]float64{0, 29.0 / 90, 30.0 / 90, 59.0 / 90, 60.0 / 90, 89.0 / 90}, []float64{1, 1, 0.1, 0.1, 0.01, 0.01}},
		// 29/100·100 rounds to 28.999…; fvcore's epsilon still reaches 29.
		{"multistep at a rounding edge", ScheduleSpec{Name: "multistep", Values: []float64{1, 0.1}, Milestones: []int{29}, NumEpochs: 100},
			[]float64{28.0 / 100, 29.0 / 100}, []float64{1, 0.1}},
		// No milestones: ceil(10/3) = 4 epochs per value, milestones 4, 8.
		{"multistep equispaced", ScheduleSpec{Name: "multistep", Values: []float64{1, 0.1, 0.01}, NumEpochs: 10},
			[]float64{0.35, 0.4, 0.75, 0.8}, []float64{1, 0.1, 0.1, 0.01}},
		// 0.05·(1 + cos(π/4)), 0.05·(1 + cos(3π/4))
		{"cosine", ScheduleSpec{Name: "cosine", StartValue: 0.1, EndValue: 0},
			[]float64{0, 0.25, 0.5, 0.75}, []float64{0.1, 0.0853553390593274, 0.05, 0.0146446609406726}},
		{"linear", ScheduleSpec{Name: "linear", StartValue: 0.02, EndValue: 0.1},
			[]float64{0, 0.25, 0.5}, []float64{0.02, 0.04, 0.06}},
		// Warmup reaches 0.05 half way through it; the cosine starts at the
		// boundary, is half way (0.05) at 0.55 and 3/4 of the way at 0.775.
		{"composite rescaled", warmupCosine(),
			[]float64{0, 0.05, 0.1, 0.55, 0.775}, []float64{0, 0.05, 0.1, 0.05, 0.0146446609406726}},
		// A fixed cosine sees the global where: 0.05·(1 + cos(0.1π)) at the
		// boundary, 0.05·(1 + cos(0.55π)) at 0.55.
		{"composite fixed", warmupCosine("rescaled", "fixed"),
			[]float64{0.05, 0.1, 0.55}, []float64{0.05, 0.0975528258147577, 0.0421782767479885}},
		// Lengths summing to 0.9999 are accepted; the last one covers the rest.
		{"composite inexact lengths", ScheduleSpec{Name: "composite",
			Schedulers: []ScheduleSpec{{Name: "constant", Value: 1}, {Name: "constant", Value: 2}},
			Lengths:    []float64{0.5, 0.4999}},
			[]float64{0.49, 0.5, 0.9999}, []float64{1, 2, 2}},
		// The composite's num_epochs reaches a step schedule that has none;
		// rescaled, the step's halves are [0.5, 0.75) and [0.75, 1).
		{"composite passes num_epochs", ScheduleSpec{Name: "composite", NumEpochs: 8,
			Schedulers: []ScheduleSpec{{Name: "constant", Value: 1}, {Name: "step", Values: []float64{0.5, 0.25}}},
			Lengths:    []float64{0.5, 0.5}},
			[]float64{0.25, 0.5, 0.7, 0.75}, []float64{1, 0.5, 0.5, 0.25}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSchedule(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.where {
				if got := s.At(w); math.Abs(got-c.want[i]) > 1e-12 {
					t.Errorf("At(%v) = %.15g, want %.15g", w, got, c.want[i])
				}
			}
		})
	}
}

func TestNewScheduleRejects(t *testing.T) {
	withChild := func(child ScheduleSpec) ScheduleSpec {
		return ScheduleSpec{Name: "composite", Lengths: []float64{0.5, 0.5},
			Schedulers: []ScheduleSpec{{Name: "constant", Value: 1}, child}}
	}
	cases := []struct {
		name, mention string
		spec          ScheduleSpec
	}{
		{"unknown name", `unknown name "exp"`, ScheduleSpec{Name: "exp"}},
		{"empty name", `unknown name ""`, ScheduleSpec{}},
		{"step without values", "values is empty", ScheduleSpec{Name: "step", NumEpochs: 10}},
		{"step without epochs", "num_epochs 0", ScheduleSpec{Name: "step", Values: []float64{1}}},
		{"multistep milestone count", "need 2 milestones, got 1",
			ScheduleSpec{Name: "multistep", Values: []float64{1, 2, 3}, Milestones: []int{5}, NumEpochs: 10}},
		{"multistep not increasing", "must increase",
			ScheduleSpec{Name: "multistep", Values: []float64{1, 2, 3}, Milestones: []int{5, 5}, NumEpochs: 10}},
		{"multistep milestone past end", "must increase",
			ScheduleSpec{Name: "multistep", Values: []float64{1, 2}, Milestones: []int{10}, NumEpochs: 10}},
		{"multistep too few epochs", "fewer than the 3 values",
			ScheduleSpec{Name: "multistep", Values: []float64{1, 2, 3}, NumEpochs: 2}},
		{"nan value", "not finite", ScheduleSpec{Name: "constant", Value: math.NaN()}},
		{"inf cosine", "not finite", ScheduleSpec{Name: "cosine", StartValue: math.Inf(1)}},
		{"bad update interval", `update_interval "batch"`, ScheduleSpec{Name: "constant", UpdateInterval: "batch"}},
		{"composite empty", "no schedulers", ScheduleSpec{Name: "composite"}},
		{"composite length count", "2 schedulers but 1 lengths",
			ScheduleSpec{Name: "composite", Lengths: []float64{1}, Schedulers: make([]ScheduleSpec, 2)}},
		{"composite lengths sum", "sum to 0.9",
			ScheduleSpec{Name: "composite", Lengths: []float64{0.5, 0.4},
				Schedulers: []ScheduleSpec{{Name: "constant"}, {Name: "constant"}}}},
		{"composite zero length", "length 1 is 0",
			ScheduleSpec{Name: "composite", Lengths: []float64{1, 0},
				Schedulers: []ScheduleSpec{{Name: "constant"}, {Name: "constant"}}}},
		{"composite scaling count", "1 interval_scaling entries",
			ScheduleSpec{Name: "composite", Lengths: []float64{0.5, 0.5}, IntervalScaling: []string{"fixed"},
				Schedulers: []ScheduleSpec{{Name: "constant"}, {Name: "constant"}}}},
		{"composite bad scaling", `interval_scaling "stretched"`,
			ScheduleSpec{Name: "composite", Lengths: []float64{1}, IntervalScaling: []string{"stretched"},
				Schedulers: []ScheduleSpec{{Name: "constant"}}}},
		{"composite bad child", `schedulers[1] "step"`, withChild(ScheduleSpec{Name: "step", NumEpochs: 5})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSchedule(c.spec)
			if !errors.Is(err, ErrInvalidSchedule) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("err = %v, want ErrInvalidSchedule mentioning %s", err, c.mention)
			}
			if s != nil {
				t.Errorf("got a schedule along with the error")
			}
		})
	}
}

func TestIntervalOf(t *testing.T) {
	cases := []struct {
		spec ScheduleSpec
		want string
	}{
		{ScheduleSpec{Name: "constant"}, IntervalEpoch},
		{ScheduleSpec{Name: "step"}, IntervalEpoch},
		{ScheduleSpec{Name: "multistep"}, IntervalEpoch},
		{ScheduleSpec{Name: "cosine"}, IntervalStep},
		{ScheduleSpec{Name: "linear"}, IntervalStep},
		{ScheduleSpec{Name: "composite"}, IntervalStep},
		{ScheduleSpec{Name: "cosine", UpdateInterval: IntervalEpoch}, IntervalEpoch},
		{ScheduleSpec{Name: "multistep", UpdateInterval: IntervalStep}, IntervalStep},
	}
	for _, c := range cases {
		if got := IntervalOf(c.spec); got != c.want {
			t.Errorf("IntervalOf(%s, %q) = %q, want %q", c.spec.Name, c.spec.UpdateInterval, got, c.want)
		}
	}
}
