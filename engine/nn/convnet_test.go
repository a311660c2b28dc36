package nn_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"cohort/engine/cpu"
	"cohort/engine/data"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/tensor"
)

// newSmallResNet is a two-block ResNet for 3×16×16 inputs with
// torchvision's names: conv3×3-BN-ReLU stem, a basic block at 8 channels,
// one down to 8×8 at 16 channels, global average pool and a linear head.
func newSmallResNet(seed uint64, classes int) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 0))
	impl := cpu.BLAS()
	m := nn.NewSequential(
		nn.NewConv2d(impl, rng, "conv1", nn.Conv2dSpec{In: 3, Out: 8, Kernel: 3, Padding: 1}),
		nn.NewBatchNorm("bn1", 8), nn.NewReLU(),
		nn.NewBasicBlock(impl, rng, "layer1.0", 8, 8, 1),
		nn.NewBasicBlock(impl, rng, "layer2.0", 8, 16, 2),
		nn.NewGlobalAvgPool(),
		nn.NewLinear(impl, rng, "fc", 16, classes),
	)
	m.SkipInputGrad = true
	return m
}

// convStep is one forward, loss and backward of model on x.
func convStep(tb testing.TB, model *nn.Sequential, loss *nn.SoftmaxCrossEntropy, x *tensor.Tensor, labels []int32) float32 {
	l, err := loss.Forward(model.Forward(x, nn.Pass{Train: true}), labels)
	if err != nil {
		tb.Fatal(err)
	}
	model.Backward(loss.Backward())
	return l
}

