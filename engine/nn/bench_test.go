package nn_test

import (
	"math/rand/v2"
	"testing"

	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// mlp is the benchmark model, 784-512-512-10 with ReLUs, its loss and a
// batch of random data.
type mlp struct {
	model  *nn.Sequential
	loss   *nn.SoftmaxCrossEntropy
	x      *tensor.Tensor
	labels []int32
}

func newMLP(batch int, seed uint64) *mlp {
	rng := rand.New(rand.NewPCG(seed, 0))
	impl := cpu.BLAS()
	m := &mlp{
		model: nn.NewSequential(
			nn.NewFlatten(),
			nn.NewLinear(impl, rng, "1", 784, 512), nn.NewReLU(),
			nn.NewLinear(impl, rng, "3", 512, 512), nn.NewReLU(),
			nn.NewLinear(impl, rng, "5", 512, 10),
		),
		loss:   nn.NewSoftmaxCrossEntropy(),
		x:      tensor.FromData(randn(rng, batch*784), batch, 1, 28, 28),
		labels: make([]int32, batch),
	}
	for i := range m.labels {
		m.labels[i] = int32(rng.IntN(10))
	}
	return m
}

// batch is a view of the first n samples.
func (m *mlp) batch(n int) *tensor.Tensor {
	return tensor.FromData(m.x.Data[:n*784], n, 1, 28, 28)
}

// step is one forward, loss and backward over x, a batch from m.batch.
func (m *mlp) step(tb testing.TB, x *tensor.Tensor) float32 {
	l, err := m.loss.Forward(m.model.Forward(x, nn.Pass{Train: true}), m.labels[:x.Rows()])
	if err != nil {
		tb.Fatal(err)
	}
	m.model.Backward(m.loss.Backward())
	return l
}

// BenchmarkMLPStep is forward + loss + backward of the MLP at batch 128.
// skipInputGrad is what the trainer runs (and PyTorch, whose input does
// not require grad); fullBackward also computes dL/dx of the first layer.
func BenchmarkMLPStep(b *testing.B) {
	const batch = 128
	for _, bc := range []struct {
		name string
		skip bool
	}{{"skipInputGrad", true}, {"fullBackward", false}} {
		b.Run(bc.name, func(b *testing.B) {
			m := newMLP(batch, 1)
			m.model.SkipInputGrad = bc.skip
			x := m.batch(batch)
			for b.Loop() {
				m.step(b, x)
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkReLU is the MLP's ReLU forward + backward at 128×512: the most
// that fusing it into the Linear before it could save.
func BenchmarkReLU(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 0))
	x := tensor.FromData(randn(rng, 128*512), 128, 512)
	r := nn.NewReLU()
	for b.Loop() {
		r.Backward(r.Forward(x, nn.Pass{}))
	}
}
