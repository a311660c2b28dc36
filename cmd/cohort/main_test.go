package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cohort/engine/checkpoint"
)

// The test binary doubles as the cohort binary: with COHORT_TEST_MAIN=1
// it runs the CLI instead of the tests, so integration tests start real
// processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("COHORT_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], streams{Out: os.Stdout, Err: os.Stderr}))
	}
	os.Exit(m.Run())
}

// cohort runs the CLI in-process and returns its exit code and output.
func cohort(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, streams{Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// cohortProcess starts the CLI as a real child process.
func cohortProcess(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COHORT_TEST_MAIN=1")
	return cmd
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const synthConfig = `name: synth
num_epochs: 4
dataset:
  train: {name: synthetic, num_samples: 4096, num_classes: 10, crop_size: 12, batchsize_per_replica: 32, seed: 1}
  test: {name: synthetic, num_samples: 512, num_classes: 10, crop_size: 12, batchsize_per_replica: 256, seed: 1}
model: {name: mlp, hidden_dims: [128, 64], dropout: 0.1}
loss: {name: CrossEntropyLoss}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
meters: {accuracy: {topk: [1, 5]}}
`

func TestUsageAndConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", synthConfig)
	unknown := writeFile(t, dir, "unknown.yaml", "name: x\nnum_epochs: 1\noptimizer:\n  lrr: 0.1\n")
	fractional := writeFile(t, dir, "frac.yaml", "name: x\nnum_epochs: 1.5\n")
	wrongType := writeFile(t, dir, "type.yaml", "name: x\nnum_epochs: many\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"config", "-c", unknown}, "unknown.yaml:4"},
		{"fractional int", []string{"config", "-c", fractional}, "frac.yaml:2"},
		{"wrong type", []string{"config", "-c", wrongType}, "type.yaml:2"},
		{"missing file", []string{"config", "-c", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"override of a missing key", []string{"config", "-c", good, "optimizer.lrr=1"}, "optimizer.lrr"},
		{"bad flag", []string{"train", "--no-such-flag"}, "no-such-flag"},
		{"cuda on a cpu build", []string{"train", "-c", good, "--device", "cuda"}, "make cuda"},
		{"tf32 on the cpu", []string{"train", "-c", good, "--tf32"}, "--tf32 applies to GPU training"},
		{"nccl on the cpu", []string{"train", "-c", good, "--comm", "nccl"}, "--comm nccl applies to GPU training"},
		{"missing mnist", []string{"train", "-c", "../../configs/mnist_mlp.yaml", "--data-root", dir}, "make data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cohort(tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tc.want)
			}
		})
	}
}

func TestConfigPrintsResolvedYAML(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", synthConfig)
	code, out, stderr := cohort("config", "-c", good, "optimizer.lr=0.2", "+clip_grad_norm=1.0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"0.2", "clip_grad_norm: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("resolved config lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionNamesBLASAndCUDA(t *testing.T) {
	code, out, _ := cohort("version")
	if code != 0 || !strings.Contains(out, "blas: ") || !strings.Contains(out, "cuda: not built") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// The seed's whole path: config → task → hooks → train, with metrics and
// checkpoints on disk.
func TestTrainWritesMetricsAndCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	out := filepath.Join(dir, "run")
	code, stdout, stderr := cohort("train", "-c", cfg, "num_epochs=2", "--output-dir", out, "--threads", "1", "--keep-checkpoints", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"parameters", "epoch 2/2 test: loss", "accuracy", "samples/s", "checkpoint: wrote"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	metrics, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(metrics, []byte("\n")); n != 4 {
		t.Errorf("metrics.jsonl has %d lines, want 2 train + 2 test:\n%s", n, metrics)
	}
	jsons, _ := filepath.Glob(filepath.Join(out, "checkpoints", "*.json"))
	if len(jsons) != 1 {
		t.Errorf("keep 1 left %v", jsons)
	}
}

// Killed with SIGKILL after epoch 2 of 4 and resumed with --resume auto,
// the run must end with the very weights of an uninterrupted run.
func TestKilledRunResumesBitIdentical(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	common := []string{"train", "-c", cfg, "--threads", "1", "--log-freq", "0", "--seed", "11"}

	full := filepath.Join(dir, "full")
	if code, _, stderr := cohort(append(common, "--output-dir", full)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}

	cut := filepath.Join(dir, "cut")
	child := cohortProcess(t, dir, append(common, "--output-dir", cut)...)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killedAfter := waitForCheckpoint(t, filepath.Join(cut, "checkpoints"), 2)
	child.Process.Signal(syscall.SIGKILL)
	err := child.Wait()
	if ws, ok := child.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed (%v): it finished before the kill, make the task bigger", err)
	}
	t.Logf("killed after the checkpoint of epoch %d appeared", killedAfter)

	code, stdout, stderr := cohort(append(common, "--output-dir", cut, "--resume", "auto")...)
	if code != 0 || !strings.Contains(stdout, "resumed from") {
		t.Fatalf("resume: exit %d: %s\n%s", code, stdout, stderr)
	}
	a := lastCheckpoint(t, filepath.Join(full, "checkpoints"))
	b := lastCheckpoint(t, filepath.Join(cut, "checkpoints"))
	if a.Meta.NumUpdates != b.Meta.NumUpdates {
		t.Fatalf("updates %d vs %d", a.Meta.NumUpdates, b.Meta.NumUpdates)
	}
	for name, ta := range a.Tensors {
		tb, ok := b.Tensors[name]
		if !ok || !slices.Equal(ta.Data, tb.Data) {
			t.Fatalf("tensor %s differs between the uninterrupted and the resumed run", name)
		}
	}
}

// waitForCheckpoint polls until a checkpoint of at least epoch epochs exists.
func waitForCheckpoint(t *testing.T, dir string, epoch int) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ck, _, err := checkpoint.Latest(dir); err == nil && ck.Meta.Epoch >= epoch {
			return ck.Meta.Epoch
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of epoch %d in %s after 60 s", epoch, dir)
	return 0
}

func lastCheckpoint(t *testing.T, dir string) *checkpoint.Checkpoint {
	t.Helper()
	ck, _, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}
