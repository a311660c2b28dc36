package train

import (
	"fmt"

	"cohort/engine/nn"
	"cohort/engine/profile"
)

// DefaultBucketBytes is the gradient bucket size, as PyTorch DDP's default.
const DefaultBucketBytes = 25 << 20

// gradBuckets lays every gradient into one flat buffer, last layer first, so
// that the gradients backward finishes first form contiguous buckets. A
// bucket is all-reduced (mean) on its own goroutine as soon as its last
// gradient is final, overlapping communication with the rest of backward.
type gradBuckets struct {
	comm    Comm
	flat    []float32
	buckets []bucket
	// shares maps a layer index to how many of its params each bucket holds.
	shares map[int][]share
	queue  chan int
	done   chan error
	// waiting counts, per bucket, params whose gradient is not final yet.
	waiting []int
	prof    *profile.Recorder
	names   []string // span name per bucket, built once
}

type bucket struct {
	lo, hi int // range in flat
	params int
}

type share struct{ bucket, params int }

// newGradBuckets re-points each param's Grad into the flat buffer. layers
// are the model's layers; maxBytes bounds a bucket (one param larger than
// that gets a bucket of its own).
func newGradBuckets(comm Comm, layers []nn.Layer, maxBytes int, prof *profile.Recorder) *gradBuckets {
	g := &gradBuckets{comm: comm, shares: map[int][]share{}, prof: prof}
	total := 0
	for _, l := range layers {
		for _, p := range l.Params() {
			total += p.Grad.Len()
		}
	}
	// One float past the gradients carries a rank's stop request in the
	// last bucket's all-reduce, so agreeing on preemption costs nothing.
	g.flat = make([]float32, total+1)
	off := 0
	maxFloats := max(maxBytes/4, 1)
	for i := len(layers) - 1; i >= 0; i-- {
		ps := layers[i].Params()
		for j := len(ps) - 1; j >= 0; j-- {
			p := ps[j]
			n := p.Grad.Len()
			last := len(g.buckets) - 1
			if last < 0 || g.buckets[last].hi-g.buckets[last].lo+n > maxFloats {
				g.buckets = append(g.buckets, bucket{lo: off, hi: off})
				last++
			}
			g.buckets[last].hi += n
			g.buckets[last].params++
			sh := g.shares[i]
			if len(sh) == 0 || sh[len(sh)-1].bucket != last {
				sh = append(sh, share{bucket: last})
			}
			sh[len(sh)-1].params++
			g.shares[i] = sh
			copy(g.flat[off:off+n], p.Grad.Data)
			p.Grad.Data = g.flat[off : off+n]
			off += n
		}
	}
	if len(g.buckets) == 0 {
		g.buckets = append(g.buckets, bucket{})
	}
	g.buckets[len(g.buckets)-1].hi++
	g.waiting = make([]int, len(g.buckets))
	for b := range g.buckets {
		g.names = append(g.names, fmt.Sprintf("allreduce bucket %d", b))
	}
	g.queue = make(chan int, len(g.buckets))
	g.done = make(chan error, 1)
	return g
}

// setStop puts this rank's stop request in the flag slot.
func (g *gradBuckets) setStop(stop bool) {
	g.flat[len(g.flat)-1] = 0
	if stop {
		g.flat[len(g.flat)-1] = 1
	}
}

// stopRequested reads the reduced flag: the mean of the ranks' requests.
func (g *gradBuckets) stopRequested() bool { return g.flat[len(g.flat)-1] > 0 }

// zero clears every gradient.
func (g *gradBuckets) zero() { clear(g.flat) }

// scale multiplies every gradient by s.
func (g *gradBuckets) scale(s float32) {
	for i := range g.flat {
		g.flat[i] *= s
	}
}

// start arms the buckets for one backward pass and starts the goroutine
// that reduces them in the order they become ready.
func (g *gradBuckets) start() {
	for b := range g.buckets {
		g.waiting[b] = g.buckets[b].params
	}
	if last := len(g.waiting) - 1; g.waiting[last] == 0 { // only the stop flag: a model without params
		g.queue <- last
	}
	go func() {
		var first error
		for range g.buckets {
			b := <-g.queue
			if first != nil {
				continue
			}
			span := g.prof.Begin(g.names[b], profile.CatAllReduce)
			err := g.comm.AllReduceMean(g.flat[g.buckets[b].lo:g.buckets[b].hi])
			span.End()
			if err != nil {
				first = fmt.Errorf("all-reduce of gradient bucket %d (%d floats): %w", b, g.buckets[b].hi-g.buckets[b].lo, err)
			}
		}
		g.done <- first
	}()
}

// ready is BackwardNotify's callback: the params of layer i are final.
func (g *gradBuckets) ready(i int) {
	for _, s := range g.shares[i] {
		g.waiting[s.bucket] -= s.params
		if g.waiting[s.bucket] == 0 {
			g.queue <- s.bucket
		}
	}
}

// wait blocks until every bucket is reduced and returns the first error.
func (g *gradBuckets) wait() error { return <-g.done }
