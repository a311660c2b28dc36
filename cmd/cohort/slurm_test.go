package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run real srun steps on the local SLURM that
// scripts/slurm-local-start.sh starts (.ci/run does); they skip without one.
func needSLURM(t *testing.T) {
	t.Helper()
	if err := exec.Command("sinfo", "-h").Run(); err != nil {
		t.Skip("no SLURM cluster here (run scripts/slurm-local-start.sh as root)")
	}
}

// srun runs `srun ARGS` with this test binary standing in for cohort.
func srun(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("srun", append([]string{"-I10"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COHORT_TEST_MAIN=1")
	return cmd
}

func mnistArgs(out string) []string {
	return []string{"train", "-c", "../../configs/mnist_mlp.yaml", "num_epochs=1", "+dataset.train.num_samples=4000",
		"+dataset.test.num_samples=2000", "dataset.train.batchsize_per_replica=64", "--log-freq", "0", "--threads", "1",
		"--output-dir", out}
}

// srun -n 2 cohort train, srun -n 1 cohort launch --nproc-per-node 2 and a
// plain cohort launch train to the very same weights on shortened MNIST.
func TestSrunBothStylesMatchLaunch(t *testing.T) {
	needSLURM(t)
	dir, _ := os.Getwd()
	tmp := t.TempDir()
	runs := map[string]*exec.Cmd{
		"srun train":  srun(t, dir, append([]string{"-n", "2", os.Args[0]}, mnistArgs(filepath.Join(tmp, "a"))...)...),
		"srun launch": srun(t, dir, append([]string{"-n", "1", os.Args[0], "launch", "--nproc-per-node", "2", "--"}, mnistArgs(filepath.Join(tmp, "b"))...)...),
		"launch":      cohortProcess(t, dir, append([]string{"launch", "--nproc-per-node", "2", "--"}, mnistArgs(filepath.Join(tmp, "c"))...)...),
	}
	for name, cmd := range runs {
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		if !strings.Contains(string(out), "process group: 2 ranks joined") {
			t.Fatalf("%s did not form a 2-rank group:\n%s", name, out)
		}
	}
	sums := map[string]string{}
	for name, sub := range map[string]string{"srun train": "a", "srun launch": "b", "launch": "c"} {
		sums[name] = lastCheckpoint(t, filepath.Join(tmp, sub, "checkpoints")).Meta.SHA256
	}
	if sums["srun train"] != sums["launch"] || sums["srun launch"] != sums["launch"] {
		t.Fatalf("final weights differ: %v", sums)
	}
	acc := readMetrics(t, filepath.Join(tmp, "a", "metrics.jsonl"))
	t.Logf("all three runs: test accuracy %.4f, weights sha256 %s", acc[len(acc)-1]["accuracy"], sums["launch"])
}

// scancel --signal=USR1 mid-epoch: checkpoint, exit 5; the resumed step ends
// with the uninterrupted run's weights.
func TestScancelUSR1CheckpointsAndResumes(t *testing.T) {
	needSLURM(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "pre.yaml", `name: pre
num_epochs: 3
dataset:
  train: {name: synthetic, num_samples: 8192, num_classes: 10, crop_size: 16, batchsize_per_replica: 16, seed: 1}
model: {name: mlp, hidden_dims: [256]}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
`)
	train := func(out string, extra ...string) []string {
		return append([]string{"-n", "2", os.Args[0], "train", "-c", cfg, "--log-freq", "50", "--threads", "1", "--output-dir", out}, extra...)
	}
	if out, err := srun(t, dir, train(filepath.Join(dir, "full"))...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted: %v\n%s", err, out)
	}
	name := fmt.Sprintf("cohort-usr1-%d", os.Getpid())
	cmd := srun(t, dir, append([]string{"-J", name}, train(filepath.Join(dir, "cut"))...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("scancel", "-n", name).Run() })
	waitFor(t, time.Minute, "epoch 2", func() bool { return strings.Contains(out.String(), "epoch 2/3 train step 100/") })
	if b, err := exec.Command("scancel", "--signal=USR1", "-n", name).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, b)
	}
	if code := exitCodeOf(t, cmd, time.Minute); code != ExitPreempted {
		t.Fatalf("srun exit %d, want %d:\n%s", code, ExitPreempted, out.String())
	}
	ck := lastCheckpoint(t, filepath.Join(dir, "cut", "checkpoints"))
	t.Logf("preempted at phase %d step %d", ck.Meta.PhaseIndex, ck.Meta.StepInPhase)
	if ck.Meta.StepInPhase == 0 {
		t.Fatal("no mid-epoch checkpoint")
	}
	if b, err := srun(t, dir, train(filepath.Join(dir, "cut"), "--resume", "auto")...).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	a := lastCheckpoint(t, filepath.Join(dir, "full", "checkpoints")).Meta.SHA256
	b := lastCheckpoint(t, filepath.Join(dir, "cut", "checkpoints")).Meta.SHA256
	if a != b {
		t.Fatalf("final weights differ: %s vs %s", a, b)
	}
}

// srun -K1 with task 1 killed mid-training: the step ends and the output
// names rank 1.
func TestSrunKillOnBadExitNamesTheFailingRank(t *testing.T) {
	needSLURM(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "long.yaml", longConfig)
	script := fmt.Sprintf(`if [ "$SLURM_PROCID" = 1 ]; then exec timeout -s KILL 2 %[1]s "$@"; else exec %[1]s "$@"; fi`, os.Args[0])
	cmd := srun(t, dir, "-K1", "-n", "2", "bash", "-c", script, "cohort", "train", "-c", cfg, "--log-freq", "50", "--threads", "1",
		"--output-dir", filepath.Join(dir, "run"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := exitCodeOf(t, cmd, time.Minute)
	t.Logf("srun exit %d after %v:\n%s", code, time.Since(start), out.String())
	if code == 0 || !strings.Contains(out.String(), "rank 1") {
		t.Fatalf("want a failed step naming rank 1")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("srun itself was killed")
	}
}
