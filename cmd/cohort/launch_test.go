package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cohort/dist/natsserver"
	"cohort/engine/checkpoint"
)

// A long synthetic task: enough steps that a test can kill a rank mid-run.
const longConfig = `name: long
num_epochs: 200
dataset:
  train: {name: synthetic, num_samples: 8192, num_classes: 10, crop_size: 16, batchsize_per_replica: 32, seed: 1}
model: {name: mlp, hidden_dims: [256]}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
`

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// launcher starts `cohort launch` as a real process with extra env.
func launcher(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := cohortProcess(t, dir, append([]string{"launch"}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &out, &errb
}

func exitCodeOf(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		cmd.Process.Kill()
		t.Fatalf("%v still running after %v", cmd.Args, within)
	}
	return cmd.ProcessState.ExitCode()
}

func TestLaunchFourRanksTrainsAndOnlyRankZeroWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	out := filepath.Join(dir, "run")
	cmd, stdout, stderr := launcher(t, dir, nil, "--nproc-per-node", "4", "--",
		"train", "-c", cfg, "num_epochs=2", "--output-dir", out, "--log-freq", "0")
	if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout.String(), "[rank 0] cohort") || !strings.Contains(stdout.String(), "4 rank(s)") {
		t.Errorf("output lacks rank prefixes or world size:\n%s", stdout)
	}
	if strings.Contains(stdout.String(), "[rank 1] epoch") {
		t.Errorf("rank 1 printed phase summaries; only rank 0 logs:\n%s", stdout)
	}
	lines := readMetrics(t, filepath.Join(out, "metrics.jsonl"))
	if len(lines) != 4 || lines[0]["world_size"] != 4.0 || lines[0]["samples"] != 4096.0 {
		t.Fatalf("metrics %v", lines)
	}
}

func readMetrics(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	return lines
}

// workerPIDs finds the launcher's children and their COHORT_RANK.
func workerPIDs(t *testing.T, launcherPID int) map[int]int {
	t.Helper()
	ranks := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, …
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(launcherPID) {
			continue
		}
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if v, ok := strings.CutPrefix(string(kv), "COHORT_RANK="); ok {
				r, _ := strconv.Atoi(v)
				ranks[r] = pid
			}
		}
	}
	return ranks
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// waitFor polls cond every 10 ms up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill -9 of one worker: the launcher names it and every process is gone
// within 5 s.
func TestKillNineOfOneWorkerStopsTheGang(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "long.yaml", longConfig)
	cmd, stdout, stderr := launcher(t, dir, nil, "--nproc-per-node", "4", "--",
		"train", "-c", cfg, "--output-dir", filepath.Join(dir, "run"), "--log-freq", "20", "--threads", "1")
	waitFor(t, time.Minute, "training to start", func() bool { return strings.Contains(stdout.String(), "train step 20/") })
	pids := workerPIDs(t, cmd.Process.Pid)
	if len(pids) != 4 {
		t.Fatalf("found workers %v, want 4", pids)
	}
	killed := time.Now()
	syscall.Kill(pids[2], syscall.SIGKILL)
	code := exitCodeOf(t, cmd, 30*time.Second)
	took := time.Since(killed)
	for r, pid := range pids {
		if alive(pid) {
			t.Errorf("rank %d (pid %d) still alive after the launcher exited", r, pid)
		}
	}
	t.Logf("launcher exited %v after the kill, code %d", took, code)
	if took > 5*time.Second {
		t.Errorf("gang took %v to stop, promised 5 s", took)
	}
	if code != 128+9 || !strings.Contains(stderr.String(), "root cause: rank 2") || !strings.Contains(stderr.String(), "killed") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// Two one-rank "nodes": when node 1's worker dies, node 0's worker learns it
// from the run itself (heartbeats, abort, TCP), names rank 1 and exits 4.
func TestSurvivorDetectsLostPeerAndNamesIt(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "long.yaml", longConfig)
	port := freePort(t)
	env := []string{"COHORT_JOB_TOKEN=test-token-0123456789"}
	common := []string{"--nnodes", "2", "--nproc-per-node", "1", "--rdzv-id", "lost", "--rdzv-timeout", "1m"}
	node0, out0, err0 := launcher(t, dir, env, append(common, "--node-rank", "0", "--rdzv-port", strconv.Itoa(port), "--",
		"train", "-c", cfg, "--output-dir", filepath.Join(dir, "run"), "--log-freq", "20", "--threads", "1")...)
	node1, _, _ := launcher(t, dir, env, append(common, "--node-rank", "1", "--rdzv-endpoint", fmt.Sprintf("nats://127.0.0.1:%d", port), "--",
		"train", "-c", cfg, "--log-freq", "20", "--threads", "1")...)
	waitFor(t, time.Minute, "training to start", func() bool { return strings.Contains(out0.String(), "train step 20/") })
	pids := workerPIDs(t, node1.Process.Pid)
	killed := time.Now()
	syscall.Kill(pids[1], syscall.SIGKILL)
	code := exitCodeOf(t, node0, 30*time.Second)
	t.Logf("node 0 exited %v after rank 1 was killed, code %d", time.Since(killed), code)
	if time.Since(killed) > 5*time.Second {
		t.Errorf("survivor took %v, promised 5 s", time.Since(killed))
	}
	if code != ExitPeerLost || !strings.Contains(err0.String(), "rank 1") {
		t.Fatalf("node 0 exit %d, stderr:\n%s", code, err0)
	}
	exitCodeOf(t, node1, 10*time.Second)
}

