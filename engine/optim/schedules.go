package optim

import (
	"math"
	"sort"
)

// constant is ClassyVision's "constant".
type constant float64

func (c constant) At(float64) float64 { return float64(c) }

// cosine is ClassyVision's "cosine": half a cosine from start to end.
type cosine struct{ start, end float64 }

func (c cosine) At(where float64) float64 {
	return c.end + 0.5*(c.start-c.end)*(1+math.Cos(math.Pi*where))
}

// linear is ClassyVision's "linear", written in fvcore's operation order.
type linear struct{ start, end float64 }

func (l linear) At(where float64) float64 {
	return l.end*where + l.start*(1-where)
}

// steps is ClassyVision's "step": the values split training evenly.
type steps []float64

func (s steps) At(where float64) float64 {
	return s[clampIndex(int((where+whereEpsilon)*float64(len(s))), len(s))]
}

// multiStep is ClassyVision's "multistep": values[i] where i counts the
// milestones at or before the current epoch.
type multiStep struct {
	values     []float64
	milestones []int
	numEpochs  int
}

func (m multiStep) At(where float64) float64 {
	epoch := int((where + whereEpsilon) * float64(m.numEpochs))
	return m.values[sort.SearchInts(m.milestones, epoch+1)]
}

// composite is ClassyVision's "composite": parts run one after another,
// each for its length of training.
type composite struct {
	parts    []Schedule
	lengths  []float64
	rescaled []bool
}

func (c composite) At(where float64) float64 {
	i, end := 0, c.lengths[0]
	for where+whereEpsilon > end && i < len(c.parts)-1 {
		i++
		end += c.lengths[i]
	}
	if c.rescaled[i] {
		start := end - c.lengths[i]
		where = (where - start) / c.lengths[i]
	}
	return c.parts[i].At(where)
}

// clampIndex keeps an index computed from where inside [0, n) when where
// strays outside [0, 1).
func clampIndex(i, n int) int {
	return max(0, min(i, n-1))
}
