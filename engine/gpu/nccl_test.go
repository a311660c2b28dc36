//go:build cuda

package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"cohort/cuda"
	"cohort/engine/nn"
)

// reduceCase is a model TrainReduce is tested on: a CPU model for samples
// of shape in, and a bucket size that cuts its gradient into several.
type reduceCase struct {
	name    string
	cpu     *nn.Sequential
	in      []int
	classes int
	bucket  int
}

// reduceCases are an MLP and a small ResNet (basic or bottleneck blocks).
func reduceCases(t *testing.T, seed uint64, basic bool) []reduceCase {
	tk := resnetTask(t, seed, basic, true, 8)
	return []reduceCase{
		{"mlp", mlp(seed, 100, 64, 48, 10), []int{100}, 10, 4 << 10},
		{"resnet", tk.Model, tk.InputShape(), 2, 1 << 10},
	}
}

// TrainReduce on a one-rank communicator (the GPU machine has one GPU, and
// NCCL allows one rank per GPU) must leave exactly the gradient and
// momentum Train leaves, with the gradient cut into several buckets handed
// to NCCL during the backward pass. Averaging over one rank is the
// identity, so this checks the plumbing (bucket views, events, stream
// order as far as one rank shows it), not the arithmetic across ranks.
func TestTrainReduceSolo(t *testing.T) {
	id, err := cuda.NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := testDev.NewNCCLComm(context.Background(), id, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	r, seed := newRand(t)
	for _, tc := range reduceCases(t, seed, true) {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{MaxBatch: 32, InputShape: tc.in, Momentum: 0.9, BucketBytes: tc.bucket}
			plain, err := New(testDev, tc.cpu, o)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			reduced, err := New(testDev, tc.cpu, o)
			if err != nil {
				t.Fatal(err)
			}
			defer reduced.Close()
			if n := len(reduced.buckets.ranges); n < 3 {
				t.Fatalf("%d gradient buckets; the test wants several", n)
			}
			want, got := make([]float32, plain.NumParams()), make([]float32, plain.NumParams())
			for step := range 3 {
				x, y := randBatch(r, 32, plain.InputSize(), tc.classes)
				if err := plain.Train(Input{X: x, Labels: y}, false); err != nil {
					t.Fatal(err)
				}
				if err := reduced.TrainReduce(Input{X: x, Labels: y}, c); err != nil {
					t.Fatal(err)
				}
				if err := plain.ReadGrad(want); err != nil {
					t.Fatal(err)
				}
				if err := reduced.ReadGrad(got); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: the gradient after TrainReduce differs from Train's", step)
				}
				for _, m := range []*Model{plain, reduced} {
					if err := m.ApplySGD(0.05); err != nil {
						t.Fatal(err)
					}
				}
			}
			wantMom, err := plain.MomentumState()
			if err != nil {
				t.Fatal(err)
			}
			gotMom, err := reduced.MomentumState()
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range wantMom {
				if !slices.Equal(gotMom[name].Data, w.Data) {
					t.Errorf("momentum of %s differs after three TrainReduce steps", name)
				}
			}
		})
	}
}