func TestRendezvousTimeoutNamesMissingRanks(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	cmd, _, stderr := launcher(t, dir, []string{"COHORT_JOB_TOKEN=test-token-0123456789"},
		"--nnodes", "2", "--node-rank", "0", "--nproc-per-node", "2", "--rdzv-id", "alone",
		"--rdzv-port", strconv.Itoa(freePort(t)), "--rdzv-timeout", "1s", "--", "train", "-c", cfg)
	code := exitCodeOf(t, cmd, time.Minute)
	if code != ExitRendezvous || !strings.Contains(stderr.String(), "2/4 joined") || !strings.Contains(stderr.String(), "missing rank") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestWrongTokenCannotJoin(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{Token: "the-right-token-123"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	cmd, _, stderr := launcher(t, dir, []string{"COHORT_JOB_TOKEN=a-wrong-token-4567"},
		"--nproc-per-node", "2", "--rdzv-endpoint", srv.URL(), "--rdzv-timeout", "5s", "--", "train", "-c", cfg)
	code := exitCodeOf(t, cmd, time.Minute)
	if code != ExitRendezvous || !strings.Contains(stderr.String(), "rejected the token") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// Two jobs on one NATS server (embedded here; the external nats-server is
// covered by dist/rendezvous) each form their own world.
func TestTwoJobsOnOneServerDoNotMix(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{Token: "shared-token-89abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	env := []string{"COHORT_JOB_TOKEN=shared-token-89abcdef"}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i, n := range []string{"2", "3"} {
		cmd, out, _ := launcher(t, dir, env, "--nproc-per-node", n, "--rdzv-endpoint", srv.URL(), "--rdzv-id", fmt.Sprintf("job%d", i), "--",
			"train", "-c", cfg, "num_epochs=1", "--output-dir", filepath.Join(dir, fmt.Sprint("run", i)), "--log-freq", "0")
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
			t.Fatalf("job %d exit %d:\n%s", i, code, outs[i])
		}
	}
	for i, world := range []float64{2, 3} {
		lines := readMetrics(t, filepath.Join(dir, fmt.Sprint("run", i), "metrics.jsonl"))
		if lines[0]["world_size"] != world {
			t.Errorf("job %d trained with world size %v, want %v", i, lines[0]["world_size"], world)
		}
	}
}

// Data parallelism is a bigger batch: 2 ranks × 32 must reach the weights of
// 1 rank × 64 after 50 steps.
func TestTwoRanksEqualOneRankWithTwiceTheBatch(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "eq.yaml", `name: eq
num_epochs: 1
dataset:
  train: {name: synthetic, num_samples: 3200, num_classes: 10, crop_size: 12, seed: 3, batchsize_per_replica: 64}
model: {name: mlp, hidden_dims: [64, 32]}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0001}
`)
	one := filepath.Join(dir, "one")
	if code, _, stderr := cohort("train", "-c", cfg, "--output-dir", one, "--threads", "1"); code != 0 {
		t.Fatalf("1 rank: %s", stderr)
	}
	two := filepath.Join(dir, "two")
	cmd, stdout, stderr := launcher(t, dir, nil, "--nproc-per-node", "2", "--",
		"train", "-c", cfg, "dataset.train.batchsize_per_replica=32", "--output-dir", two, "--threads", "1")
	if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
		t.Fatalf("2 ranks: exit %d\n%s\n%s", code, stdout, stderr)
	}
	a := lastCheckpoint(t, filepath.Join(one, "checkpoints"))
	b := lastCheckpoint(t, filepath.Join(two, "checkpoints"))
	if a.Meta.NumUpdates != 50 || b.Meta.NumUpdates != 50 {
		t.Fatalf("updates %d and %d, want 50", a.Meta.NumUpdates, b.Meta.NumUpdates)
	}
	worst, _ := largestModelDifference(a, b)
	t.Logf("largest relative difference of a weight tensor: %.3g", worst)
	if worst > 1e-5 {
		t.Fatalf("relative difference %.3g > 1e-5", worst)
	}
}

