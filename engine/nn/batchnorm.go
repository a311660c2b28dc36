package nn

import (
	"fmt"
	"math"

	"cohort/engine/tensor"
)

// BatchNorm is PyTorch's BatchNorm1d and BatchNorm2d (affine, tracking
// running statistics): each channel c of an N×C, N×C×L or N×C×H×W input
// is normalised by its mean and variance over every other dimension, then
// scaled by Weight[c] and shifted by Bias[c].
//
// In training (Pass.Train) the statistics are the batch's (the biased
// variance), and the running ones move towards them by Momentum, the
// running variance using the unbiased estimate, as in PyTorch. In
// evaluation the running statistics are used and nothing is updated.
type BatchNorm struct {
	// Features is the channel count C.
	Features int
	// Momentum (PyTorch's default 0.1) and Eps (1e-5) are as in PyTorch;
	// set them before the first Forward.
	Momentum, Eps float32
	// Weight (γ, initially 1) and Bias (β, initially 0) are [C].
	Weight, Bias *Param
	// RunningMean ([C], initially 0), RunningVar ([C], initially 1) and
	// NumBatchesTracked (a 0-dimensional count of training batches,
	// stored as float32, exact up to 2²⁴) are the buffers.
	RunningMean, RunningVar, NumBatchesTracked *Param

	name            string
	params, buffers []*Param
	reduce          func(sum []float32) error
	err             error

	x      *tensor.Tensor
	train  bool      // whether the last Forward used batch statistics
	count  float64   // values per channel behind those statistics, all ranks
	mean   []float32 // per channel, as used by the last Forward
	invstd []float32 // 1/sqrt(var + Eps), likewise
	acc    []float64 // two per-channel sums being accumulated
	stats  []float32 // the reducer's vector: 2C+1 values
	y, dx  *tensor.Tensor
}

// NewBatchNorm returns a BatchNorm over c channels whose params are
// "<prefix>.weight" and "<prefix>.bias" and whose buffers are
// "<prefix>.running_mean", "<prefix>.running_var" and
// "<prefix>.num_batches_tracked", PyTorch's state_dict names.
func NewBatchNorm(prefix string, c int) *BatchNorm {
	if c <= 0 {
		panic(fmt.Sprintf("nn: batchnorm %s: %d channels", prefix, c))
	}
	b := &BatchNorm{
		Features:          c,
		Momentum:          0.1,
		Eps:               1e-5,
		Weight:            &Param{Name: prefix + ".weight", Value: tensor.New(c), Grad: tensor.New(c)},
		Bias:              &Param{Name: prefix + ".bias", Value: tensor.New(c), Grad: tensor.New(c)},
		RunningMean:       &Param{Name: prefix + ".running_mean", Value: tensor.New(c)},
		RunningVar:        &Param{Name: prefix + ".running_var", Value: tensor.New(c)},
		NumBatchesTracked: &Param{Name: prefix + ".num_batches_tracked", Value: &tensor.Tensor{Shape: []int{}, Data: make([]float32, 1)}},
		name:              "batchnorm " + prefix,
		mean:              make([]float32, c),
		invstd:            make([]float32, c),
		acc:               make([]float64, 2*c),
		stats:             make([]float32, 2*c+1),
	}
	for i := range c {
		b.Weight.Value.Data[i] = 1
		b.RunningVar.Value.Data[i] = 1
	}
	b.params = []*Param{b.Weight, b.Bias}
	b.buffers = []*Param{b.RunningMean, b.RunningVar, b.NumBatchesTracked}
	return b
}

// SetStatsReducer makes training passes combine their statistics across
// ranks, as PyTorch's SyncBatchNorm (ClassyVision's batch_norm_sync_mode)
// does; nil turns it off. reduce must sum its argument in place over all
// ranks (an all-reduce) and is called on the caller's goroutine, so every
// rank must call it in the same order as its other collectives.
//
// The vector has 2C+1 values. In a training Forward it is
//
//	[Σx for channel 0..C-1, Σx² for channel 0..C-1, n]
//
// and in the Backward of such a Forward it is
//
//	[Σdy for channel 0..C-1, Σdy·x̂ for channel 0..C-1, n]
//
// where the sums run over this rank's batch and spatial positions, x̂ is
// the normalised input and n is the number of values per channel on this
// rank. With the summed vectors the statistics and the input gradient are
// those of the whole global batch; the Weight and Bias gradients stay
// local, for the trainer's gradient all-reduce. If reduce fails, the layer
// uses its local sums for that call and reports the error from Err.
func (b *BatchNorm) SetStatsReducer(reduce func(sum []float32) error) { b.reduce = reduce }

// Err returns the first error of the stats reducer, or nil.
func (b *BatchNorm) Err() error { return b.err }

// dims checks x against the layer and returns N, C and the number of
// values per channel per sample.
func (b *BatchNorm) dims(x *tensor.Tensor) (n, c, s int) {
	if len(x.Shape) < 2 || x.Shape[1] != b.Features {
		panic(fmt.Sprintf("nn: %s: input %v, want N×%d×…", b.name, x.Shape, b.Features))
	}
	return x.Shape[0], b.Features, numel(x.Shape[2:])
}

