package optim

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidSchedule reports a schedule configuration NewSchedule rejects.
var ErrInvalidSchedule = errors.New("optim: invalid schedule")

// Schedule maps training progress where ∈ [0,1) to a value (a learning
// rate), as ClassyVision's param schedulers do.
type Schedule interface{ At(where float64) float64 }

// ScheduleSpec configures a Schedule. It mirrors config.Schedule field for
// field (ClassyVision's param_schedulers entry); only the fields of the
// chosen Name are read.
type ScheduleSpec struct {
	// Name is constant | step | multistep | cosine | linear | composite.
	Name string
	// Value is the constant schedule's value.
	Value float64
	// StartValue and EndValue bound cosine and linear.
	StartValue, EndValue float64
	// Values are the step and multistep values, in order.
	Values []float64
	// Milestones are the epochs where multistep moves to its next value;
	// empty means equally spaced.
	Milestones []int
	// NumEpochs is the training length; step and multistep need it
	// (ClassyVision copies the task's num_epochs here). A composite passes
	// its own on to its schedulers.
	NumEpochs int
	// Schedulers are a composite's parts, run in order.
	Schedulers []ScheduleSpec
	// Lengths are the fractions of training each composite part covers;
	// they must sum to 1 (within 1e-3, the last absorbs the rest).
	Lengths []float64
	// IntervalScaling says per composite part whether it sees where
	// "rescaled" to its own interval (default) or "fixed" (the global one).
	IntervalScaling []string
	// UpdateInterval is "step" or "epoch"; empty means the schedule's
	// ClassyVision default (see IntervalOf).
	UpdateInterval string
}

// Update intervals: how often the trainer evaluates a schedule.
const (
	IntervalStep  = "step"
	IntervalEpoch = "epoch"
)

const (
	scaleRescaled = "rescaled"
	scaleFixed    = "fixed"
	// whereEpsilon is fvcore's WHERE_EPSILON: where is nudged up by it
	// before it is compared or floored, so that e.g. epoch 29 of 100 is
	// reached although 29/100·100 rounds to 28.999….
	whereEpsilon = 1e-6
)

// NewSchedule validates c and builds its Schedule.
func NewSchedule(c ScheduleSpec) (Schedule, error) {
	s, err := build(c)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", c.Name, err)
	}
	return s, nil
}

// IntervalOf returns how often c's schedule is evaluated: c.UpdateInterval
// if set, else ClassyVision's default for the kind (per epoch for constant,
// step and multistep; per step for cosine, linear and composite).
func IntervalOf(c ScheduleSpec) string {
	if c.UpdateInterval != "" {
		return c.UpdateInterval
	}
	switch c.Name {
	case "cosine", "linear", "composite":
		return IntervalStep
	}
	return IntervalEpoch
}

func build(c ScheduleSpec) (Schedule, error) {
	switch c.UpdateInterval {
	case "", IntervalStep, IntervalEpoch:
	default:
		return nil, fmt.Errorf("%w: update_interval %q is not step or epoch", ErrInvalidSchedule, c.UpdateInterval)
	}
	switch c.Name {
	case "constant":
		return constant(c.Value), finite("value", c.Value)
	case "cosine":
		return cosine{c.StartValue, c.EndValue}, finite("start/end value", c.StartValue, c.EndValue)
	case "linear":
		return linear{c.StartValue, c.EndValue}, finite("start/end value", c.StartValue, c.EndValue)
	case "step":
		return buildStep(c)
	case "multistep":
		return buildMultiStep(c)
	case "composite":
		return buildComposite(c)
	}
	return nil, fmt.Errorf("%w: unknown name %q", ErrInvalidSchedule, c.Name)
}

func finite(what string, vs ...float64) error {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s %v is not finite", ErrInvalidSchedule, what, v)
		}
	}
	return nil
}