// twoRanks opens the second GPU and a two-rank NCCL communicator on the
// two GPUs, both closed when t ends; it skips t with fewer than two GPUs
// (NCCL allows one rank per GPU; the emulation has two, the GPU machine
// one).
func twoRanks(t *testing.T) ([]*cuda.Device, []*cuda.NCCLComm) {
	devs, err := cuda.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) < 2 {
		t.Skipf("two ranks need two GPUs (NCCL allows one rank per GPU); %d visible", len(devs))
	}
	d1, err := cuda.Open(1, cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d1.Close(); err != nil {
			t.Error(err)
		}
	})
	devices := []*cuda.Device{testDev, d1}
	id, err := cuda.NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	comms := make([]*cuda.NCCLComm, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, d := range devices {
		wg.Go(func() { comms[r], errs[r] = d.NewNCCLComm(context.Background(), id, r, 2) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the device: cleanups run last in, first out
		for _, c := range comms {
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return devices, comms
}

// TrainReduce over two ranks, one per GPU (the emulation has two; the GPU
// machine has one, so there it skips): both ranks must end with the mean
// of the gradients Train computes for their two batches, the same bits on
// both, step after step, with the gradient in several buckets. A bucket
// handed to NCCL before the backward pass finished writing it would hold
// a mix of averaged and local values.
func TestTrainReduceTwoRanks(t *testing.T) {
	devices, comms := twoRanks(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	rng, seed := newRand(t)
	for _, tc := range reduceCases(t, seed, false) {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{MaxBatch: 16, InputShape: tc.in, Momentum: 0.9, BucketBytes: tc.bucket}
			var plain, reduced [2]*Model
			for r, d := range devices {
				for _, m := range []**Model{&plain[r], &reduced[r]} {
					var err error
					if *m, err = New(d, tc.cpu, o); err != nil {
						t.Fatal(err)
					}
					defer (*m).Close()
				}
			}
			local := [2][]float32{make([]float32, plain[0].NumParams()), make([]float32, plain[0].NumParams())}
			got := [2][]float32{make([]float32, plain[0].NumParams()), make([]float32, plain[0].NumParams())}
			for step := range 3 {
				for r := range 2 {
					x, y := randBatch(rng, 16, plain[r].InputSize(), tc.classes)
					if err := plain[r].Train(Input{X: x, Labels: y}, false); err != nil {
						t.Fatal(err)
					}
					if err := plain[r].ReadGrad(local[r]); err != nil {
						t.Fatal(err)
					}
					wg.Go(func() {
						if errs[r] = reduced[r].TrainReduce(Input{X: x, Labels: y}, comms[r]); errs[r] == nil {
							errs[r] = reduced[r].ReadGrad(got[r])
						}
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				for i, g := range got[0] {
					a, b := local[0][i], local[1][i]
					if g != got[1][i] || g != (a+b)/2 && g != a/2+b/2 {
						t.Fatalf("step %d value %d: ranks hold %g and %g, want the mean of %g and %g", step, i, g, got[1][i], a, b)
					}
				}
				// All four models take the same update.
				for r := range 2 {
					for _, m := range []*Model{plain[r], reduced[r]} {
						if err := m.WriteGrad(got[0]); err != nil {
							t.Fatal(err)
						}
						if err := m.ApplySGD(0.05); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		})
	}
}

// pairSum is an in-process all-reduce of two ranks (each on its own
// device thread), for HostNormSync: both get the sum in rank order.
type pairSum struct {
	mu   sync.Mutex
	cond *sync.Cond
	bufs [2][]float32
	n    int // arrivals in the current round
	gen  int
}

func newPairSum() *pairSum {
	p := &pairSum{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pairSum) reduce(rank int) func([]float32) error {
	return func(buf []float32) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		gen := p.gen
		p.bufs[rank] = slices.Clone(buf)
		if p.n++; p.n == 2 {
			p.n, p.gen = 0, p.gen+1
			p.cond.Broadcast()
		}
		for gen == p.gen {
			p.cond.Wait()
		}
		for i := range buf {
			buf[i] = p.bufs[0][i] + p.bufs[1][i]
		}
		return nil
	}
}

// Synchronised BatchNorm on two ranks with 8 samples each must train as
// one model on the 16 samples together: the mean of the ranks' gradients
// and their running statistics within 1e-5 of the single model's (the
// sums are rounded to float before the all-reduce, as engine/nn's are),
// summed over the TCP-like host path (HostNormSync) and over NCCL.
func TestSyncBatchNormTwoRanks(t *testing.T) {
	devices, comms := twoRanks(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	rng, seed := newRand(t)
	tk := resnetTask(t, seed, true, true, 8)
	o := Options{MaxBatch: 16, InputShape: tk.InputShape(), Momentum: 0.9}
	for _, via := range []string{"host", "nccl"} {
		t.Run(via, func(t *testing.T) {
			whole, err := New(testDev, tk.Model, o)
			if err != nil {
				t.Fatal(err)
			}
			defer whole.Close()
			var ranks [2]*Model
			pair := newPairSum()
			for r, d := range devices {
				if ranks[r], err = New(d, tk.Model, o); err != nil {
					t.Fatal(err)
				}
				defer ranks[r].Close()
				if via == "host" {
					ranks[r].SyncBatchNorm(HostNormSync(pair.reduce(r)))
					continue
				}
				var ready, done cuda.Event
				if err := d.Do(func(q *cuda.Queue) error {
					ready, done = q.NewEvent(), q.NewEvent()
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				ranks[r].SyncBatchNorm(NCCLNormSync(comms[r], ready, done))
			}
			n, size := 16, whole.InputSize()
			want, got := make([]float32, whole.NumParams()), [2][]float32{make([]float32, whole.NumParams()), make([]float32, whole.NumParams())}
			for step := range 2 {
				x, y := randBatch(rng, n, size, 2)
				if err := whole.Train(Input{X: x, Labels: y}, false); err != nil {
					t.Fatal(err)
				}
				if err := whole.ReadGrad(want); err != nil {
					t.Fatal(err)
				}
				for r := range 2 {
					half := Input{X: x[r*n/2*size : (r+1)*n/2*size], Labels: y[r*n/2 : (r+1)*n/2]}
					wg.Go(func() {
						if errs[r] = ranks[r].Train(half, false); errs[r] == nil {
							errs[r] = ranks[r].ReadGrad(got[r])
						}
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				mean := make([]float32, len(want))
				for i := range mean {
					mean[i] = (got[0][i] + got[1][i]) / 2
				}
				closeTo(t, fmt.Sprintf("step %d: the ranks' mean gradient", step), mean, want, 1e-5)
				for _, m := range []*Model{whole, ranks[0], ranks[1]} {
					if err := m.WriteGrad(want); err != nil { // the same update for all
						t.Fatal(err)
					}
					if err := m.ApplySGD(0.05); err != nil {
						t.Fatal(err)
					}
				}
			}
			hosts := [3]*nn.Sequential{resnetTask(t, seed+1, true, true, 8).Model, resnetTask(t, seed+2, true, true, 8).Model, resnetTask(t, seed+3, true, true, 8).Model}
			for i, m := range []*Model{whole, ranks[0], ranks[1]} {
				if err := m.BuffersToHost(hosts[i]); err != nil {
					t.Fatal(err)
				}
			}
			wantBufs := nn.Buffers(hosts[0])
			for r := 1; r <= 2; r++ {
				for i, b := range nn.Buffers(hosts[r]) {
					closeTo(t, fmt.Sprintf("rank %d %s", r-1, b.Name), b.Value.Data, wantBufs[i].Value.Data, 1e-5)
				}
			}
		})
	}
}
