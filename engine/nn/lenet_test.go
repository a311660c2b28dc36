package nn_test

import (
	"math/rand/v2"
	"os"
	"testing"

	"cohort/engine/cpu"
	"cohort/engine/data"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/tensor"
)

// mnistEnv names the folder with MNIST's four IDX .gz files; the LeNet
// accuracy test runs only when it is set (it trains for minutes).
const mnistEnv = "COHORT_TEST_MNIST"

// newLeNet is the anchor's LeNet (mlp_mnist_torch.py --model lenet) with
// its state_dict names: conv5×5×20-relu-pool2-conv5×5×50-relu-pool2-
// fc500-relu-fc10 on 1×28×28, each ReLU after its pool as engine/task
// builds it (the same function, computed on fewer values).
func newLeNet(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 0))
	impl := cpu.BLAS()
	return nn.NewSequential(
		nn.NewConv2d(impl, rng, "1", nn.Conv2dSpec{In: 1, Out: 20, Kernel: 5, Bias: true}), nn.NewMaxPool2d(2, 0, 0), nn.NewReLU(),
		nn.NewConv2d(impl, rng, "4", nn.Conv2dSpec{In: 20, Out: 50, Kernel: 5, Bias: true}), nn.NewMaxPool2d(2, 0, 0), nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(impl, rng, "8", 800, 500), nn.NewReLU(),
		nn.NewLinear(impl, rng, "10", 500, 10),
	)
}

// BenchmarkLeNetStep is forward + loss + backward of LeNet at batch 128,
// skipping the input gradient as the trainer (and PyTorch) does. Compare
// with the anchor at one thread:
//
//	OPENBLAS_NUM_THREADS=1 GOMAXPROCS=1 go test -tags openblas -bench LeNet ./engine/nn
//	/usr/bin/python3 /work/shared/anchors/mlp_mnist_torch.py --model lenet --procs 1 --threads 1 --epochs 1 --max-steps 100
func BenchmarkLeNetStep(b *testing.B) {
	const batch = 128
	rng := rand.New(rand.NewPCG(3, 0))
	model := newLeNet(1)
	model.SkipInputGrad = true
	loss := nn.NewSoftmaxCrossEntropy()
	x := tensor.FromData(randn(rng, batch*784), batch, 1, 28, 28)
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
	}
	for b.Loop() {
		if _, err := loss.Forward(model.Forward(x, nn.Pass{Train: true}), labels); err != nil {
			b.Fatal(err)
		}
		model.Backward(loss.Backward())
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// LeNet must reach 99.0 % on MNIST's test set within 10 epochs with the
// anchor's recipe (SGD, lr 0.1, momentum 0.9, batch 128, inputs in [0,1]).
// Run it with
//
//	COHORT_TEST_MNIST=~/.cache/cohort/mnist go test -tags openblas -run LeNetMNIST -v -timeout 30m ./engine/nn
func TestLeNetMNIST(t *testing.T) {
	root := os.Getenv(mnistEnv)
	if root == "" {
		t.Skip(mnistEnv + " is not set")
	}
	const batch, epochs, target = 128, 10, 0.99
	train, err := data.LoadMNIST(root, true)
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.LoadMNIST(root, false)
	if err != nil {
		t.Fatal(err)
	}
	model := newLeNet(1)
	model.SkipInputGrad = true
	opt, err := optim.NewSGD(model.Params(), 0.9, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	loss := nn.NewSoftmaxCrossEntropy()
	x, y := make([]float32, batch*784), make([]int32, batch)
	for epoch := range epochs {
		idx := rand.New(rand.NewPCG(1, uint64(epoch))).Perm(train.Len())
		for s := 0; s < len(idx); s += batch {
			n := min(batch, len(idx)-s) // the last partial batch is kept, as in the anchor
			train.Gather(idx[s:s+n], x, y)
			for _, p := range model.Params() {
				p.Grad.Zero()
			}
			convStep(t, model, loss, tensor.FromData(x[:n*784], n, 1, 28, 28), y[:n])
			opt.Step(0.1)
		}
		acc := accuracy(model, test, 1000)
		t.Logf("epoch %d: test accuracy %.4f", epoch+1, acc)
		if acc >= target {
			return
		}
	}
	t.Errorf("test accuracy below %.3f after %d epochs", target, epochs)
}
