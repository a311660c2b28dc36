// Package data holds the datasets and the sampler that splits them across
// ranks. Datasets keep their samples in memory and copy a batch into
// caller-owned buffers, so a step allocates nothing.
package data

import "errors"

// ErrDataset marks a dataset that cannot be loaded (missing or malformed
// files); the message names the file and the fix.
var ErrDataset = errors.New("data: dataset unavailable")

// Dataset is an in-memory labelled dataset.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// SampleShape is one sample's shape, channels first (e.g. [1 28 28]).
	SampleShape() []int
	// NumClasses is the number of distinct labels.
	NumClasses() int
	// Gather copies the samples at idx into x (len(idx)×sample values)
	// and their labels into y.
	Gather(idx []int, x []float32, y []int32)
}

// SampleSize is the number of values in one sample.
func SampleSize(d Dataset) int { return numel(d.SampleShape()) }

// Subset is the first n samples of a dataset (ClassyVision's num_samples).
type Subset struct {
	Dataset
	N int
}

// Len is the subset's size.
func (s Subset) Len() int { return s.N }

// Limit returns d cut to its first n samples; n ≤ 0 or n ≥ d.Len() returns d.
func Limit(d Dataset, n int) Dataset {
	if n <= 0 || n >= d.Len() {
		return d
	}
	return Subset{Dataset: d, N: n}
}