// checkValues validates the value list and training length that step and
// multistep share.
func checkValues(c ScheduleSpec) error {
	if len(c.Values) == 0 {
		return fmt.Errorf("%w: values is empty", ErrInvalidSchedule)
	}
	if c.NumEpochs <= 0 {
		return fmt.Errorf("%w: num_epochs %d must be > 0", ErrInvalidSchedule, c.NumEpochs)
	}
	return finite("values", c.Values...)
}

func buildStep(c ScheduleSpec) (Schedule, error) {
	if err := checkValues(c); err != nil {
		return nil, err
	}
	return steps(c.Values), nil
}

func buildMultiStep(c ScheduleSpec) (Schedule, error) {
	if err := checkValues(c); err != nil {
		return nil, err
	}
	n := len(c.Values)
	if c.NumEpochs < n {
		return nil, fmt.Errorf("%w: num_epochs %d is fewer than the %d values", ErrInvalidSchedule, c.NumEpochs, n)
	}
	ms := c.Milestones
	if len(ms) == 0 {
		width := (c.NumEpochs + n - 1) / n
		ms = make([]int, n-1)
		for i := range ms {
			ms[i] = width * (i + 1)
		}
	}
	if len(ms) != n-1 {
		return nil, fmt.Errorf("%w: %d values need %d milestones, got %d", ErrInvalidSchedule, n, n-1, len(ms))
	}
	prev := 0
	for _, m := range ms {
		if m <= prev || m >= c.NumEpochs {
			return nil, fmt.Errorf("%w: milestones %v must increase within (0, num_epochs=%d)", ErrInvalidSchedule, ms, c.NumEpochs)
		}
		prev = m
	}
	return multiStep{values: c.Values, milestones: ms, numEpochs: c.NumEpochs}, nil
}

func buildComposite(c ScheduleSpec) (Schedule, error) {
	n := len(c.Schedulers)
	if n == 0 {
		return nil, fmt.Errorf("%w: composite has no schedulers", ErrInvalidSchedule)
	}
	if len(c.Lengths) != n {
		return nil, fmt.Errorf("%w: %d schedulers but %d lengths", ErrInvalidSchedule, n, len(c.Lengths))
	}
	if len(c.IntervalScaling) != 0 && len(c.IntervalScaling) != n {
		return nil, fmt.Errorf("%w: %d schedulers but %d interval_scaling entries", ErrInvalidSchedule, n, len(c.IntervalScaling))
	}
	if err := finite("lengths", c.Lengths...); err != nil {
		return nil, err
	}
	lengths := append([]float64(nil), c.Lengths...)
	head := 0.0
	for _, l := range lengths[:n-1] {
		head += l
	}
	if sum := head + lengths[n-1]; math.Abs(sum-1) >= 1e-3 {
		return nil, fmt.Errorf("%w: lengths %v sum to %v, not 1", ErrInvalidSchedule, c.Lengths, sum)
	} else if sum != 1 {
		// Like fvcore, the last part absorbs the rounding so the parts end at 1.
		lengths[n-1] = 1 - head
	}
	comp := composite{parts: make([]Schedule, n), lengths: lengths, rescaled: make([]bool, n)}
	for i, sub := range c.Schedulers {
		if lengths[i] <= 0 {
			return nil, fmt.Errorf("%w: length %d is %v, must be > 0", ErrInvalidSchedule, i, lengths[i])
		}
		comp.rescaled[i] = true
		if len(c.IntervalScaling) != 0 {
			switch c.IntervalScaling[i] {
			case scaleRescaled:
			case scaleFixed:
				comp.rescaled[i] = false
			default:
				return nil, fmt.Errorf("%w: interval_scaling %q is not rescaled or fixed", ErrInvalidSchedule, c.IntervalScaling[i])
			}
		}
		if c.NumEpochs > 0 {
			sub.NumEpochs = c.NumEpochs
		}
		s, err := build(sub)
		if err != nil {
			return nil, fmt.Errorf("schedulers[%d] %q: %w", i, sub.Name, err)
		}
		comp.parts[i] = s
	}
	return comp, nil
}
