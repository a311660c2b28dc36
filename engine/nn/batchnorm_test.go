package nn_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// tolBN bounds batch norm errors against float64: the statistics are
// float64 sums, the normalisation and the gradient's correction terms a
// few float32 operations per value (seen 1e-7).
const tolBN = 1e-6

// bnAxes gives, for an input rank, the axes batch norm reduces over (last
// first, for sumAxes) and those a per-channel vector is broadcast along.
func bnAxes(rank int) (reduce []int, bcast []byte) {
	for a := rank - 1; a >= 0; a-- {
		if a != 1 {
			reduce = append(reduce, a)
			bcast = append([]byte{byte(a)}, bcast...)
		}
	}
	return reduce, bcast
}

// bnOracle is batch norm built from gorgonia primitives (gorgonia's own
// BatchNorm op keeps hidden state and its own idea of the gradient). With
// mean and variance nil it uses the batch statistics, otherwise those
// constants.
func bnOracle(o *oracle, x, gamma, beta, mean, variance *G.Node, eps float64) *G.Node {
	reduce, bc := bnAxes(x.Dims())
	if mean == nil {
		m := 1
		for _, a := range reduce {
			m *= x.Shape()[a]
		}
		inv := G.NewConstant(1 / float64(m))
		mean = G.Must(G.Mul(sumAxes(x, reduce...), inv))
		xc := G.Must(G.BroadcastSub(x, mean, nil, bc))
		variance = G.Must(G.Mul(sumAxes(G.Must(G.Square(xc)), reduce...), inv))
	}
	xc := G.Must(G.BroadcastSub(x, mean, nil, bc))
	invstd := G.Must(G.Inverse(G.Must(G.Sqrt(G.Must(G.Add(variance, G.NewConstant(eps)))))))
	xhat := G.Must(G.BroadcastHadamardProd(xc, invstd, nil, bc))
	return G.Must(G.BroadcastAdd(G.Must(G.BroadcastHadamardProd(xhat, gamma, nil, bc)), beta, nil, bc))
}

// newTestBN is a BatchNorm with random γ, β and running statistics, so
// that no term of the gradient hides behind a 1 or a 0.
func newTestBN(rng *rand.Rand, c int) *nn.BatchNorm {
	b := nn.NewBatchNorm("bn", c)
	for i := range c {
		b.Weight.Value.Data[i] = 0.5 + rng.Float32()
		b.Bias.Value.Data[i] = float32(rng.NormFloat64())
		b.RunningMean.Value.Data[i] = float32(rng.NormFloat64())
		b.RunningVar.Value.Data[i] = 0.5 + rng.Float32()
	}
	return b
}

func TestBatchNormMatchesGorgonia(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		train bool
	}{
		{[]int{4, 3, 5, 6}, true},  // BatchNorm2d
		{[]int{4, 3, 5, 6}, false}, // BatchNorm2d in eval mode
		{[]int{8, 5}, true},        // BatchNorm1d on features
		{[]int{8, 5}, false},
		{[]int{3, 4, 7}, true}, // BatchNorm1d on N×C×L
	} {
		t.Run(fmt.Sprintf("%v train=%v", tc.shape, tc.train), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(61, uint64(len(tc.shape))))
			c := tc.shape[1]
			b := newTestBN(rng, c)
			x := tensor.FromData(randn(rng, numelOf(tc.shape)), tc.shape...)
			for i := range x.Data {
				x.Data[i] = 3*x.Data[i] + 2 // mean and variance far from 0 and 1
			}
			r := randn(rng, x.Len())
			build := func(o *oracle, gx *G.Node) (y, gamma, beta *G.Node) {
				gamma = o.input("gamma", b.Weight.Value.Data, c)
				beta = o.input("beta", b.Bias.Value.Data, c)
				var mean, variance *G.Node
				if !tc.train {
					mean = o.input("mean", b.RunningMean.Value.Data, c)
					variance = o.input("var", b.RunningVar.Value.Data, c)
				}
				return bnOracle(o, gx, gamma, beta, mean, variance, float64(b.Eps)), gamma, beta
			}
			o := newOracle(t)
			gx := o.input("x", x.Data, x.Shape...)
			gy, gg, gb := build(o, gx)
			o.run(o.weightedSum(gy, r), gx, gg, gb)

			y := b.Forward(x, nn.Pass{Train: tc.train})
			checkClose(t, "y", y.Data, forwardValue(t, x, func(o *oracle, x *G.Node) *G.Node {
				y, _, _ := build(o, x)
				return y
			}), tolBN)
			checkClose(t, "dx", b.Backward(tensor.FromData(r, x.Shape...)).Data, grad(t, gx), tolBN)
			checkClose(t, "dγ", b.Weight.Grad.Data, grad(t, gg), tolBN)
			checkClose(t, "dβ", b.Bias.Grad.Data, grad(t, gb), tolBN)
		})
	}
}

