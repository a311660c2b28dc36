//go:build cuda

package gpu

// Single-layer tests: a Conv2d or MaxPool2d (with and without the ReLU
// folded in) on the GPU against the same engine/nn layers on the CPU, on
// the same weights and fresh random inputs. Inputs, weights and output
// gradients are drawn on coarse binary grids (multiples of 1/16 and
// 1/256) on which every product and every partial sum is exact in
// float32, so results must match bit for bit whatever order either side
// sums in (up to the sign of zero): a wrong index cannot hide in a
// tolerance, and no ReLU or max decision can tip on rounding.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"

	"cohort/cuda"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// onGrid is n values k·step in [-limit, limit].
func onGrid(r *rand.Rand, n int, step, limit float64) []float32 {
	k := int(limit / step)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(float64(r.IntN(2*k+1)-k) * step)
	}
	return out
}

// snap rounds every value of v to a multiple of step.
func snap(v []float32, step float64) {
	for i, x := range v {
		v[i] = float32(math.Round(float64(x)/step) * step)
	}
}

// exactly fails t unless got equals want elementwise (-0 equals 0, NaN
// equals NaN); it reports the first few differences.
func exactly(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		g, w := got[i], want[i]
		if g != w && !(g != g && w != w) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g", what, i, g, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

// onDevice runs f on the test device and fails t on any error, including
// one that shows only at the final synchronize.
func onDevice(t *testing.T, f func(q *cuda.Queue) error) {
	t.Helper()
	if err := testDev.Do(func(q *cuda.Queue) error {
		if err := f(q); err != nil {
			return err
		}
		return q.Sync()
	}); err != nil {
		t.Fatal(err)
	}
}

// layerRun is what one layer computed on the GPU: its output, its input
// gradient, and its flat parameter gradient after one backward pass and
// after a second one that accumulates.
type layerRun struct{ y, dx, grad, grad2 []float32 }

// runLayer runs l forward on the n samples x and backward from dy on the
// GPU, with the CPU parameters ps placed by slots. Every buffer the layer
// writes starts as NaN.
func runLayer(t *testing.T, l *layerSpec, slots []Slot, ps []*nn.Param, x, dy []float32, n int) layerRun {
	t.Helper()
	nparams := 0
	for _, s := range slots {
		nparams += s.Len
	}
	out := layerRun{y: make([]float32, n*l.Out), dx: make([]float32, n*l.In), grad: make([]float32, nparams), grad2: make([]float32, nparams)}
	byName := map[string]*nn.Param{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	onDevice(t, func(q *cuda.Queue) error {
		var owned []cuda.Buffer
		defer func() {
			for _, b := range owned {
				q.Free(b)
			}
		}()
		alloc := func(values int) cuda.Buffer {
			if values == 0 {
				return cuda.Buffer{}
			}
			b := q.Alloc(4 * int64(values))
			owned = append(owned, b)
			q.Poison(b)
			return b
		}
		params, grads := alloc(nparams), alloc(nparams)
		bufs := l.allocBufs(n, alloc(l.workLen(n)), alloc)
		xb, dyb, dx := alloc(len(x)), alloc(len(dy)), alloc(n*l.In)
		if err := q.Err(); err != nil {
			return err // no views of buffers that were not made
		}
		for _, s := range slots {
			cuda.Upload(q, view(params, s), byName[s.Name].Value.Data)
		}
		cuda.Upload(q, xb, x)
		cuda.Upload(q, dyb, dy)
		l.forward(q, bufs, params, xb, n)
		cuda.Download(q, out.y, bufs.out)
		l.backward(q, bufs, params, grads, xb, dyb, dx, n, false)
		cuda.Download(q, out.dx, dx)
		cuda.Download(q, out.grad, grads)
		// backward may overwrite dy, and the patches its forward left.
		cuda.Upload(q, dyb, dy)
		l.forward(q, bufs, params, xb, n)
		l.backward(q, bufs, params, grads, xb, dyb, dx, n, true)
		cuda.Download(q, out.grad2, grads)
		return nil
	})
	return out
}

// cpuLayer runs a CPU stack forward on x (n×in) and backward from dy,
// from zeroed parameter gradients, and returns its output and dx.
func cpuLayer(m *nn.Sequential, x []float32, in []int, dy []float32) (y, dx []float32) {
	for _, p := range m.Params() {
		p.Grad.Zero()
	}
	yt := m.Forward(tensor.FromData(x, append([]int{len(x) / numel(in)}, in...)...), nn.Pass{Train: true})
	y = append([]float32(nil), yt.Data...)
	dx = m.Backward(tensor.FromData(dy, yt.Shape...)).Data
	return y, dx
}

// checkLayer compares a GPU run with the CPU's output, input gradient and
// parameter gradients (twice them after the accumulating pass).
func checkLayer(t *testing.T, got layerRun, slots []Slot, ps []*nn.Param, y, dx []float32) {
	t.Helper()
	exactly(t, "y", got.y, y)
	exactly(t, "dx", got.dx, dx)
	byName := map[string]*nn.Param{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	for _, s := range slots {
		want := byName[s.Name].Grad.Data
		twice := make([]float32, len(want))
		for i, v := range want {
			twice[i] = 2 * v
		}
		exactly(t, "grad "+s.Name, gradOf(got.grad, s), want)
		exactly(t, "accumulated grad "+s.Name, gradOf(got.grad2, s), twice)
	}
}

func TestConvLayer(t *testing.T) {
	r, seed := newRand(t)
	cases := []struct {
		n, c, h, w, out, k, s, p int
		bias, relu               bool
	}{
		{37, 1, 28, 28, 20, 5, 1, 0, true, false}, // LeNet's first, odd batch
		{19, 20, 12, 12, 50, 5, 1, 0, true, true}, // LeNet's second, with a ReLU
		{5, 3, 9, 8, 4, 3, 2, 1, false, true},     // stride 2, padding, no bias
		{3, 2, 10, 9, 3, 4, 3, 2, true, false},    // stride 3, kernel 4, padding 2
		{4, 2, 4, 4, 3, 5, 1, 1, true, true},      // kernel as large as the padded image
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			conv := nn.NewConv2d(gonum.Implementation{}, rng, "c", nn.Conv2dSpec{In: c.c, Out: c.out, Kernel: c.k, Stride: c.s, Padding: c.p, Bias: c.bias})
			for _, p := range conv.Params() {
				snap(p.Value.Data, 1.0/256)
			}
			cpu := nn.NewSequential(conv)
			if c.relu {
				cpu.Layers = append(cpu.Layers, nn.NewReLU())
			}
			in := []int{c.c, c.h, c.w}
			specs, slots, err := plan(cpu, in...)
			if err != nil {
				t.Fatal(err)
			}
			l := &specs[0]
			x, dy := onGrid(r, c.n*numel(in), 1.0/16, 1), onGrid(r, c.n*l.Out, 1.0/16, 1)
			y, dx := cpuLayer(cpu, x, in, dy)
			checkLayer(t, runLayer(t, l, slots, cpu.Params(), x, dy, c.n), slots, cpu.Params(), y, dx)
		})
	}
}

func TestPoolLayer(t *testing.T) {
	r, _ := newRand(t)
	cases := []struct {
		n, c, h, w, k, s, p int
		relu, nan           bool
	}{
		{37, 20, 24, 24, 2, 2, 0, true, false}, // LeNet's, then its ReLU
		{11, 50, 8, 8, 2, 2, 0, false, true},   // LeNet's second, NaNs in the input
		{3, 2, 9, 7, 3, 2, 1, false, true},     // overlapping windows, padding
		{5, 2, 7, 7, 3, 1, 1, true, false},     // overlapping at stride 1
		{2, 3, 11, 10, 4, 3, 2, false, false},  // floor mode drops the last rows
		{3, 3, 7, 7, 2, 2, 0, true, false},     // odd size: a row and column unread
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			cpu := nn.NewSequential(nn.NewMaxPool2d(c.k, c.s, c.p))
			if c.relu {
				cpu.Layers = append(cpu.Layers, nn.NewReLU())
			}
			in := []int{c.c, c.h, c.w}
			g, err := cuda.NewWindow(c.c, c.h, c.w, c.k, c.s, c.p)
			if err != nil {
				t.Fatal(err)
			}
			l := &layerSpec{Kind: poolLayer, In: g.InLen(), Out: g.C * g.OutPlane(), ReLU: c.relu, Win: g}
			// Values on a grid of 1/16 in [-1, 1]: many ties within a window.
			x, dy := onGrid(r, c.n*numel(in), 1.0/16, 1), onGrid(r, c.n*l.Out, 1.0/16, 1)
			if c.nan {
				for i := range x {
					if r.IntN(20) == 0 {
						x[i] = float32(math.NaN())
					}
				}
			}
			y, dx := cpuLayer(cpu, x, in, dy)
			checkLayer(t, runLayer(t, l, nil, nil, x, dy, c.n), nil, nil, y, dx)
		})
	}
}
