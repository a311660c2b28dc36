package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A small ResNet on ClassyVision's synthetic_image with augmentation.
const resnetConfig = `name: res
num_epochs: 2
dataset:
  train:
    name: synthetic_image
    num_samples: 512
    crop_size: 8
    seed: 3
    batchsize_per_replica: 16
    num_workers: 2
    transforms:
      - {name: RandomCrop, size: 8, padding: 1}
      - {name: RandomHorizontalFlip}
      - {name: Normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
  test:
    name: synthetic_image
    num_samples: 128
    crop_size: 8
    seed: 4
    batchsize_per_replica: 64
    transforms: [{name: Normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}]
model:
  name: resnet
  num_blocks: [1, 1]
  small_input: true
  basic_layer: true
  init_planes: 8
  reduction: 1
  heads: [{name: fully_connected, unique_id: default_head, num_classes: 2, fork_block: block1-0, in_plane: 16}]
loss: {name: CrossEntropyLoss}
optimizer: {name: sgd, lr: 0.02, momentum: 0.9, weight_decay: 0.0001}
meters: {accuracy: {topk: [1]}}
`

// Two ranks with synchronised BatchNorm train the ResNet as one rank with
// twice the batch does (same global batches, same statistics, same
// augmentations); without the synchronisation each rank normalises by its
// own half batch and the weights drift apart. Either way it learns.
func TestResNetTwoRanksSyncBatchNormEqualsOneRank(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "res.yaml", resnetConfig)
	one := filepath.Join(dir, "one")
	if code, _, stderr := cohort("train", "-c", cfg, "--output-dir", one, "--threads", "1"); code != 0 {
		t.Fatalf("1 rank: %s", stderr)
	}
	twoRanks := func(name string, overrides ...string) string {
		out := filepath.Join(dir, name)
		args := append([]string{"--nproc-per-node", "2", "--", "train", "-c", cfg}, overrides...)
		args = append(args, "dataset.train.batchsize_per_replica=8", "--output-dir", out, "--threads", "1")
		cmd, stdout, stderr := launcher(t, dir, nil, args...)
		if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
			t.Fatalf("2 ranks (%s): exit %d\n%s\n%s", name, code, stdout, stderr)
		}
		return out
	}
	synced := twoRanks("synced", "+batch_norm_sync_mode=pytorch")
	local := twoRanks("local")

	ref := lastCheckpoint(t, filepath.Join(one, "checkpoints"))
	syncDiff, syncWorst := largestModelDifference(ref, lastCheckpoint(t, filepath.Join(synced, "checkpoints")))
	localDiff, localWorst := largestModelDifference(ref, lastCheckpoint(t, filepath.Join(local, "checkpoints")))
	t.Logf("largest relative difference to 1 rank × 16: synced %.3g (%s), per-rank statistics %.3g (%s)", syncDiff, syncWorst, localDiff, localWorst)
	if syncDiff > 1e-4 {
		t.Errorf("synchronised BatchNorm: relative difference %.3g in %s > 1e-4", syncDiff, syncWorst)
	}
	if localDiff < 100*syncDiff {
		t.Errorf("per-rank BatchNorm statistics gave nearly the synchronised weights (%.3g vs %.3g): is the sync doing anything?", localDiff, syncDiff)
	}
	for _, run := range []string{one, synced, local} {
		m := readMetrics(t, filepath.Join(run, "metrics.jsonl"))
		first, last := m[0], m[len(m)-1]
		if first["phase"] != "train" || last["phase"] != "test" || m[2]["loss"].(float64) >= first["loss"].(float64) {
			t.Errorf("%s: train loss did not fall: %v", run, m)
		}
		if acc := last["accuracy"].(float64); acc < 0.9 {
			t.Errorf("%s: test accuracy %.3f, want ≥ 0.9 (chance is 0.5)", run, acc)
		}
	}
}

// ClassyVision's own test task configs (test/generic/config_utils.py) run
// as they are; the MLP one also with use_batchnorm.
func TestClassyVisionTestConfigsRunUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"mlp", []string{"-c", "../../configs/classy_test_mlp.json"}},
		// 10 samples in batches of 3 would leave BatchNorm a batch of one.
		{"mlp batchnorm", []string{"-c", "../../configs/classy_test_mlp.json", "+model.use_batchnorm=true", "+model.first_batchnorm=true", "dataset.train.batchsize_per_replica=2"}},
		{"resnet", []string{"-c", "../../configs/classy_test_resnet.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"train"}, tc.args...)
			code, stdout, stderr := cohort(append(args, "--output-dir", out, "--threads", "1")...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "test: loss") {
				t.Errorf("no test phase in the output:\n%s", stdout)
			}
		})
	}
	code, _, stderr := cohort("train", "-c", "../../configs/classy_test_mlp.json", "+model.use_batchnorm=true", "--output-dir", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "10 samples over 1 rank(s) in batches of 3 leave each rank a last batch of 1 sample, on which BatchNorm cannot train") {
		t.Errorf("BatchNorm with a 1-sample batch: exit %d, %s", code, stderr)
	}
}