// Forward normalises x with the batch statistics (training) or the
// running ones (evaluation).
func (b *BatchNorm) Forward(x *tensor.Tensor, p Pass) *tensor.Tensor {
	n, c, s := b.dims(x)
	b.x, b.train = x, p.Train
	if p.Train {
		b.batchStats(x, n, c, s)
	} else {
		for ch := range c {
			b.mean[ch] = b.RunningMean.Value.Data[ch]
			b.invstd[ch] = float32(1 / math.Sqrt(float64(b.RunningVar.Value.Data[ch])+float64(b.Eps)))
		}
	}
	y := tensor.Ensure(&b.y, x.Shape...)
	for ch := range c {
		scale := b.Weight.Value.Data[ch] * b.invstd[ch]
		shift := b.Bias.Value.Data[ch] - b.mean[ch]*scale
		for i := range n {
			off := (i*c + ch) * s
			dst := y.Data[off : off+s]
			for j, v := range x.Data[off : off+s] {
				dst[j] = v*scale + shift
			}
		}
	}
	return y
}

// batchStats sets mean and invstd from x (across ranks when a reducer is
// set) and updates the running statistics. Sums are kept in float64, so
// the one-pass variance loses nothing that matters at float32.
func (b *BatchNorm) batchStats(x *tensor.Tensor, n, c, s int) {
	sum, sumsq := b.acc[:c], b.acc[c:]
	clear(b.acc)
	for i := range n {
		for ch := range c {
			var s1, s2 float64
			for _, v := range x.Data[(i*c+ch)*s:][:s] {
				s1 += float64(v)
				s2 += float64(v) * float64(v)
			}
			sum[ch] += s1
			sumsq[ch] += s2
		}
	}
	m := b.allReduce(sum, sumsq, float64(n*s))
	if m <= 1 {
		panic(fmt.Sprintf("nn: %s: training needs more than 1 value per channel, got input %v", b.name, x.Shape))
	}
	mom := float64(b.Momentum)
	for ch := range c {
		mean := sum[ch] / m
		v := max(sumsq[ch]/m-mean*mean, 0)
		b.mean[ch] = float32(mean)
		b.invstd[ch] = float32(1 / math.Sqrt(v+float64(b.Eps)))
		rm, rv := &b.RunningMean.Value.Data[ch], &b.RunningVar.Value.Data[ch]
		*rm = float32((1-mom)*float64(*rm) + mom*mean)
		*rv = float32((1-mom)*float64(*rv) + mom*v*m/(m-1))
	}
	b.NumBatchesTracked.Value.Data[0]++
	b.count = m
}

// allReduce sums the per-channel sums p and q and the count n over ranks
// through the reducer, in place, and returns the total count. Without a
// reducer, or when it fails, the local values stand.
func (b *BatchNorm) allReduce(p, q []float64, n float64) float64 {
	if b.reduce == nil {
		return n
	}
	c := len(p)
	for i := range c {
		b.stats[i], b.stats[c+i] = float32(p[i]), float32(q[i])
	}
	b.stats[2*c] = float32(n)
	if err := b.reduce(b.stats); err != nil {
		if b.err == nil {
			b.err = fmt.Errorf("%s: stats reducer: %w", b.name, err)
		}
		return n
	}
	for i := range c {
		p[i], q[i] = float64(b.stats[i]), float64(b.stats[c+i])
	}
	return float64(b.stats[2*c])
}

// Backward accumulates dγ += Σdy·x̂ and dβ += Σdy and returns dx. After a
// training Forward dx includes the paths through the batch mean and
// variance: γ·invstd·(dy - mean(dy) - x̂·mean(dy·x̂)).
func (b *BatchNorm) Backward(dy *tensor.Tensor) *tensor.Tensor {
	n, c, s := b.dims(dy)
	x := b.x.Data
	g1, g2 := b.acc[:c], b.acc[c:]
	clear(b.acc)
	for i := range n {
		for ch := range c {
			off := (i*c + ch) * s
			mean, inv := b.mean[ch], b.invstd[ch]
			var s1, s2 float64
			for j, d := range dy.Data[off : off+s] {
				s1 += float64(d)
				s2 += float64(d) * float64((x[off+j]-mean)*inv)
			}
			g1[ch] += s1
			g2[ch] += s2
		}
	}
	for ch := range c {
		b.Bias.Grad.Data[ch] += float32(g1[ch])
		b.Weight.Grad.Data[ch] += float32(g2[ch])
	}
	dx := tensor.Ensure(&b.dx, dy.Shape...)
	if b.train {
		m := b.allReduce(g1, g2, float64(n*s))
		for ch := range c {
			g1[ch] /= m
			g2[ch] /= m
		}
	} else {
		clear(b.acc) // the statistics are constants: no correction terms
	}
	for ch := range c {
		mean, inv := b.mean[ch], b.invstd[ch]
		k := b.Weight.Value.Data[ch] * inv
		mdy, mdyx := float32(g1[ch]), float32(g2[ch])
		for i := range n {
			off := (i*c + ch) * s
			dst := dx.Data[off : off+s]
			for j, d := range dy.Data[off : off+s] {
				dst[j] = k * (d - mdy - (x[off+j]-mean)*inv*mdyx)
			}
		}
	}
	return dx
}

// Params returns the weight and the bias.
func (b *BatchNorm) Params() []*Param { return b.params }

// Buffers returns the running mean, the running variance and the batch
// count, in PyTorch's state_dict order.
func (b *BatchNorm) Buffers() []*Param { return b.buffers }

// Cost gives the input shape back and 2 FLOPs per value (one multiply-add
// once the statistics are folded into a scale and a shift), as
// ClassyVision's profiler counts batch norm.
func (b *BatchNorm) Cost(in []int) ([]int, int64) {
	if len(in) < 1 || in[0] != b.Features {
		panic(fmt.Sprintf("nn: %s: input shape %v, want %d×…", b.name, in, b.Features))
	}
	return append([]int(nil), in...), 2 * int64(numel(in))
}
