//go:build cuda

package gpu

import (
	"context"
	"slices"
	"testing"

	"cohort/cuda"
	"cohort/engine/nn"
)

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
	tk := resnetTask(t, seed, true, true, 8)
	for _, tc := range []struct {
		name    string
		cpu     *nn.Sequential
		in      []int
		classes int
		bucket  int
	}{
		{"mlp", mlp(seed, 100, 64, 48, 10), []int{100}, 10, 4 << 10},
		{"resnet", tk.Model, tk.InputShape(), 2, 1 << 10},
	} {
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