// largestModelDifference is the largest relative L2 difference between the
// model tensors (weights and buffers) of two checkpoints, and its tensor.
func largestModelDifference(a, b *checkpoint.Checkpoint) (float64, string) {
	worst, which := 0.0, ""
	for name, ta := range a.Tensors {
		if !strings.HasPrefix(name, "model.") {
			continue
		}
		var diff, norm float64
		for i, v := range ta.Data {
			d := float64(v - b.Tensors[name].Data[i])
			diff += d * d
			norm += float64(v) * float64(v)
		}
		if rel := math.Sqrt(diff / max(norm, 1e-30)); rel > worst {
			worst, which = rel, name
		}
	}
	return worst, which
}

// SIGUSR1 to the launcher (SLURM's warning) → every rank stops at the same
// step, rank 0 checkpoints mid-epoch, exit 5; the resumed run ends with the
// uninterrupted run's weights.
func TestPreemptionCheckpointsAndResumesExactly(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "pre.yaml", `name: pre
num_epochs: 3
dataset:
  train: {name: synthetic, num_samples: 8192, num_classes: 10, crop_size: 16, batchsize_per_replica: 16, seed: 1}
  test: {name: synthetic, num_samples: 512, num_classes: 10, crop_size: 16, batchsize_per_replica: 256, seed: 1}
model: {name: mlp, hidden_dims: [256], dropout: 0.1}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
meters: {accuracy: {topk: [1]}}
`)
	args := []string{"--nproc-per-node", "2", "--", "train", "-c", cfg, "--log-freq", "50", "--threads", "1", "--seed", "5"}
	full := filepath.Join(dir, "full")
	cmd, stdout, stderr := launcher(t, dir, nil, append(args, "--output-dir", full)...)
	if code := exitCodeOf(t, cmd, 3*time.Minute); code != 0 {
		t.Fatalf("uninterrupted: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cut := filepath.Join(dir, "cut")
	cmd, stdout, stderr = launcher(t, dir, nil, append(args, "--output-dir", cut)...)
	waitFor(t, 2*time.Minute, "epoch 2", func() bool { return strings.Contains(stdout.String(), "epoch 2/3 train step 100/") })
	cmd.Process.Signal(syscall.SIGUSR1)
	if code := exitCodeOf(t, cmd, time.Minute); code != ExitPreempted {
		t.Fatalf("preempted run: exit %d, want %d\n%s\n%s", code, ExitPreempted, stdout, stderr)
	}
	ck := lastCheckpoint(t, filepath.Join(cut, "checkpoints"))
	if ck.Meta.StepInPhase == 0 {
		t.Fatalf("preemption checkpoint at a phase boundary (phase %d), want mid-epoch\n%s\n%s", ck.Meta.PhaseIndex, stdout, stderr)
	}
	t.Logf("preempted at phase %d step %d", ck.Meta.PhaseIndex, ck.Meta.StepInPhase)
	cmd, stdout, stderr = launcher(t, dir, nil, append(args, "--output-dir", cut, "--resume", "auto")...)
	if code := exitCodeOf(t, cmd, 3*time.Minute); code != 0 {
		t.Fatalf("resumed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	a := lastCheckpoint(t, filepath.Join(full, "checkpoints"))
	b := lastCheckpoint(t, filepath.Join(cut, "checkpoints"))
	if a.Meta.SHA256 != b.Meta.SHA256 {
		t.Fatalf("final weights differ: %s vs %s", a.Meta.SHA256, b.Meta.SHA256)
	}
}

// --max-restarts: a worker killed after the first checkpoint makes the
// launcher restart the gang from it, and the job still ends with the
// weights of an uninterrupted run.
func TestMaxRestartsResumesTheGang(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	args := func(out string) []string {
		return []string{"--nproc-per-node", "2", "--max-restarts", "1", "--", "train", "-c", cfg, "num_epochs=3",
			"model.dropout=0", "dataset.train.num_samples=20000", "--output-dir", out, "--log-freq", "0", "--threads", "1"}
	}
	full := filepath.Join(dir, "full")
	cmd, stdout, stderr := launcher(t, dir, nil, args(full)...)
	if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
		t.Fatalf("uninterrupted: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cut := filepath.Join(dir, "cut")
	cmd, stdout, stderr = launcher(t, dir, nil, args(cut)...)
	waitForCheckpoint(t, filepath.Join(cut, "checkpoints"), 1)
	pids := workerPIDs(t, cmd.Process.Pid)
	syscall.Kill(pids[1], syscall.SIGKILL)
	if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
		t.Fatalf("restarted job: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr.String(), "restarting the gang") || !strings.Contains(stdout.String(), "resumed from") {
		t.Fatalf("no restart seen:\n%s\n%s", stdout, stderr)
	}
	a := lastCheckpoint(t, filepath.Join(full, "checkpoints")).Meta.SHA256
	b := lastCheckpoint(t, filepath.Join(cut, "checkpoints")).Meta.SHA256
	if a != b {
		t.Fatalf("final weights differ after a restart")
	}
}