// The small ResNet must learn a synthetic 4-class problem in a few epochs
// and keep that accuracy in evaluation mode, which runs on the running
// statistics the training steps accumulated.
func TestSmallResNetLearnsSynthetic(t *testing.T) {
	const classes, batch, epochs = 4, 32, 3
	shape := []int{3, 16, 16}
	train, err := data.NewSynthetic(512, classes, shape, 0, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.NewSynthetic(256, classes, shape, 0, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	model := newSmallResNet(1, classes)
	opt, err := optim.NewSGD(model.Params(), 0.9, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	loss := nn.NewSoftmaxCrossEntropy()
	x, y := make([]float32, batch*3*16*16), make([]int32, batch)
	for epoch := range epochs {
		idx := rand.New(rand.NewPCG(9, uint64(epoch))).Perm(train.Len())
		for s := 0; s+batch <= len(idx); s += batch {
			train.Gather(idx[s:s+batch], x, y)
			for _, p := range model.Params() {
				p.Grad.Zero()
			}
			convStep(t, model, loss, tensor.FromData(x, batch, 3, 16, 16), y)
			opt.Step(0.05)
		}
	}
	acc := accuracy(model, test, batch)
	t.Logf("test accuracy %.3f", acc)
	if acc < 0.95 {
		t.Errorf("test accuracy %.3f after %d epochs, want ≥ 0.95", acc, epochs)
	}
}

// accuracy is the evaluation-mode accuracy of model on d.
func accuracy(model *nn.Sequential, d data.Dataset, batch int) float64 {
	size := numelOf(d.SampleShape())
	x, y := make([]float32, batch*size), make([]int32, batch)
	idx := make([]int, batch)
	correct := 0
	for s := 0; s < d.Len(); s += batch {
		n := min(batch, d.Len()-s)
		for i := range n {
			idx[i] = s + i
		}
		d.Gather(idx[:n], x, y)
		logits := model.Forward(tensor.FromData(x[:n*size], append([]int{n}, d.SampleShape()...)...), nn.Pass{})
		k := logits.Cols()
		for i := range n {
			row := logits.Data[i*k : (i+1)*k]
			if int32(slices.Index(row, slices.Max(row))) == y[i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(d.Len())
}

// After a bigger batch, a smaller one must re-slice every buffer and give
// bit for bit what a fresh model computes at that batch (batch norm uses
// the batch's statistics in training, so earlier steps do not leak in).
func TestConvNetsSmallerBatchReusesBuffers(t *testing.T) {
	const big, small = 8, 3
	for _, tc := range []struct {
		name  string
		build func() *nn.Sequential
		shape []int
	}{
		{"lenet", func() *nn.Sequential { return newLeNet(4) }, []int{1, 28, 28}},
		{"resnet", func() *nn.Sequential { return newSmallResNet(4, 5) }, []int{3, 16, 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 8))
			size := numelOf(tc.shape)
			x := randn(rng, big*size)
			labels := make([]int32, big)
			for i := range labels {
				labels[i] = int32(rng.IntN(5))
			}
			batch := func(n int) *tensor.Tensor { return tensor.FromData(x[:n*size], append([]int{n}, tc.shape...)...) }
			reused, fresh := tc.build(), tc.build()
			lossR, lossF := nn.NewSoftmaxCrossEntropy(), nn.NewSoftmaxCrossEntropy()
			convStep(t, reused, lossR, batch(big), labels)
			bigOut := &reused.Forward(batch(big), nn.Pass{Train: true}).Data[0]
			for _, p := range reused.Params() {
				p.Grad.Zero()
			}
			if a, b := convStep(t, reused, lossR, batch(small), labels[:small]), convStep(t, fresh, lossF, batch(small), labels[:small]); a != b {
				t.Errorf("loss %v after a bigger batch, %v fresh", a, b)
			}
			fs := fresh.Params()
			for i, p := range reused.Params() {
				if !slices.Equal(p.Grad.Data, fs[i].Grad.Data) {
					t.Errorf("%s grad differs after a bigger batch", p.Name)
				}
			}
			if y := reused.Forward(batch(small), nn.Pass{Train: true}); y.Rows() != small || &y.Data[0] != bigOut {
				t.Errorf("output %v not re-sliced from the batch-%d buffer", y.Shape, big)
			}
		})
	}
}

// A warm training step must not allocate, as for the MLP.
func TestConvNetsStepAllocatesNothing(t *testing.T) {
	if cpu.BLASName != "openblas" {
		t.Skip("gonum's Sgemm allocates for its goroutines; only our code is under test")
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, tc := range []struct {
		name  string
		model *nn.Sequential
		shape []int
	}{
		{"lenet", newLeNet(1), []int{16, 1, 28, 28}},
		{"resnet", newSmallResNet(1, 4), []int{16, 3, 16, 16}},
	} {
		x := tensor.FromData(randn(rng, numelOf(tc.shape)), tc.shape...)
		labels := make([]int32, tc.shape[0])
		loss := nn.NewSoftmaxCrossEntropy()
		if a := testing.AllocsPerRun(3, func() { convStep(t, tc.model, loss, x, labels) }); a != 0 {
			t.Errorf("%s: a step allocated %v times", tc.name, a)
		}
	}
}

func TestConvLayersCost(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	conv := nn.NewConv2d(cpu.BLAS(), rng, "c", nn.Conv2dSpec{In: 3, Out: 8, Kernel: 3, Stride: 2, Padding: 1, Bias: true})
	block := nn.NewBasicBlock(cpu.BLAS(), rng, "b", 8, 16, 2)
	// conv1 3×3 8→16 and the 1×1 projection at 4×4, conv2 3×3 16→16, two
	// batch norms on the main branch and one on the shortcut.
	blockFlops := int64(2*16*16*8*9 + 2*16*16*16*9 + 2*16*16*8 + 3*2*16*16)
	for _, tc := range []struct {
		name  string
		layer nn.Layer
		in    []int
		out   []int
		flops int64
	}{
		{"conv s2 p1", conv, []int{3, 15, 15}, []int{8, 8, 8}, 2 * 8 * 64 * 27},
		{"maxpool 2", nn.NewMaxPool2d(2, 0, 0), []int{20, 24, 24}, []int{20, 12, 12}, 20 * 144 * 4},
		{"maxpool 3/2/1", nn.NewMaxPool2d(3, 2, 1), []int{4, 7, 7}, []int{4, 4, 4}, 4 * 16 * 9},
		{"avgpool 3/1", nn.NewAvgPool2d(3, 1), []int{2, 5, 6}, []int{2, 3, 4}, 2 * 12 * 9},
		{"global avgpool", nn.NewGlobalAvgPool(), []int{16, 4, 4}, []int{16}, 256},
		{"batchnorm 2d", nn.NewBatchNorm("bn", 8), []int{8, 4, 4}, []int{8, 4, 4}, 2 * 128},
		{"batchnorm 1d", nn.NewBatchNorm("bn", 8), []int{8}, []int{8}, 16},
		{"basic block", block, []int{8, 8, 8}, []int{16, 4, 4}, blockFlops},
		// The anchor's figure: 2·(20·576·25 + 50·64·500 + 800·500 + 500·10)
		// plus the pools' comparisons.
		{"lenet", newLeNet(1), []int{1, 28, 28}, []int{10}, 2*(20*576*25+50*64*500+800*500+500*10) + 20*144*4 + 50*16*4},
	} {
		out, flops := tc.layer.Cost(tc.in)
		if !slices.Equal(out, tc.out) || flops != tc.flops {
			t.Errorf("%s: Cost(%v) = %v, %d; want %v, %d", tc.name, tc.in, out, flops, tc.out, tc.flops)
		}
	}
}
