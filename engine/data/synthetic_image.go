package data

import (
	"fmt"
	"math/rand/v2"
)

// SyntheticImage is ClassyVision's synthetic_image dataset: binary 3×S×S
// images where class c (0 or 1, class 1 with probability classRatio) puts
// uniform noise in channel c, channel 2 always holds noise and the other
// channel is black. Pixels are multiples of 1/255, as ToTensor gives for the
// uint8 images ClassyVision makes. Each sample is drawn from (seed, index)
// when gathered, so any num_samples costs no memory and every rank, world
// size and worker sees the same sample at an index.
type SyntheticImage struct {
	n, crop    int
	classRatio float64
	seed       uint64
}

// NewSyntheticImage returns n images of crop×crop pixels.
func NewSyntheticImage(n, crop int, classRatio float64, seed uint64) (*SyntheticImage, error) {
	if n <= 0 || crop <= 0 || classRatio < 0 || classRatio > 1 {
		return nil, fmt.Errorf("%w: synthetic_image needs num_samples ≥ 1, crop_size ≥ 1 and class_ratio in [0, 1] (got %d, %d, %g)", ErrDataset, n, crop, classRatio)
	}
	return &SyntheticImage{n: n, crop: crop, classRatio: classRatio, seed: seed}, nil
}

// Len is the number of images.
func (s *SyntheticImage) Len() int { return s.n }

// SampleShape is 3×crop×crop.
func (s *SyntheticImage) SampleShape() []int { return []int{3, s.crop, s.crop} }

// NumClasses is 2.
func (s *SyntheticImage) NumClasses() int { return 2 }

// Gather draws the images at idx.
func (s *SyntheticImage) Gather(idx []int, x []float32, y []int32) {
	plane := s.crop * s.crop
	for i, j := range idx {
		rng := rand.New(rand.NewPCG(s.seed, uint64(j)))
		class := 0
		if rng.Float64() < s.classRatio {
			class = 1
		}
		y[i] = int32(class)
		img := x[i*3*plane : (i+1)*3*plane]
		clear(img[(1-class)*plane : (2-class)*plane])
		for _, ch := range []int{class, 2} {
			for k := range img[ch*plane : (ch+1)*plane] {
				img[ch*plane+k] = float32(rng.IntN(256)) / 255
			}
		}
	}
}
