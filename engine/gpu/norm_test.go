//go:build cuda

package gpu

// BatchNorm and GlobalAvgPool layers on the GPU against engine/nn's on the
// CPU, in the style of layers_test.go: inputs, output gradients, γ, β and
// the running statistics on binary grids, so that every sum the
// statistics need is exact in float64 on both sides and both round the
// same formulas the same way.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"cohort/cuda"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// TestNormLayer runs three training steps (forward and backward, the
// third accumulating its parameter gradient onto the second's) and an
// evaluation forward of a BatchNorm, with and without the ReLU after it,
// and compares every output, the input gradients, the parameter
// gradients and the running statistics with engine/nn's. Outputs, running
// statistics, num_batches_tracked and dβ must match bit for bit; dγ and dx
// depend on float64 sums of products that are not exact in any order, so
// they must match within 1e-6 of the tensor's largest magnitude.
func TestNormLayer(t *testing.T) {
	r, seed := newRand(t)
	cases := []struct {
		n    int
		in   []int
		relu bool
	}{
		{5, []int{3, 7, 6}, false},  // BatchNorm2d, odd sizes
		{3, []int{4, 5, 5}, true},   // with the ReLU of a ResNet's stem
		{37, []int{24}, true},       // BatchNorm1d in an MLP
		{2, []int{7}, false},        // the smallest batch training takes
		{2, []int{2, 40, 33}, true}, // a channel of two partial-sum chunks
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("n%d_%v_relu%v", c.n, c.in, c.relu), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			bn := nn.NewBatchNorm("bn", c.in[0])
			for _, p := range []*nn.Param{bn.Weight, bn.Bias, bn.RunningMean} {
				copy(p.Value.Data, onGrid(rng, c.in[0], 1.0/64, 1.5))
			}
			for j := range bn.RunningVar.Value.Data {
				bn.RunningVar.Value.Data[j] = float32(1+rng.IntN(64)) / 32
			}
			bn.NumBatchesTracked.Value.Data[0] = 3
			cpu, net := planOne(t, bn, c.relu, c.in)
			testNormLayer(t, r, net, cpu, c.n, c.in)
		})
	}
}

// normStep is what one pass of a layer gave: output, input gradient,
// flat parameter gradient and flat buffers (the latter two in the
// network's slot order).
type normStep struct{ y, dx, grad, state []float32 }

func testNormLayer(t *testing.T, r *rand.Rand, net *network, cpu *nn.Sequential, n int, in []int) {
	size := n * numel(in)
	var xs, dys [][]float32
	for range 4 {
		x := onGrid(r, size, 1.0/16, 1)
		for i := range x {
			x[i] += 2 // far from zero mean; still exact: x² is on the 1/256 grid
		}
		xs, dys = append(xs, x), append(dys, onGrid(r, size, 1.0/16, 1))
	}
	ps, bs := net.params, net.bufs
	flat := func(ts []*nn.Param, grad bool) []float32 {
		var out []float32
		for _, p := range ts {
			if grad {
				out = append(out, p.Grad.Data...)
			} else {
				out = append(out, p.Value.Data...)
			}
		}
		return out
	}
	// The GPU first, from the CPU model's initial state.
	var got []normStep
	onDevice(t, func(q *cuda.Queue) error {
		d := newDeviceLayer(t, q, net, n)
		defer d.free(q)
		if err := q.Err(); err != nil {
			return err
		}
		for step := range 4 {
			var s normStep
			var dy []float32
			if step < 3 {
				dy = dys[step]
			}
			s.y, s.dx, s.grad = d.step(q, xs[step], dy, n, step < 3, step == 2)
			s.state = make([]float32, cuda.Len[float32](d.state))
			cuda.Download(q, s.state, d.state)
			got = append(got, s)
		}
		return nil
	})
	for step := range 4 {
		train := step < 3
		if step != 2 {
			for _, p := range cpu.Params() {
				p.Grad.Zero()
			}
		}
		yt := cpu.Forward(tensor.FromData(xs[step], append([]int{n}, in...)...), nn.Pass{Train: train})
		g, what := got[step], fmt.Sprintf("step %d", step)
		exactly(t, what+" y", g.y, yt.Data)
		exactly(t, what+" buffers", g.state, flat(bs, false))
		if !train {
			continue
		}
		dx := cpu.Backward(tensor.FromData(dys[step], yt.Shape...))
		closeTo(t, what+" dx", g.dx, dx.Data, 1e-6)
		for i, s := range net.slots {
			if s.Name == net.layers[0].b.Name { // dβ: sums of grid values, exact
				exactly(t, what+" grad "+s.Name, gradOf(g.grad, s), ps[i].Grad.Data)
			} else {
				closeTo(t, what+" grad "+s.Name, gradOf(g.grad, s), ps[i].Grad.Data, 1e-6)
			}
		}
	}
}

func TestAvgPoolLayer(t *testing.T) {
	r, _ := newRand(t)
	for _, c := range []struct {
		n  int
		in []int
	}{{5, []int{3, 4, 4}}, {2, []int{7, 7, 7}}, {3, []int{2, 1, 1}}, {4, []int{64, 2, 2}}} {
		t.Run(fmt.Sprintf("n%d_%v", c.n, c.in), func(t *testing.T) {
			cpu := nn.NewSequential(nn.NewGlobalAvgPool())
			net, _, err := planLayers(cpu, c.in)
			if err != nil {
				t.Fatal(err)
			}
			x, dy := onGrid(r, c.n*numel(c.in), 1.0/16, 1), onGrid(r, c.n*c.in[0], 1.0/16, 1)
			y, dx := cpuLayer(cpu, x, c.in, dy)
			checkLayer(t, runLayer(t, net, x, dy, c.n), nil, nil, y, dx)
		})
	}
}
