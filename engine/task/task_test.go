package task

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cohort/engine/config"
	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

func build(t *testing.T, yaml string, world int) (*Task, error) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return Build(cfg, Options{Seed: 1, BLAS: cpu.BLAS(), WorldSize: world, DataRoot: t.TempDir()})
}

const base = `name: t
num_epochs: 4
dataset:
  train: {name: synthetic, num_samples: 64, num_classes: 4, crop_size: 4, batchsize_per_replica: 8}
model: {name: mlp, hidden_dims: [16, 8]}
loss: {name: CrossEntropyLoss}
optimizer:
  name: sgd
  momentum: 0.9
  param_schedulers:
    lr: {name: multistep, values: [0.1, 0.01], milestones: [2]}
meters: {accuracy: {topk: [1, 3]}}
`

func TestBuildMakesTheConfiguredTask(t *testing.T) {
	tk, err := build(t, base+"simulated_global_batchsize: 32\n", 2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range tk.Model.Params() {
		names = append(names, p.Name)
	}
	// PyTorch's nn.Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear) names.
	if got := strings.Join(names, " "); got != "1.weight 1.bias 3.weight 3.bias 5.weight 5.bias" {
		t.Fatalf("params %s", got)
	}
	if out, _ := tk.Model.Cost(tk.Train.SampleShape()); out[0] != 4 {
		t.Fatalf("output %v, want the 4 classes", out)
	}
	if tk.AccumSteps != 2 {
		t.Fatalf("accumulation %d, want 32 / (8 × 2 ranks) = 2", tk.AccumSteps)
	}
	// The multistep schedule got the task's num_epochs: 0.1 for epochs 0-1, then 0.01.
	if tk.LRInterval != "epoch" || tk.LR.At(0.25) != 0.1 || tk.LR.At(0.75) != 0.01 {
		t.Fatalf("lr %v/%v interval %s", tk.LR.At(0.25), tk.LR.At(0.75), tk.LRInterval)
	}
	if len(tk.NewMeters()) != 2 {
		t.Fatal("want loss and accuracy meters")
	}
}

func TestBuildRefusesWhatCohortLacks(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		world       int
		want        error
		msg         string
	}{
		{"accumulation not a multiple of the world", "simulated_global_batchsize: 32\n", 3, config.ErrInvalid, "not a multiple"},
		{"clip grad norm", "clip_grad_norm: 1.0\n", 1, ErrUnsupported, "clip_grad_norm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, base+tc.extra, tc.world)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	_, err := build(t, strings.Replace(base, "batchsize_per_replica: 8}", "batchsize_per_replica: 8, transforms: [{name: random_crop}]}", 1), 1)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `"random_crop" is not supported`) {
		t.Fatalf("transforms: %v", err)
	}
	// A crop changes the sample shape: train and test must still agree.
	withTest := strings.Replace(base, "model:", "  test: {name: synthetic, num_samples: 16, num_classes: 4, crop_size: 4, batchsize_per_replica: 8}\nmodel:", 1)
	_, err = build(t, strings.Replace(withTest, "batchsize_per_replica: 8}", "batchsize_per_replica: 8, transforms: [{name: CenterCrop, size: 2}]}", 1), 1)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "dataset.test samples are [1 4 4] after their transforms, dataset.train's [1 2 2]") {
		t.Fatalf("train crop without test crop: %v", err)
	}
}

// paramNames lists a model's params and buffers as name[shape].
func paramNames(tk *Task) string {
	var names []string
	for _, p := range append(tk.Model.Params(), nn.Buffers(tk.Model)...) {
		names = append(names, fmt.Sprint(p.Name, p.Value.Shape))
	}
	return strings.Join(names, " ")
}

