package data

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Loader makes one rank's batches: it gathers samples and runs the
// transforms on worker goroutines that stay ahead of the training step, as
// a PyTorch DataLoader's workers do. The random transforms of a sample draw
// from a generator seeded by (seed, epoch, sample index) alone, so batches
// are the same whatever the worker count, the rank or the world size.
type Loader struct {
	ds       Dataset
	pipe     *Pipeline
	seed     uint64
	batch    int
	inShape  []int
	outShape []int
	workers  []*worker
	sync     *worker // the caller's own, when there are no workers
}

// worker owns the buffers one goroutine fills: two batches (one being
// trained on, one being filled) and the transform scratch.
type worker struct {
	bufs       [2]*Batch
	raw        []float32
	ping, pong []float32
	pcg        *rand.PCG
	rng        *rand.Rand
}

// Batch is one batch: X holds len(Y) samples of the loader's SampleShape.
type Batch struct {
	X []float32
	Y []int32
}

// NewLoader prepares batches of at most batch samples of ds through pipe
// (nil: none) on workers goroutines (0: on the caller's goroutine).
func NewLoader(ds Dataset, pipe *Pipeline, seed uint64, batch, workers int) (*Loader, error) {
	if batch < 1 || workers < 0 {
		return nil, fmt.Errorf("%w: loader needs batch ≥ 1 and workers ≥ 0 (got %d, %d)", ErrDataset, batch, workers)
	}
	l := &Loader{ds: ds, pipe: pipe, seed: seed, batch: batch, inShape: ds.SampleShape(), outShape: ds.SampleShape()}
	scratch := 0
	if pipe != nil {
		var err error
		if l.outShape, err = pipe.OutShape(l.inShape); err != nil {
			return nil, err
		}
		shape := l.inShape
		for _, t := range pipe.steps {
			shape, _ = t.OutShape(shape)
			scratch = max(scratch, numel(shape))
		}
	}
	in, out := numel(l.inShape), numel(l.outShape)
	newWorker := func() *worker {
		w := &worker{pcg: rand.NewPCG(0, 0)}
		w.rng = rand.New(w.pcg)
		for i := range w.bufs {
			w.bufs[i] = &Batch{X: make([]float32, batch*out), Y: make([]int32, batch)}
		}
		if pipe != nil && len(pipe.steps) > 0 {
			w.raw = make([]float32, batch*in)
			w.ping, w.pong = make([]float32, scratch), make([]float32, scratch)
		}
		return w
	}
	for range workers {
		l.workers = append(l.workers, newWorker())
	}
	if workers == 0 {
		l.sync = newWorker()
	}
	return l, nil
}

// SampleShape is a sample's shape after the transforms.
func (l *Loader) SampleShape() []int { return l.outShape }

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// fill loads the samples idx of epoch into b.
func (l *Loader) fill(w *worker, b *Batch, epoch int, idx []int) {
	b.Y = b.Y[:len(idx)]
	out := numel(l.outShape)
	b.X = b.X[:len(idx)*out]
	if w.raw == nil {
		l.ds.Gather(idx, b.X, b.Y)
		return
	}
	in := numel(l.inShape)
	l.ds.Gather(idx, w.raw[:len(idx)*in], b.Y)
	steps := l.pipe.steps
	for i, j := range idx {
		w.pcg.Seed(l.seed, uint64(epoch)<<32|uint64(uint32(j)))
		src, shape := w.raw[i*in:(i+1)*in], l.inShape
		for k, t := range steps {
			next, _ := t.OutShape(shape)
			dst := w.ping[:numel(next)]
			if k == len(steps)-1 {
				dst = b.X[i*out : (i+1)*out]
			}
			t.Apply(dst, src, shape, w.rng)
			src, shape = dst, next
			w.ping, w.pong = w.pong, w.ping
		}
	}
}

// Start begins loading this rank's epoch order idx from batch number from.
// Close the result before the next Start.
func (l *Loader) Start(epoch int, idx []int, from int) *Batches {
	steps := (len(idx) + l.batch - 1) / l.batch
	b := &Batches{l: l, epoch: epoch, idx: idx, from: from, next: from, steps: steps, done: make(chan struct{})}
	for n, w := range l.workers {
		ch := make(chan *Batch, 1)
		b.outs = append(b.outs, ch)
		free := make(chan *Batch, len(w.bufs))
		for _, buf := range w.bufs {
			free <- buf
		}
		b.free = append(b.free, free)
		b.wg.Go(func() {
			defer close(ch)
			for s := from + n; s < steps; s += len(l.workers) {
				var buf *Batch
				select {
				case buf = <-free:
				case <-b.done:
					return
				}
				l.fill(w, buf, epoch, b.batchIdx(s))
				select {
				case ch <- buf:
				case <-b.done:
					return
				}
			}
		})
	}
	return b
}

// Batches is one epoch's stream of batches from a Loader.
type Batches struct {
	l           *Loader
	epoch       int
	idx         []int
	from        int // the first batch loaded
	next, steps int
	outs, free  []chan *Batch
	held        *Batch // the batch last returned, owned by the caller
	heldFrom    int    // its worker
	done        chan struct{}
	wg          sync.WaitGroup
	closed      bool
}

func (b *Batches) batchIdx(step int) []int {
	return b.idx[step*b.l.batch : min((step+1)*b.l.batch, len(b.idx))]
}

// Next returns the next batch, or nil after the last one. The batch is
// valid until the following Next or Close.
func (b *Batches) Next() *Batch {
	if b.held != nil {
		b.free[b.heldFrom] <- b.held
		b.held = nil
	}
	if b.next >= b.steps {
		return nil
	}
	s := b.next
	b.next++
	if b.l.sync != nil {
		buf := b.l.sync.bufs[0]
		b.l.fill(b.l.sync, buf, b.epoch, b.batchIdx(s))
		return buf
	}
	w := (s - b.from) % len(b.outs)
	b.held, b.heldFrom = <-b.outs[w], w
	return b.held
}

// Close stops the workers and waits for them, so the loader's buffers are
// free for the next Start.
func (b *Batches) Close() {
	if b.closed {
		return
	}
	b.closed = true
	close(b.done)
	b.wg.Wait()
}
