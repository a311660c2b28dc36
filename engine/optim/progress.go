package optim

import "fmt"

// Progress returns the schedule position `where` for the update about to be
// applied at 0-based global step, as ClassyVision computes it: with the
// "step" interval it moves every step (step / total steps); with "epoch" it
// holds the value of the epoch's start (epoch / numEpochs). An empty
// interval means "step"; pass IntervalOf(spec) for ClassyVision's defaults.
// It panics on an unknown interval or non-positive sizes, which
// NewSchedule's validation and the trainer's setup rule out.
func Progress(interval string, step, stepsPerEpoch, numEpochs int) float64 {
	if stepsPerEpoch <= 0 || numEpochs <= 0 {
		panic(fmt.Sprintf("optim: Progress needs positive sizes, got %d steps per epoch, %d epochs", stepsPerEpoch, numEpochs))
	}
	switch interval {
	case "", IntervalStep:
		return float64(step) / float64(stepsPerEpoch*numEpochs)
	case IntervalEpoch:
		return float64(step/stepsPerEpoch) / float64(numEpochs)
	}
	panic(fmt.Sprintf("optim: Progress: unknown update interval %q", interval))
}
