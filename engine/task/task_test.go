package task

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"cohort/engine/config"
	"cohort/engine/cpu"
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
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "random_crop") {
		t.Fatalf("transforms: %v", err)
	}
}

func TestBuildLeNetWithPyTorchNames(t *testing.T) {
	tk, err := build(t, `name: l
num_epochs: 1
dataset:
  train: {name: synthetic, num_samples: 16, num_classes: 10, crop_size: 28, batchsize_per_replica: 8}
model: {name: lenet}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.1}
`, 1)
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
