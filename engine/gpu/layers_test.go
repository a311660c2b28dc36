//go:build cuda

package gpu

// Single-layer tests: a Conv2d, MaxPool2d, BatchNorm or GlobalAvgPool
// (with and without the ReLU folded in) on the GPU against the same
// engine/nn layers on the CPU, on the same weights and fresh random inputs. Inputs, weights and output
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

// deviceLayer is the one layer of a planned network with its device
// buffers, for single-layer tests: the CPU model's parameters and buffers
// are uploaded, everything else starts as NaN.
type deviceLayer struct {
	net                              *network
	l                                *layerSpec
	bufs                             layerBufs
	params, grads, state, x, dy, dxb cuda.Buffer
	vals                             []cuda.Buffer
	owned                            []cuda.Buffer
}

// newDeviceLayer sizes net's layer for n samples; net must hold one layer
// (planLayers of a one-layer model).
func newDeviceLayer(t *testing.T, q *cuda.Queue, net *network, n int) *deviceLayer {
	t.Helper()
	if len(net.layers) != 1 {
		t.Fatalf("%d layers planned, want 1", len(net.layers))
	}
	d := &deviceLayer{net: net, l: &net.layers[0]}
	alloc := func(values int) cuda.Buffer {
		if values == 0 {
			return cuda.Buffer{}
		}
		b := q.Alloc(4 * int64(values))
		d.owned = append(d.owned, b)
		q.Poison(b)
		return b
	}
	nparams, nstate := 0, 0
	for _, s := range net.slots {
		nparams += s.Len
	}
	for _, s := range net.buffers {
		nstate += s.Len
	}
	d.params, d.grads, d.state = alloc(nparams), alloc(nparams), alloc(nstate)
	d.bufs = d.l.allocBufs(n, alloc(d.l.workLen(n)), alloc)
	d.x, d.dy, d.dxb = alloc(n*d.l.In), alloc(n*d.l.Out), alloc(n*d.l.In)
	d.vals = []cuda.Buffer{d.x, alloc(n * d.l.Out)}
	if q.Err() != nil {
		return d // no views of buffers that were not made
	}
	for i, s := range net.slots {
		cuda.Upload(q, view(d.params, s), net.params[i].Value.Data)
	}
	for i, s := range net.buffers {
		cuda.Upload(q, view(d.state, s), net.bufs[i].Value.Data)
	}
	return d
}

func (d *deviceLayer) free(q *cuda.Queue) {
	for _, b := range d.owned {
		q.Free(b)
	}
}

// step runs the layer forward on x (training when train is set) and, with
// dy, backward; it returns the output, the input gradient and the flat
// parameter gradient (nil without dy).
func (d *deviceLayer) step(q *cuda.Queue, x, dy []float32, n int, train, accumulate bool) (y, dx, grad []float32) {
	cuda.Upload(q, d.x, x)
	d.l.forward(q, d.bufs, d.params, d.state, d.vals, n, train)
	y = make([]float32, n*d.l.Out)
	cuda.Download(q, y, d.vals[1])
	if dy == nil {
		return y, nil, nil
	}
	cuda.Upload(q, d.dy, dy)
	if d.l.ReLU && d.l.Kind == linearLayer {
		q.ReLUBackward(d.dy, d.dy, d.vals[1], n*d.l.Out) // the schedule's mask step
	}
	d.l.backward(q, d.bufs, d.params, d.grads, d.vals, d.dy, d.dxb, n, accumulate)
	dx, grad = make([]float32, n*d.l.In), make([]float32, cuda.Len[float32](d.grads))
	cuda.Download(q, dx, d.dxb)
	cuda.Download(q, grad, d.grads)
	return y, dx, grad
}

// layerRun is what one layer computed on the GPU: its output, its input
// gradient, and its flat parameter gradient after one backward pass and
// after a second one that accumulates.
type layerRun struct{ y, dx, grad, grad2 []float32 }

// runLayer runs net's one layer forward (training) on the n samples x and
// backward from dy on the GPU, with the planned model's parameters, then
// both again, accumulating the parameter gradient.
func runLayer(t *testing.T, net *network, x, dy []float32, n int) layerRun {
	t.Helper()
	var out layerRun
	onDevice(t, func(q *cuda.Queue) error {
		d := newDeviceLayer(t, q, net, n)
		defer d.free(q)
		if err := q.Err(); err != nil {
			return err
		}
		out.y, out.dx, out.grad = d.step(q, x, dy, n, true, false)
		// backward may overwrite the patches its forward left.
		_, _, out.grad2 = d.step(q, x, dy, n, true, true)
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
	byName := paramsByName(ps)
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
			in := []int{c.c, c.h, c.w}
			cpu, net := planOne(t, conv, c.relu, in)
			x, dy := onGrid(r, c.n*numel(in), 1.0/16, 1), onGrid(r, c.n*net.layers[0].Out, 1.0/16, 1)
			y, dx := cpuLayer(cpu, x, in, dy)
			checkLayer(t, runLayer(t, net, x, dy, c.n), net.slots, cpu.Params(), y, dx)
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
			in := []int{c.c, c.h, c.w}
			cpu, net := planOne(t, nn.NewMaxPool2d(c.k, c.s, c.p), c.relu, in)
			// Values on a grid of 1/16 in [-1, 1]: many ties within a window.
			x, dy := onGrid(r, c.n*numel(in), 1.0/16, 1), onGrid(r, c.n*net.layers[0].Out, 1.0/16, 1)
			if c.nan {
				for i := range x {
					if r.IntN(20) == 0 {
						x[i] = float32(math.NaN())
					}
				}
			}
			y, dx := cpuLayer(cpu, x, in, dy)
			checkLayer(t, runLayer(t, net, x, dy, c.n), nil, nil, y, dx)
		})
	}
}

// planOne plans a network of one CPU layer, followed by a ReLU when relu
// is set, for samples of shape in.
func planOne(t *testing.T, layer nn.Layer, relu bool, in []int) (*nn.Sequential, *network) {
	t.Helper()
	cpu := nn.NewSequential(layer)
	if relu {
		cpu.Layers = append(cpu.Layers, nn.NewReLU())
	}
	net, _, err := planLayers(cpu, in)
	if err != nil {
		t.Fatal(err)
	}
	return cpu, net
}