// Running statistics after each step, worked by hand for the batch
// x = [[1, 10], [3, 20], [5, 60]] (N×C): channel 0 has mean 3, biased
// variance 8/3 and unbiased 4; channel 1 mean 30, variances 1400/3 and 700.
func TestBatchNormRunningStats(t *testing.T) {
	x := tensor.FromData([]float32{1, 10, 3, 20, 5, 60}, 3, 2)
	b := nn.NewBatchNorm("bn", 2)
	for _, step := range []struct {
		train      bool
		mean, vari []float64 // running statistics after the step
		batches    float32
		y          []float64
	}{
		{true, []float64{0.3, 3}, []float64{0.9 + 0.4, 0.9 + 70}, 1, []float64{
			-2 / math.Sqrt(8.0/3+1e-5), -20 / math.Sqrt(1400.0/3+1e-5),
			0, -10 / math.Sqrt(1400.0/3+1e-5),
			2 / math.Sqrt(8.0/3+1e-5), 30 / math.Sqrt(1400.0/3+1e-5),
		}},
		// Evaluation normalises with the running statistics and leaves
		// them alone.
		{false, []float64{0.3, 3}, []float64{1.3, 70.9}, 1, []float64{
			0.7 / math.Sqrt(1.3+1e-5), 7 / math.Sqrt(70.9+1e-5),
			2.7 / math.Sqrt(1.3+1e-5), 17 / math.Sqrt(70.9+1e-5),
			4.7 / math.Sqrt(1.3+1e-5), 57 / math.Sqrt(70.9+1e-5),
		}},
		{true, []float64{0.9*0.3 + 0.3, 0.9*3 + 3}, []float64{0.9*1.3 + 0.4, 0.9*70.9 + 70}, 2, nil},
	} {
		y := b.Forward(x, nn.Pass{Train: step.train})
		checkClose(t, "running mean", b.RunningMean.Value.Data, step.mean, 1e-6)
		checkClose(t, "running var", b.RunningVar.Value.Data, step.vari, 1e-6)
		if got := b.NumBatchesTracked.Value.Data[0]; got != step.batches {
			t.Errorf("train=%v: num_batches_tracked %v, want %v", step.train, got, step.batches)
		}
		if step.y != nil {
			checkClose(t, fmt.Sprintf("train=%v: y", step.train), y.Data, step.y, 1e-6)
		}
	}
}

func TestBatchNormNamesAndInit(t *testing.T) {
	b := nn.NewBatchNorm("layer1.0.bn1", 3)
	var names []string
	for _, p := range append(b.Params(), b.Buffers()...) {
		names = append(names, p.Name)
	}
	want := []string{"layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked"}
	if !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	for _, tc := range []struct {
		p    *nn.Param
		want []float32
	}{
		{b.Weight, []float32{1, 1, 1}}, {b.Bias, []float32{0, 0, 0}},
		{b.RunningMean, []float32{0, 0, 0}}, {b.RunningVar, []float32{1, 1, 1}},
		{b.NumBatchesTracked, []float32{0}},
	} {
		if !slices.Equal(tc.p.Value.Data, tc.want) {
			t.Errorf("%s = %v, want %v", tc.p.Name, tc.p.Value.Data, tc.want)
		}
	}
	for _, p := range b.Buffers() {
		if p.Grad != nil {
			t.Errorf("buffer %s has a gradient", p.Name)
		}
	}
	if s := b.NumBatchesTracked.Value.Shape; len(s) != 0 {
		t.Errorf("num_batches_tracked shape %v, want [] as in PyTorch", s)
	}
}

// pairReducers returns the stats reducers of two simulated ranks: called
// concurrently, each adds the other's vector to its own, an all-reduce.
func pairReducers() [2]func([]float32) error {
	inbox := [2]chan []float32{make(chan []float32, 1), make(chan []float32, 1)}
	var fs [2]func([]float32) error
	for r := range fs {
		fs[r] = func(v []float32) error {
			inbox[1-r] <- slices.Clone(v)
			for i, o := range <-inbox[r] {
				v[i] += o
			}
			return nil
		}
	}
	return fs
}