func TestBuildMLPWithBatchNormInClassyVisionOrder(t *testing.T) {
	cfg := strings.Replace(base, "{name: mlp, hidden_dims: [16, 8]}", "{name: mlp, hidden_dims: [16], use_batchnorm: true, first_batchnorm: true, dropout: 0.5}", 1)
	tk, err := build(t, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Flatten, BN(16 inputs), Linear, BN, Dropout, ReLU, Linear.
	want := "1.weight[16] 1.bias[16] 2.weight[16 16] 2.bias[16] 3.weight[16] 3.bias[16] 6.weight[4 16] 6.bias[4] " +
		"1.running_mean[16] 1.running_var[16] 1.num_batches_tracked[] 3.running_mean[16] 3.running_var[16] 3.num_batches_tracked[]"
	if got := paramNames(tk); got != want {
		t.Fatalf("params %s\nwant %s", got, want)
	}
}

func TestBuildClassyVisionTestConfigs(t *testing.T) {
	load := func(path string) *Task {
		t.Helper()
		cfg, err := config.Load([]string{path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tk, err := Build(cfg, Options{Seed: 1, BLAS: cpu.BLAS(), WorldSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	mlp := load("../../configs/classy_test_mlp.json")
	if got := strings.Join(mlp.TrainTransforms.Names(), ","); got != "Normalize" {
		t.Errorf("mlp transforms %s", got)
	}
	if out, _ := mlp.Model.Cost(mlp.InputShape()); out[0] != 1000 {
		t.Errorf("mlp outputs %v, want output_dim 1000", out)
	}
	res := load("../../configs/classy_test_resnet.json")
	got := paramNames(res)
	for _, want := range []string{"conv1.weight[64 3 7 7] bn1.weight[64]", "layer1.0.conv1.weight[64 64 1 1]", "layer1.0.conv2.weight[64 64 3 3]",
		"layer1.0.conv3.weight[256 64 1 1]", "layer1.0.downsample.0.weight[256 64 1 1]", "fc.weight[1000 256] fc.bias[1000]", "layer1.0.bn3.running_var[256]"} {
		if !strings.Contains(got, want) {
			t.Errorf("resnet params lack %s:\n%s", want, got)
		}
	}
	// zero_init_bn_residuals: the block's last BatchNorm starts at 0.
	for _, p := range res.Model.Params() {
		if p.Name == "layer1.0.bn3.weight" && slices.ContainsFunc(p.Value.Data, func(v float32) bool { return v != 0 }) {
			t.Error("layer1.0.bn3.weight is not zero-initialised")
		}
	}
}

func TestBuildResNetStages(t *testing.T) {
	cfg := strings.Replace(base, "{name: mlp, hidden_dims: [16, 8]}", `{name: resnet, num_blocks: [1, 2], small_input: true, basic_layer: true, init_planes: 8, reduction: 1,
  heads: [{name: fully_connected, num_classes: 4, fork_block: block1-1, in_plane: 16}]}`, 1)
	tk, err := build(t, strings.Replace(cfg, "crop_size: 4", "crop_size: 8", 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := paramNames(tk)
	for _, want := range []string{"conv1.weight[8 1 3 3]", "layer1.0.conv1.weight[8 8 3 3]", "layer2.0.conv1.weight[16 8 3 3]",
		"layer2.0.downsample.0.weight[16 8 1 1]", "layer2.1.conv2.weight[16 16 3 3]", "fc.weight[4 16]"} {
		if !strings.Contains(got, want) {
			t.Errorf("params lack %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "layer1.0.downsample") || strings.Contains(got, "layer2.1.downsample") {
		t.Errorf("identity blocks got a projection:\n%s", got)
	}
	if out, _ := tk.Model.Cost(tk.InputShape()); len(out) != 1 || out[0] != 4 {
		t.Errorf("outputs %v", out)
	}
}

// lenetConfig is a LeNet task on 28×28 synthetic samples.
const lenetConfig = `name: l
num_epochs: 1
dataset:
  train: {name: synthetic, num_samples: 16, num_classes: 10, crop_size: 28, batchsize_per_replica: 8}
model: {name: lenet}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.1}
`

func TestBuildLeNetWithPyTorchNames(t *testing.T) {
	tk, err := build(t, lenetConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range tk.Model.Params() {
		names = append(names, fmt.Sprint(p.Name, p.Value.Shape))
	}
	want := "0.weight[20 1 5 5] 0.bias[20] 3.weight[50 20 5 5] 3.bias[50] 7.weight[500 800] 7.bias[500] 9.weight[10 500] 9.bias[10]"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("params %s\nwant %s", got, want)
	}
	if _, err := build(t, strings.Replace(base, "{name: mlp, hidden_dims: [16, 8]}", "{name: lenet}", 1), 1); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("lenet on 1×4×4 samples: %v", err)
	}
}

// Every example config loads, and those that need no download build.
func TestExampleConfigsBuild(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*")
	if len(paths) < 5 {
		t.Fatalf("found only %v", paths)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := config.Load([]string{path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Dataset.Train.Name == "mnist" {
				return
			}
			if _, err := Build(cfg, Options{Seed: 1, BLAS: cpu.BLAS(), WorldSize: 1}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// LeNet's pool-then-ReLU order (buildLeNet) computes exactly what the
// published ReLU-then-pool order does: outputs and every gradient agree
// bit for bit, including windows whose values are all negative.
func TestLeNetPoolBeforeReLU(t *testing.T) {
	ours, err := build(t, lenetConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers := slices.Clone(ours.Model.Layers)
	for _, i := range []int{1, 4} { // conv, pool, relu → conv, relu, pool
		layers[i], layers[i+1] = layers[i+1], layers[i]
	}
	published := nn.NewSequential(layers...)
	rng := rand.New(rand.NewPCG(9, 9))
	x := tensor.New(8, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	dy := tensor.New(8, 10)
	for i := range dy.Data {
		dy.Data[i] = float32(rng.NormFloat64())
	}
	run := func(m *nn.Sequential) (out []float32, grads [][]float32) {
		for _, p := range m.Params() {
			p.Grad.Zero()
		}
		out = slices.Clone(m.Forward(x, nn.Pass{Train: true}).Data)
		m.Backward(dy)
		for _, p := range m.Params() {
			grads = append(grads, slices.Clone(p.Grad.Data))
		}
		return out, grads
	}
	outA, gradA := run(ours.Model)
	outB, gradB := run(published)
	if !slices.Equal(outA, outB) {
		t.Fatal("outputs differ")
	}
	for i := range gradA {
		if !slices.Equal(gradA[i], gradB[i]) {
			t.Fatalf("gradient of %s differs", ours.Model.Params()[i].Name)
		}
	}
}
