package data

import (
	"fmt"
	"math/rand/v2"
)

// Synthetic is a seeded, learnable dataset: each class has a fixed random
// prototype image and each sample is its class prototype plus Gaussian
// noise. Everything derives from the seed, so every rank sees the same data.
type Synthetic struct {
	shape   []int
	classes int
	x       []float32
	y       []int32
}

// NewSynthetic makes n samples of the given shape over classes classes.
// The prototypes come from seed alone; the samples from (seed, split), so a
// train split and a test split of one seed share classes but not samples.
// classRatio > 0 makes a binary dataset (ClassyVision's synthetic_image):
// a sample is class 1 with that probability.
func NewSynthetic(n, classes int, shape []int, classRatio float64, seed, split uint64) (*Synthetic, error) {
	if n <= 0 || classes < 2 {
		return nil, fmt.Errorf("%w: synthetic dataset needs num_samples ≥ 1 and num_classes ≥ 2 (got %d, %d)", ErrDataset, n, classes)
	}
	if classRatio > 0 {
		classes = 2
	}
	size := 1
	for _, s := range shape {
		size *= s
	}
	protoRNG := rand.New(rand.NewPCG(seed, 0x5eed))
	protos := make([]float32, classes*size)
	for i := range protos {
		protos[i] = float32(protoRNG.NormFloat64())
	}
	rng := rand.New(rand.NewPCG(seed, split))
	s := &Synthetic{shape: shape, classes: classes, x: make([]float32, n*size), y: make([]int32, n)}
	for i := range n {
		c := rng.IntN(classes)
		if classRatio > 0 {
			c = 0
			if rng.Float64() < classRatio {
				c = 1
			}
		}
		s.y[i] = int32(c)
		for k := range size {
			s.x[i*size+k] = protos[c*size+k] + float32(rng.NormFloat64())
		}
	}
	return s, nil
}

// Len is the number of samples.
func (s *Synthetic) Len() int { return len(s.y) }

// SampleShape is the shape given at construction.
func (s *Synthetic) SampleShape() []int { return s.shape }

// NumClasses is the number of classes.
func (s *Synthetic) NumClasses() int { return s.classes }

// Gather copies samples and labels.
func (s *Synthetic) Gather(idx []int, x []float32, y []int32) {
	size := len(s.x) / len(s.y)
	for i, j := range idx {
		copy(x[i*size:(i+1)*size], s.x[j*size:(j+1)*size])
		y[i] = s.y[j]
	}
}