// Two ranks with a stats reducer must compute what one BatchNorm computes
// on their concatenated batch: outputs, input gradients and running
// statistics, with parameter gradients that sum to the single one.
func TestBatchNormStatsReducerIsSyncBN(t *testing.T) {
	const ranks, per, c, h, w = 2, 3, 4, 3, 5
	rng := rand.New(rand.NewPCG(71, 0))
	x := randn(rng, ranks*per*c*h*w)
	dy := randn(rng, len(x))
	single := nn.NewBatchNorm("bn", c)
	ys := single.Forward(tensor.FromData(x, ranks*per, c, h, w), nn.Pass{Train: true}).Clone()
	dxs := single.Backward(tensor.FromData(dy, ranks*per, c, h, w))

	reducers := pairReducers()
	bns := make([]*nn.BatchNorm, ranks)
	ys2, dxs2 := make([][]float32, ranks), make([][]float32, ranks)
	var wg sync.WaitGroup
	for r := range ranks {
		bns[r] = nn.NewBatchNorm("bn", c)
		bns[r].SetStatsReducer(reducers[r])
		lo, hi := r*per*c*h*w, (r+1)*per*c*h*w
		wg.Go(func() {
			ys2[r] = slices.Clone(bns[r].Forward(tensor.FromData(x[lo:hi], per, c, h, w), nn.Pass{Train: true}).Data)
			dxs2[r] = bns[r].Backward(tensor.FromData(dy[lo:hi], per, c, h, w)).Data
		})
	}
	wg.Wait()
	// The reduced sums are float32, so a little is lost against the
	// single layer's float64 ones (seen 7e-8).
	const tol = 1e-6
	checkClose(t, "y", slices.Concat(ys2...), widen(ys.Data), tol)
	checkClose(t, "dx", slices.Concat(dxs2...), widen(dxs.Data), tol)
	for r, b := range bns {
		if err := b.Err(); err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
		checkClose(t, fmt.Sprintf("rank %d running mean", r), b.RunningMean.Value.Data, widen(single.RunningMean.Value.Data), tol)
		checkClose(t, fmt.Sprintf("rank %d running var", r), b.RunningVar.Value.Data, widen(single.RunningVar.Value.Data), tol)
	}
	for i, p := range single.Params() {
		sum := make([]float32, c)
		for _, b := range bns {
			for j, g := range b.Params()[i].Grad.Data {
				sum[j] += g
			}
		}
		checkClose(t, p.Name+" grad summed over ranks", sum, widen(p.Grad.Data), tol)
	}
}

// A failing reducer must not corrupt the step: the layer falls back to
// its local statistics and reports the first error.
func TestBatchNormStatsReducerError(t *testing.T) {
	errLost := errors.New("peer lost")
	rng := rand.New(rand.NewPCG(81, 0))
	x := tensor.FromData(randn(rng, 6*3), 6, 3)
	local, failing := nn.NewBatchNorm("bn", 3), nn.NewBatchNorm("bn", 3)
	calls := 0
	failing.SetStatsReducer(func([]float32) error { calls++; return fmt.Errorf("round %d: %w", calls, errLost) })
	want := local.Forward(x, nn.Pass{Train: true}).Data
	got := failing.Forward(x, nn.Pass{Train: true}).Data
	failing.Backward(tensor.FromData(randn(rng, 18), 6, 3))
	if !slices.Equal(got, want) {
		t.Errorf("output after a failed reduction %v, want the local one %v", got, want)
	}
	if err := failing.Err(); !errors.Is(err, errLost) || calls != 2 {
		t.Errorf("Err() = %v after %d calls, want the first (round 1) wrapping %v after 2", err, calls, errLost)
	} else if want := "batchnorm bn: stats reducer: round 1: peer lost"; err.Error() != want {
		t.Errorf("Err() = %q, want %q", err, want)
	}
}

// Training needs two values per channel to have a variance; PyTorch
// raises, and so do we.
func TestBatchNormOneValuePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("train-mode Forward on one value per channel did not panic")
		}
	}()
	nn.NewBatchNorm("bn", 2).Forward(tensor.New(1, 2), nn.Pass{Train: true})
}
