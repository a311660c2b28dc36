package main

// Chaos tests: every failure the issue "prove that no failure hangs,
// corrupts or lets a stranger in" lists, against real processes. The timed
// bounds (5 s to stop a gang, 10 s to detect a stopped rank, 2 s for
// orphans) are the product's failure-detection promises, not performance
// measurements. scripts/chaos/run.sh runs the same tests with more trials
// (COHORT_CHAOS_TRIALS) and the long faults (COHORT_CHAOS_LONG=1), and
// prints the rows they append to COHORT_CHAOS_REPORT as a table.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cohort/dist/collective"
	"cohort/dist/natsserver"
	"cohort/dist/rendezvous"
	"cohort/engine/checkpoint"
)

// chaosConfig trains for about a second on 4 ranks here (64 steps an
// epoch, a checkpoint each epoch), long enough to be hit at any moment.
const chaosConfig = `name: chaos
num_epochs: 12
dataset:
  train: {name: synthetic, num_samples: 8192, num_classes: 10, crop_size: 16, batchsize_per_replica: 32, seed: 2}
model: {name: mlp, hidden_dims: [256]}
loss: {name: cross_entropy}
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
`

const chaosToken = "chaos-token-0123456789abcdef"

// Failure-detection promises the tests hold Cohort to (the bounds).
const (
	gangStopBound  = 5 * time.Second  // kill -9 of a rank → every process gone
	stallBound     = 10 * time.Second // a stopped (hung) rank → named by the others
	orphanBound    = 2 * time.Second  // launcher SIGKILLed → no worker left
	cleanFailBound = 30 * time.Second // an I/O failure → every rank exited
	// NATS gone → every rank exited: the 2 s liveness window, then each
	// rank's abort waits out its 2 s flush to the dead server.
	natsGoneBound = 10 * time.Second
)

const (
	// resumeRunLimit bounds a whole training run of these tests.
	resumeRunLimit = 2 * time.Minute
	// outageDownShort is a NATS outage inside the 2 s liveness window.
	outageDownShort = 500 * time.Millisecond
)

// chaosTrials is how many kill -9 trials to run: COHORT_CHAOS_TRIALS, else
// 3, or 1 with -short.
func chaosTrials(t *testing.T) int {
	if s := os.Getenv("COHORT_CHAOS_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("COHORT_CHAOS_TRIALS=%q: want a positive integer", s)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return 3
}

// chaosRand is seeded from COHORT_CHAOS_SEED when set, so a failed trial
// can be replayed; the seed is logged either way.
func chaosRand(t *testing.T) *mrand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COHORT_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COHORT_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("chaos seed %d (replay with COHORT_CHAOS_SEED=%d)", seed, seed)
	return mrand.New(mrand.NewPCG(seed, seed))
}

// chaosReport logs one row of the fault table and appends it, tab
// separated, to the file COHORT_CHAOS_REPORT names, if any.
func chaosReport(t *testing.T, fault, outcome string, times []time.Duration, code int) {
	t.Helper()
	if t.Failed() {
		outcome = "FAIL: " + outcome
	}
	row := fmt.Sprintf("%s\t-\t%s\t-\t-\t%d", fault, outcome, code)
	if len(times) > 0 {
		slowest, median := durationStats(times)
		row = fmt.Sprintf("%s\t%d\t%s\t%v\t%v\t%d", fault, len(times), outcome, slowest, median, code)
	}
	t.Logf("chaos: %s", strings.ReplaceAll(row, "\t", " | "))
	path := os.Getenv("COHORT_CHAOS_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("chaos report: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, row); err != nil {
		t.Errorf("chaos report %s: %v", path, err)
	}
}

// durationStats is the maximum and the median of ds, rounded to the ms.
func durationStats(ds []time.Duration) (slowest, median time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)-1].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond)
}

// running reports whether pid is a live process; a zombie (killed, not yet
// reaped by whoever inherited it) counts as gone.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// fourWorkers waits until the launcher has spawned its 4 ranks.
func fourWorkers(t *testing.T, launcherPID int) map[int]int {
	t.Helper()
	var pids map[int]int
	waitFor(t, 30*time.Second, "4 workers", func() bool {
		pids = workerPIDs(t, launcherPID)
		return len(pids) == 4
	})
	return pids
}

// listenPorts lists the TCP ports pid listens on (from /proc: its socket
// inodes matched against the LISTEN rows of its network namespace).
func listenPorts(pid int) []int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	table, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	var ports []int
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			ports = append(ports, int(p))
		}
	}
	return ports
}

// watchCreates reports the names of files created in dir (inotify), so a
// test can strike while a checkpoint is being written.
func watchCreates(t *testing.T, dir string) <-chan string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE); err != nil {
		syscall.Close(fd)
		t.Fatalf("inotify watch %s: %v", dir, err)
	}
	// Non-blocking, so the runtime poller owns it and Close ends the Read.
	f := os.NewFile(uintptr(fd), "inotify")
	t.Cleanup(func() { f.Close() })
	names := make(chan string, 256)
	go func() {
		defer close(names)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+nameLen]
				select {
				case names <- string(bytes.TrimRight(name, "\x00")):
				default: // nobody listening any more
				}
				off += syscall.SizeofInotifyEvent + nameLen
			}
		}
	}()
	return names
}

// checkpointsAllLoad asserts that every committed checkpoint in dir
// verifies: Latest skips none and Load accepts each .json.
func checkpointsAllLoad(t *testing.T, dir string) int {
	t.Helper()
	_, skipped, err := checkpoint.Latest(dir)
	if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("checkpoint.Latest(%s): %v", dir, err)
	}
	if len(skipped) > 0 {
		t.Errorf("checkpoint.Latest skipped %v", skipped)
	}
	records, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, r := range records {
		if _, err := checkpoint.Load(r); err != nil {
			t.Errorf("checkpoint.Load: %v", err)
		}
	}
	return len(records)
}

// referenceRun trains cfg uninterrupted on 4 ranks and returns its final
// checkpoint, the weights every disturbed run must end with.
func referenceRun(t *testing.T, dir, cfg string, extra ...string) *checkpoint.Checkpoint {
	t.Helper()
	out := filepath.Join(dir, "reference")
	args := append([]string{"--nproc-per-node", "4", "--", "train", "-c", cfg, "--output-dir", out}, extra...)
	cmd, stdout, stderr := launcher(t, dir, nil, args...)
	if code := exitCodeOf(t, cmd, resumeRunLimit); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	return lastCheckpoint(t, filepath.Join(out, "checkpoints"))
}

// sameFinalWeights asserts that the run in out ended where ref did.
func sameFinalWeights(t *testing.T, ref *checkpoint.Checkpoint, out string) {
	t.Helper()
	got := lastCheckpoint(t, filepath.Join(out, "checkpoints"))
	if got.Meta.NumUpdates != ref.Meta.NumUpdates || got.Meta.SHA256 != ref.Meta.SHA256 {
		t.Errorf("final checkpoint: %d updates sha256 %s; the uninterrupted run: %d updates sha256 %s",
			got.Meta.NumUpdates, got.Meta.SHA256, ref.Meta.NumUpdates, ref.Meta.SHA256)
	}
}

// Moments at which a kill -9 strikes.
const (
	atRendezvous = "rendezvous"
	atStep       = "step"
	atAllReduce  = "all-reduce"
	atCheckpoint = "checkpoint write"
)

// killTrial is one kill -9 and what followed.
type killTrial struct {
	moment string
	victim int
	took   time.Duration // from the kill to the launcher's exit
}

// kill -9 of one of 4 ranks at a random moment: every process is gone
// within 5 s, the launcher exits 137 naming the rank, every checkpoint on
// disk verifies, and --resume auto ends with the uninterrupted run's weights.
func TestChaosKillNineAtRandomMoments(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "chaos.yaml", chaosConfig)
	common := []string{"train", "-c", cfg, "--log-freq", "10", "--threads", "1", "--seed", "3"}
	ref := referenceRun(t, dir, cfg, common[3:]...)
	rng := chaosRand(t)
	moments := []string{atRendezvous, atStep, atAllReduce, atCheckpoint}
	first := rng.IntN(len(moments))
	var times []time.Duration
	trials, failed := chaosTrials(t), 0
	for i := range trials {
		moment := moments[(first+i)%len(moments)]
		ok := t.Run(fmt.Sprintf("trial %d at %s", i, moment), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprint("trial", i))
			tr := killOnce(t, dir, out, moment, rng, common)
			times = append(times, tr.took)
			t.Logf("kill -9 of rank %d at %s: gang gone in %v", tr.victim, tr.moment, tr.took.Round(time.Millisecond))
			cmd, stdout, stderr := launcher(t, dir, nil, append(append([]string{"--nproc-per-node", "4", "--"}, common...),
				"--output-dir", out, "--resume", "auto")...)
			if code := exitCodeOf(t, cmd, resumeRunLimit); code != 0 {
				t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
			}
			sameFinalWeights(t, ref, out)
		})
		if !ok {
			failed++
		}
	}
	slowest, median := durationStats(times)
	t.Logf("kill -9, %d trials: every process gone after at most %v (median %v)", len(times), slowest, median)
	outcome := "gang stopped, 137 naming the rank, every checkpoint loads, resume = uninterrupted weights"
	if failed > 0 {
		outcome = fmt.Sprintf("%d of %d trials failed (see the log); the others: %s", failed, trials, outcome)
	}
	chaosReport(t, "kill -9 of 1 of 4 ranks ("+strings.Join(moments, ", ")+")", outcome, times, 128+9)
}

// killOnce starts the job in out, kills one rank at moment and checks the
// aftermath up to the resume.
func killOnce(t *testing.T, dir, out, moment string, rng *mrand.Rand, common []string) killTrial {
	t.Helper()
	ckDir := filepath.Join(out, "checkpoints")
	if err := os.MkdirAll(ckDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var created <-chan string
	if moment == atCheckpoint {
		created = watchCreates(t, ckDir)
	}
	cmd, stdout, stderr := launcher(t, dir, nil, append(append([]string{"--nproc-per-node", "4", "--"}, common...), "--output-dir", out)...)
	tr := killTrial{moment: moment, victim: rng.IntN(4)}
	laggard := -1
	if moment == atRendezvous {
		// Hold back the first rank to appear, so that the others wait for
		// it in the rendezvous; strike one of them there.
		laggard = holdBackFirstRank(t, cmd.Process.Pid)
	}
	pids := fourWorkers(t, cmd.Process.Pid)
	switch moment {
	case atRendezvous:
		tr.victim = waitingRank(t, pids, laggard)
	case atStep:
		waitFor(t, time.Minute, "training", func() bool { return strings.Contains(stdout.String(), "train step 10/") })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	case atAllReduce:
		// Stopped for a moment, the victim holds its peers inside the
		// gradient all-reduce; it dies while they wait for it.
		waitFor(t, time.Minute, "training", func() bool { return strings.Contains(stdout.String(), "train step 10/") })
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		syscall.Kill(pids[tr.victim], syscall.SIGSTOP)
		time.Sleep(50 * time.Millisecond)
	case atCheckpoint:
		// Rank 0 writes checkpoints: strike when it creates the temp file
		// of the k-th file (tensors or record) of the first two checkpoints.
		tr.victim = 0
		k := 1 + rng.IntN(4)
		for k > 0 {
			select {
			case name := <-created:
				if strings.HasPrefix(name, ".checkpoint-") {
					k--
				}
			case <-time.After(time.Minute):
				t.Fatalf("no checkpoint write in %s after a minute:\n%s", ckDir, stderr)
			}
		}
	}
	killed := time.Now()
	if err := syscall.Kill(pids[tr.victim], syscall.SIGKILL); err != nil {
		t.Fatalf("kill rank %d at %s: %v (did it end before?)\n%s", tr.victim, moment, err, stderr)
	}
	if laggard >= 0 {
		syscall.Kill(pids[laggard], syscall.SIGCONT)
	}
	code := exitCodeOf(t, cmd, 30*time.Second)
	tr.took = time.Since(killed)
	for r, pid := range pids {
		if running(pid) {
			t.Errorf("rank %d (pid %d) still running after the launcher exited", r, pid)
		}
	}
	if tr.took > gangStopBound {
		t.Errorf("%s: the gang took %v to stop after the kill, promised %v", moment, tr.took, gangStopBound)
	}
	cause := fmt.Sprintf("root cause: rank %d (", tr.victim)
	if code != 128+9 || !strings.Contains(stderr.String(), cause) || !strings.Contains(stderr.String(), "killed") {
		t.Errorf("%s: launcher exit %d, want 137 with %q ... killed; stderr:\n%s", moment, code, cause, stderr)
	}
	checkpointsAllLoad(t, ckDir)
	return tr
}

// holdBackFirstRank SIGSTOPs the first worker of the launcher to appear
// and returns its rank.
func holdBackFirstRank(t *testing.T, launcherPID int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for r, pid := range workerPIDs(t, launcherPID) {
			syscall.Kill(pid, syscall.SIGSTOP)
			return r
		}
	}
	t.Fatal("no worker appeared within 30 s")
	return 0
}

// waitingRank returns a rank other than laggard that has bound its data
// plane: it is in the rendezvous, waiting for the laggard.
func waitingRank(t *testing.T, pids map[int]int, laggard int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for r, pid := range pids {
			if r != laggard && len(listenPorts(pid)) > 0 {
				return r
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no rank listened on a data plane within 30 s")
	return 0
}

// SIGSTOP of a rank (a hung process): the others detect it within 10 s,
// name it and exit 4; once continued, the stopped rank exits too.
func TestChaosStoppedRankIsNamed(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "long.yaml", longConfig)
	train := []string{"train", "-c", cfg, "--log-freq", "20", "--threads", "1"}

	t.Run("two nodes", func(t *testing.T) {
		port := freePort(t)
		env := []string{"COHORT_JOB_TOKEN=" + chaosToken}
		common := []string{"--nnodes", "2", "--nproc-per-node", "1", "--rdzv-id", "stop", "--rdzv-timeout", "1m"}
		node0, out0, err0 := launcher(t, dir, env, append(append(common, "--node-rank", "0", "--rdzv-port", strconv.Itoa(port), "--"),
			append(train, "--output-dir", filepath.Join(dir, "run"))...)...)
		node1, _, err1 := launcher(t, dir, env, append(append(common, "--node-rank", "1", "--rdzv-endpoint", fmt.Sprintf("nats://127.0.0.1:%d", port), "--"),
			train...)...)
		waitFor(t, time.Minute, "training", func() bool { return strings.Contains(out0.String(), "train step 20/") })
		victim := workerPIDs(t, node1.Process.Pid)[1]
		stopped := time.Now()
		syscall.Kill(victim, syscall.SIGSTOP)
		t.Cleanup(func() { syscall.Kill(victim, syscall.SIGKILL) })
		code := exitCodeOf(t, node0, 30*time.Second)
		took := time.Since(stopped)
		t.Logf("node 0 exited %v after rank 1 was stopped, code %d", took.Round(time.Millisecond), code)
		if took > stallBound {
			t.Errorf("a stopped rank was detected after %v, promised %v", took, stallBound)
		}
		if code != ExitPeerLost || !strings.Contains(err0.String(), "rank 1 ") || !strings.Contains(err0.String(), "lost") {
			t.Errorf("node 0 exit %d, want %d naming rank 1 lost; stderr:\n%s", code, ExitPeerLost, err0)
		}
		syscall.Kill(victim, syscall.SIGCONT)
		continued := time.Now()
		code1 := exitCodeOf(t, node1, stallBound)
		t.Logf("continued rank 1 exited %v later, code %d", time.Since(continued).Round(time.Millisecond), code1)
		if code1 != ExitPeerLost {
			t.Errorf("continued rank 1: node 1 exit %d, want %d; stderr:\n%s", code1, ExitPeerLost, err1)
		}
		chaosReport(t, "SIGSTOP of rank 1 of a 2-node job", fmt.Sprintf("node 0 names rank 1 lost (no heartbeat), exits %d; rank 1 exits %d once continued", code, code1),
			[]time.Duration{took}, code)
	})

	// One launcher: the ranks that detect the stall exit 4 naming rank 2,
	// and the launcher SIGKILLs the stopped rank after the grace period.
	t.Run("one launcher", func(t *testing.T) {
		cmd, stdout, stderr := launcher(t, dir, nil, append([]string{"--nproc-per-node", "4", "--grace", "1s", "--"},
			append(train, "--output-dir", filepath.Join(dir, "run4"))...)...)
		waitFor(t, time.Minute, "training", func() bool { return strings.Contains(stdout.String(), "train step 20/") })
		pids := workerPIDs(t, cmd.Process.Pid)
		stopped := time.Now()
		syscall.Kill(pids[2], syscall.SIGSTOP)
		t.Cleanup(func() { syscall.Kill(pids[2], syscall.SIGKILL) })
		code := exitCodeOf(t, cmd, 30*time.Second)
		took := time.Since(stopped)
		root, _, _ := strings.Cut(stderr.String()[strings.Index(stderr.String(), "root cause:"):], "\n")
		t.Logf("launcher exited %v after rank 2 was stopped, code %d; %s", took.Round(time.Millisecond), code, root)
		if took > stallBound {
			t.Errorf("a stopped rank stopped the gang after %v, promised %v", took, stallBound)
		}
		if code != ExitPeerLost || !strings.Contains(stderr.String(), "rank 2 ") || !strings.Contains(stderr.String(), "lost") {
			t.Errorf("launcher exit %d, want %d naming rank 2 lost; stderr:\n%s", code, ExitPeerLost, stderr)
		}
		for r, pid := range pids {
			if running(pid) {
				t.Errorf("rank %d still running after the launcher exited", r)
			}
		}
		outcome := "peers name rank 2 lost (no heartbeat), exit 4; SIGKILLed after --grace 1s"
		if !strings.Contains(root, "rank 2 ") {
			// Not asserted: the stopped rank is named in the lines under it.
			outcome += "; summary blames " + strings.TrimPrefix(root, "cohort launch: root cause: ")
		}
		chaosReport(t, "SIGSTOP of rank 2 of 4 under one launcher", outcome, []time.Duration{took}, code)
	})
}

// natsServerBinary is the nats-server executable, or a skip.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	t.Skip("no nats-server binary (apt-get install nats-server)")
	return ""
}

// startNATS runs the external nats-server on 127.0.0.1:port with the
// chaos token and waits until it accepts connections.
func startNATS(t *testing.T, bin string, port int) *exec.Cmd {
	t.Helper()
	return startNATSWith(t, bin, port, "--auth", chaosToken)
}

// startNATSWith runs nats-server on 127.0.0.1:port with more arguments
// (its auth) and waits until it accepts connections.
func startNATSWith(t *testing.T, bin string, port int, args ...string) *exec.Cmd {
	t.Helper()
	srv := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, args...)...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 10*time.Second, "nats-server to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return srv
}

// The external NATS server killed mid-training. Back within the liveness
// window (2 s), training goes on undisturbed: the NATS clients reconnect
// and every rank restarts its peers' window. Gone for good, every rank
// exits 4 naming the lost NATS connection within the window plus a probe.
func TestChaosNATSServerKilledMidTraining(t *testing.T) {
	bin := natsServerBinary(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "chaos.yaml", chaosConfig)
	common := []string{"train", "-c", cfg, "--log-freq", "10", "--threads", "1", "--seed", "3"}
	ref := referenceRun(t, dir, cfg, common[3:]...)
	env := []string{"COHORT_JOB_TOKEN=" + chaosToken}

	// start trains with extra on a fresh nats-server and kills the server
	// at step 10.
	start := func(t *testing.T, name string, extra ...string) (port int, cmd *exec.Cmd, stdout, stderr *bytes.Buffer, killed time.Time) {
		port = freePort(t)
		srv := startNATS(t, bin, port)
		cmd, stdout, stderr = launcher(t, dir, env, append([]string{"--nproc-per-node", "4", "--rdzv-endpoint", fmt.Sprintf("nats://127.0.0.1:%d", port), "--"},
			append(append(common, "--output-dir", filepath.Join(dir, name)), extra...)...)...)
		waitFor(t, time.Minute, "training", func() bool { return strings.Contains(stdout.String(), "train step 10/") })
		killed = time.Now()
		srv.Process.Kill()
		srv.Wait()
		return port, cmd, stdout, stderr, killed
	}

	t.Run("back within the liveness window", func(t *testing.T) {
		port, cmd, stdout, stderr, killed := start(t, "back")
		time.Sleep(outageDownShort)
		startNATS(t, bin, port)
		if !running(cmd.Process.Pid) {
			t.Fatalf("training ended during the outage; make the task longer\n%s", stderr)
		}
		if code := exitCodeOf(t, cmd, resumeRunLimit); code != 0 {
			t.Fatalf("after a %v NATS outage: exit %d\n%s\n%s", outageDownShort, code, stdout, stderr)
		}
		sameFinalWeights(t, ref, filepath.Join(dir, "back"))
		chaosReport(t, fmt.Sprintf("external nats-server SIGKILLed, back after %v", outageDownShort),
			"training continues (clients reconnect, liveness window restarts), exit 0, same weights", []time.Duration{time.Since(killed)}, 0)
	})

	t.Run("gone for good", func(t *testing.T) {
		// Long enough that the outage, not the end of training, stops it.
		_, cmd, _, stderr, killed := start(t, "gone", "num_epochs=200")
		code := exitCodeOf(t, cmd, 30*time.Second)
		took := time.Since(killed)
		t.Logf("every rank gone %v after NATS died, code %d", took.Round(time.Millisecond), code)
		if took > natsGoneBound {
			t.Errorf("ranks took %v to give up on a dead NATS server, promised %v", took, natsGoneBound)
		}
		if code != ExitPeerLost {
			t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitPeerLost, stderr)
		}
		// Every rank notices the dead server within the liveness window;
		// one that notices last may first see a neighbour close its ring
		// connection (or get its abort), and names that rank instead. At
		// least one rank must name the real cause.
		cause := 0
		for r := range 4 {
			prefix := fmt.Sprintf("[rank %d] ", r)
			switch {
			case hasLine(stderr.String(), prefix, "no connection to NATS"):
				cause++
			case hasLine(stderr.String(), prefix, "peer lost"), hasLine(stderr.String(), prefix, "peer aborted"):
			default:
				t.Errorf("rank %d names neither the lost NATS connection nor a lost peer; stderr:\n%s", r, stderr)
			}
		}
		if cause == 0 {
			t.Errorf("no rank says the NATS connection was lost; stderr:\n%s", stderr)
		}
		chaosReport(t, "external nats-server SIGKILLed for good", "every rank exits 4: 'no connection to NATS … for 2.0s' (or, second-hand, a peer lost)", []time.Duration{took}, code)
	})
}

// hasLine reports whether some line of s starts with prefix and holds want.
func hasLine(s, prefix, want string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// A checkpoint folder that cannot take the checkpoint: rank 0 fails with a
// message naming the folder, exit 1, the other ranks follow at once, and
// what was written before still loads.
func TestChaosCheckpointFolderFailures(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "chaos.yaml", chaosConfig)
	common := []string{"--nproc-per-node", "4", "--", "train", "-c", cfg, "num_epochs=3", "--log-freq", "0", "--threads", "1"}
	// run trains into ckDir, expecting rank 0 to fail saying want, and
	// returns the time from its message to the last rank's exit.
	run := func(t *testing.T, out, ckDir, want string) time.Duration {
		t.Helper()
		stderr := &stampWriter{marker: "[rank 0] cohort: "}
		cmd := cohortProcess(t, dir, append([]string{"launch"}, append(common, "--output-dir", out, "--checkpoint-folder", ckDir)...)...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		pids := fourWorkers(t, cmd.Process.Pid)
		code := exitCodeOf(t, cmd, cleanFailBound)
		took := time.Since(stderr.seen())
		for r, pid := range pids {
			if running(pid) {
				t.Errorf("rank %d still running after the launcher exited", r)
			}
		}
		if code != ExitFailure || !strings.Contains(stderr.String(), "root cause: rank 0 ") ||
			!hasLine(stderr.String(), "[rank 0] ", "checkpoint folder "+ckDir+" "+want) {
			t.Errorf("exit %d, want %d with rank 0 saying 'checkpoint folder %s %s'; stderr:\n%s", code, ExitFailure, ckDir, want, stderr)
		}
		// The peers learn of it from rank 0's abort, or from a neighbour
		// that got the abort first and closed its connection, so each names
		// a rank; the abort itself must have reached at least one of them.
		named := 0
		for r := 1; r < 4; r++ {
			if hasLine(stderr.String(), fmt.Sprintf("[rank %d] ", r), "rank 0 ") {
				named++
			}
		}
		if named == 0 {
			t.Errorf("no rank says that rank 0 failed; stderr:\n%s", stderr)
		}
		return took
	}

	t.Run("a file where the folder should be", func(t *testing.T) {
		out := filepath.Join(dir, "file")
		ckDir := writeFile(t, t.TempDir(), "checkpoints", "not a folder\n")
		took := run(t, out, ckDir, "is not a directory")
		chaosReport(t, "checkpoint folder is a regular file", "rank 0 exits 1 before training starts: 'checkpoint folder … is not a directory', peers follow",
			[]time.Duration{took}, ExitFailure)
	})

	t.Run("disk full during the second checkpoint", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to mount a tmpfs")
		}
		// One checkpoint's size, from a one-epoch run alone.
		probe := filepath.Join(dir, "probe")
		if code, _, stderr := cohort("train", "-c", cfg, "num_epochs=1", "--output-dir", probe, "--threads", "1", "--log-freq", "0"); code != 0 {
			t.Fatalf("probe run: exit %d: %s", code, stderr)
		}
		size := lastCheckpoint(t, filepath.Join(probe, "checkpoints")).Meta.Size
		ckDir := filepath.Join(dir, "small")
		if err := os.Mkdir(ckDir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Room for one checkpoint and a half: the second one's write fails.
		opts := fmt.Sprintf("size=%d", (size*3/2+4095)/4096*4096)
		if err := syscall.Mount("tmpfs", ckDir, "tmpfs", 0, opts); err != nil {
			t.Skipf("mount tmpfs %s: %v", opts, err)
		}
		t.Cleanup(func() { syscall.Unmount(ckDir, syscall.MNT_DETACH) })
		took := run(t, filepath.Join(dir, "full"), ckDir, "is out of space")
		ck := lastCheckpoint(t, ckDir)
		if ck.Meta.Epoch != 1 {
			t.Errorf("newest checkpoint is of epoch %d, want the first", ck.Meta.Epoch)
		}
		if n := checkpointsAllLoad(t, ckDir); n != 1 {
			t.Errorf("%d checkpoints on the full disk, want the first only", n)
		}
		if debris, _ := filepath.Glob(filepath.Join(ckDir, ".*")); len(debris) > 0 {
			t.Errorf("temp files left on the full disk: %v", debris)
		}
		chaosReport(t, "ENOSPC during the 2nd checkpoint (tmpfs)", "rank 0 exits 1: 'checkpoint folder … is out of space', peers exit 4, temp file removed, 1st checkpoint loads",
			[]time.Duration{took}, ExitFailure)
	})
}

// stampWriter collects output and notes when marker first appeared in it.
type stampWriter struct {
	marker string
	mu     sync.Mutex
	buf    bytes.Buffer
	at     time.Time
}

func (w *stampWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.at.IsZero() && bytes.Contains(w.buf.Bytes(), []byte(w.marker)) {
		w.at = time.Now()
	}
	return len(p), nil
}

func (w *stampWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// seen is when the marker appeared (now if it has not).
func (w *stampWriter) seen() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() {
		return time.Now()
	}
	return w.at
}

// A damaged newest checkpoint: --resume auto names it, skips it, resumes
// from the one before and ends with the undamaged run's weights.
func TestChaosDamagedNewestCheckpointIsSkipped(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "chaos.yaml", chaosConfig)
	common := []string{"train", "-c", cfg, "num_epochs=3", "dataset.train.num_samples=2048", "--threads", "1", "--log-freq", "0", "--seed", "4"}
	full := filepath.Join(dir, "full")
	if code, _, stderr := cohort(append(common, "--output-dir", full)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ref := lastCheckpoint(t, filepath.Join(full, "checkpoints"))
	newest := strings.TrimSuffix(filepath.Base(ref.Path), ".json")
	for _, tc := range []struct {
		name, file string
		damage     func([]byte) []byte
	}{
		{"truncated tensors", ".safetensors", func(b []byte) []byte { return b[:len(b)/2] }},
		{"bit-flipped tensors", ".safetensors", func(b []byte) []byte { b[len(b)*2/3] ^= 0x10; return b }},
		{"truncated record", ".json", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			ckDir := filepath.Join(out, "checkpoints")
			copyDir(t, filepath.Join(full, "checkpoints"), ckDir)
			damaged := filepath.Join(ckDir, newest+tc.file)
			data, err := os.ReadFile(damaged)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(damaged, tc.damage(data), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cohort(append(common, "--output-dir", out, "--resume", "auto")...)
			if code != 0 {
				t.Fatalf("resume: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "skipping invalid checkpoint") || !strings.Contains(stderr, newest) {
				t.Errorf("stderr does not name the skipped %s:\n%s", newest, stderr)
			}
			previous := filepath.Join(ckDir, "checkpoint-000002.json")
			if !strings.Contains(stdout, "resumed from "+previous) {
				t.Errorf("did not resume from %s:\n%s", previous, stdout)
			}
			sameFinalWeights(t, ref, out)
		})
	}
	chaosReport(t, "newest checkpoint truncated / bit-flipped / record truncated",
		"--resume auto names and skips it, resumes from the previous one, same final weights", nil, 0)
}

// copyDir copies the regular files of src into a new folder dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The launcher SIGKILLed (no chance to stop its gang): Pdeathsig takes
// every worker down within 2 s. The NATS server is the test's own, so
// without Pdeathsig the workers would train on as orphans.
func TestChaosLauncherKilledLeavesNoOrphans(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{Token: chaosToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "long.yaml", longConfig)
	cmd, stdout, _ := launcher(t, dir, []string{"COHORT_JOB_TOKEN=" + chaosToken}, "--nproc-per-node", "4", "--rdzv-endpoint", srv.URL(), "--",
		"train", "-c", cfg, "--output-dir", filepath.Join(dir, "run"), "--log-freq", "20", "--threads", "1")
	waitFor(t, time.Minute, "training", func() bool { return strings.Contains(stdout.String(), "train step 20/") })
	pids := workerPIDs(t, cmd.Process.Pid)
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	left := func() []int {
		var pp []int
		for _, pid := range pids {
			if running(pid) {
				pp = append(pp, pid)
			}
		}
		return pp
	}
	deadline := killed.Add(orphanBound)
	for len(left()) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(killed)
	if pp := left(); len(pp) > 0 {
		for _, pid := range pp {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("workers %v still running %v after the launcher was killed", pp, orphanBound)
	}
	t.Logf("all 4 workers gone %v after the launcher was SIGKILLed", took.Round(time.Millisecond))
	chaosReport(t, "launcher SIGKILLed", "every worker dies with it (Pdeathsig), no orphans", []time.Duration{took}, 128+9)
}

// Strangers: connections to the ranks' data-plane ports sending garbage, a
// replayed handshake or nothing, queued while the ring forms and tried
// again after, and a worker with the wrong job token, do not disturb a
// 2-node job: none is let in, none is held open, the intruder exits 3, and
// the job ends with the weights of an undisturbed run.
func TestChaosStrangersCannotDisturbOrJoin(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	train := []string{"train", "-c", cfg, "num_epochs=6", "model.dropout=0", "--log-freq", "0", "--threads", "1", "--seed", "6"}
	ref := referenceRun(t, dir, cfg, train[3:]...)

	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	env := []string{"COHORT_JOB_TOKEN=" + chaosToken}
	const runID = "strangers"
	common := []string{"--nnodes", "2", "--nproc-per-node", "2", "--rdzv-id", runID, "--rdzv-timeout", "1m"}
	out := filepath.Join(dir, "run")
	node0, out0, err0 := launcher(t, dir, env, append(append(common, "--node-rank", "0", "--rdzv-port", strconv.Itoa(port), "--"),
		append(train, "--output-dir", out)...)...)

	// Node 1 is not there yet: node 0's ranks have bound their data plane
	// and wait in the rendezvous. Strangers queue on the listeners; the
	// ranks meet them first when they start accepting, as the ring forms.
	var pids map[int]int
	waitFor(t, 30*time.Second, "node 0's ranks", func() bool { pids = workerPIDs(t, node0.Process.Pid); return len(pids) == 2 })
	secret := rendezvous.JobSecret(chaosToken, runID)
	results := make(chan string, 3*len(pids))
	for rank, pid := range pids {
		var ports []int
		waitFor(t, 30*time.Second, "a data-plane listener", func() bool { ports = listenPorts(pid); return len(ports) == 1 })
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		for _, talk := range []func(net.Conn) (string, error){
			garbage, replay(secret, runID, rank, (rank+3)%4), silent,
		} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("stranger dial %s: %v", addr, err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			go func() {
				outcome, err := talk(c)
				if err != nil {
					outcome = "FAIL: " + err.Error()
				}
				results <- fmt.Sprintf("rank %d: %s", rank, outcome)
			}()
		}
	}

	intruder := cohortProcess(t, dir, "train", "-c", cfg)
	intruder.Env = append(intruder.Env, "COHORT_RDZV_URL="+url, "COHORT_JOB_TOKEN=not-the-job-token-42", "COHORT_RUN_ID="+runID,
		"COHORT_RANK=2", "COHORT_LOCAL_RANK=0", "COHORT_WORLD_SIZE=4", "COHORT_LOCAL_WORLD_SIZE=2", "COHORT_NODE_RANK=1", "COHORT_RDZV_TIMEOUT=10s")
	var intruderErr bytes.Buffer
	intruder.Stderr = &intruderErr
	if err := intruder.Start(); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(t, intruder, 30*time.Second); code != ExitRendezvous || !strings.Contains(intruderErr.String(), "rejected the token") {
		t.Errorf("worker with a wrong token: exit %d, want %d 'rejected the token'; stderr:\n%s", code, ExitRendezvous, intruderErr.String())
	}

	node1, _, err1 := launcher(t, dir, env, append(append(common, "--node-rank", "1", "--rdzv-endpoint", url, "--"), train...)...)
	for range cap(results) {
		r := <-results
		t.Logf("stranger at ring formation: %s", r)
		if strings.Contains(r, "FAIL: ") {
			t.Error(r)
		}
	}
	waitFor(t, time.Minute, "the data plane line", func() bool { return strings.Contains(out0.String(), "data plane: ") })
	line := out0.String()[strings.Index(out0.String(), "data plane: ")+len("data plane: "):]
	line, _, _ = strings.Cut(line, "\n")
	refused := 0
	for _, addr := range strings.Fields(line) {
		// Once the ring is up nothing listens there any more; anything
		// that does must not let garbage in.
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused++
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if outcome, err := garbage(c); err != nil {
			t.Errorf("%s after formation: %v", addr, err)
		} else {
			t.Logf("%s after formation: %s", addr, outcome)
		}
		c.Close()
	}
	t.Logf("after formation %d of 4 data-plane ports refused connections", refused)
	for i, n := range []*exec.Cmd{node0, node1} {
		if code := exitCodeOf(t, n, resumeRunLimit); code != 0 {
			t.Fatalf("node %d: exit %d\n%s\n%s", i, code, err0, err1)
		}
	}
	sameFinalWeights(t, ref, out)
	chaosReport(t, "strangers on the data plane; worker with a wrong token",
		"garbage, replayed handshakes, silent connections refused or dropped; job undisturbed (same weights); intruder exits 3", nil, ExitRendezvous)
}

// garbage sends bytes that are not a handshake: the rank must close the
// connection, with or without a reject, before the deadline.
func garbage(c net.Conn) (string, error) {
	junk := make([]byte, 4096)
	rand.Read(junk)
	copy(junk, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Write(junk)
	reply, err := io.ReadAll(c)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", errors.New("garbage: connection held open until the deadline")
	case len(reply) > 0 && reply[0] != 'R':
		return "", fmt.Errorf("garbage: answered %q, want a reject or a close", reply)
	case len(reply) > 3:
		return fmt.Sprintf("garbage: rejected %q", reply[3:]), nil
	}
	return "garbage: closed", nil
}

// silent connects and sends nothing: the rank must drop it (when the ring
// forms, or at its handshake timeout) before the deadline.
func silent(c net.Conn) (string, error) {
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		return "", errors.New("silent: connection held open until the deadline")
	}
	return "silent: dropped", nil
}

// replay plays back a handshake recorded from rank to's genuine ring
// predecessor: a well-formed hello and a proof that was valid, but for an
// earlier challenge. The rank must never welcome it: every proof binds the
// acceptor's fresh nonce. The wire format is collective's handshake
// (handshake.go), written out here as an eavesdropper would see it.
func replay(secret []byte, jobID string, to, from int) func(net.Conn) (string, error) {
	return func(c net.Conn) (string, error) {
		hello := binary.LittleEndian.AppendUint32([]byte("CHRT\x01\x00"), uint32(collective.DefaultChunkBytes))
		hello = binary.LittleEndian.AppendUint32(hello, uint32(from))
		hello = binary.LittleEndian.AppendUint32(hello, uint32(to))
		nonces := make([]byte, 64) // the dialer's, then the old challenge's
		rand.Read(nonces)
		hello = append(hello, nonces[:32]...)
		hello = binary.LittleEndian.AppendUint16(hello, uint16(len(jobID)))
		hello = append(hello, jobID...)
		mac := hmac.New(sha256.New, secret)
		mac.Write(append(append([]byte{'D'}, hello...), nonces[32:]...))
		recordedProof := append([]byte{'P'}, mac.Sum(nil)...)

		c.Write(hello)
		challenge := make([]byte, 1+32+32)
		if _, err := io.ReadFull(c, challenge); errors.Is(err, os.ErrDeadlineExceeded) {
			return "", errors.New("replay: no answer to the hello until the deadline")
		} else if err != nil {
			return "replay: closed before the challenge (the real predecessor won first)", nil
		}
		if challenge[0] != 'C' {
			return "", fmt.Errorf("replay: a well-formed hello got %q, want a challenge", challenge)
		}
		c.Write(recordedProof)
		reply, err := io.ReadAll(c)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return "", errors.New("replay: held open after the proof until the deadline")
		case len(reply) > 0 && reply[0] == 'W':
			return "", errors.New("replay: WELCOMED with a replayed proof")
		case len(reply) > 3 && reply[0] == 'R':
			return fmt.Sprintf("replay: rejected %q", reply[3:]), nil
		}
		return "replay: closed after the proof", nil
	}
}

// chaosLong skips t unless COHORT_CHAOS_LONG=1 (scripts/chaos/run.sh):
// these faults take tens of seconds each (docs/reliability.md has the
// outcomes).
func chaosLong(t *testing.T) {
	t.Helper()
	if os.Getenv("COHORT_CHAOS_LONG") != "1" {
		t.Skip("long chaos test: COHORT_CHAOS_LONG=1 (scripts/chaos/run.sh)")
	}
}

// A stranger without any credential keeps every handshake slot of node 0's
// data-plane listeners busy with silent connections while the ring forms.
// The job must still form its ring and train.
func TestChaosHandshakeFlood(t *testing.T) {
	chaosLong(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	train := []string{"train", "-c", cfg, "num_epochs=1", "--log-freq", "0", "--threads", "1"}
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	env := []string{"COHORT_JOB_TOKEN=" + chaosToken}
	common := []string{"--nnodes", "2", "--nproc-per-node", "2", "--rdzv-id", "flood", "--rdzv-timeout", "1m"}
	node0, out0, err0 := launcher(t, dir, env, append(append(common, "--node-rank", "0", "--rdzv-port", strconv.Itoa(port), "--"),
		append(train, "--output-dir", filepath.Join(dir, "run"))...)...)
	var pids map[int]int
	waitFor(t, 30*time.Second, "node 0's ranks", func() bool { pids = workerPIDs(t, node0.Process.Pid); return len(pids) == 2 })
	for _, pid := range pids {
		var ports []int
		waitFor(t, 30*time.Second, "a data-plane listener", func() bool { ports = listenPorts(pid); return len(ports) == 1 })
		flood(t.Context(), net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), 24)
	}
	time.Sleep(100 * time.Millisecond) // the flood fills the slots
	started := time.Now()
	node1, _, err1 := launcher(t, dir, env, append(append(common, "--node-rank", "1", "--rdzv-endpoint", url, "--"), train...)...)
	code0 := exitCodeOf(t, node0, 2*time.Minute)
	code1 := exitCodeOf(t, node1, 30*time.Second)
	took := time.Since(started)
	t.Logf("under the flood: nodes exited %d and %d after %v", code0, code1, took.Round(time.Millisecond))
	outcome := "ring formed, trained"
	if code0 != 0 || code1 != 0 {
		outcome = fmt.Sprintf("job killed by a stranger: exit %d/%d", code0, code1)
		t.Errorf("a stranger's silent connections stopped the job: node 0 exit %d, node 1 exit %d\n%s\n%s", code0, code1, err0, err1)
	} else if i := strings.Index(out0.String(), "joined in "); i >= 0 {
		joined, _, _ := strings.Cut(out0.String()[i:], " (")
		outcome += ", " + joined
	}
	chaosReport(t, "handshake flood: 24 silent reconnecting connections per listener (no credentials)", outcome, []time.Duration{took}, max(code0, code1))
}

// flood keeps n connections to addr open, sending nothing, reconnecting
// as soon as one is closed, until ctx ends.
func flood(ctx context.Context, addr string, n int) {
	var d net.Dialer
	for range n {
		go func() {
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				io.Copy(io.Discard, c)
				stop()
				c.Close()
			}
		}()
	}
}

// Node 1 publishes a data-plane address node 0 cannot reach (its own
// loopback, as a multi-homed or NATed host may): NATS works, the data plane
// does not. Every rank must give up within the rendezvous timeout, with
// exit 3 naming the unreachable rank, instead of waiting for ever.
func TestChaosUnreachableDataPlane(t *testing.T) {
	chaosLong(t)
	if os.Getuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	ns := fmt.Sprintf("cohortchaos%d", os.Getpid())
	veth := fmt.Sprintf("chx%d", os.Getpid()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("link", "add", veth+"a", "type", "veth", "peer", "name", veth+"b")
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth+"a").Run() })
	ip("link", "set", veth+"b", "netns", ns)
	ip("addr", "add", "10.79.0.1/24", "dev", veth+"a")
	ip("link", "set", veth+"a", "up")
	ip("-n", ns, "addr", "add", "10.79.0.2/24", "dev", veth+"b")
	ip("-n", ns, "link", "set", veth+"b", "up")
	ip("-n", ns, "link", "set", "lo", "up")

	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	const rdzvTimeout = 10 * time.Second
	port := freePort(t)
	common := []string{"launch", "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-id", "unreachable", "--rdzv-timeout", rdzvTimeout.String()}
	train := []string{"--", "train", "-c", cfg, "--log-freq", "0", "--threads", "1"}
	node0, _, err0 := launcher(t, dir, []string{"COHORT_JOB_TOKEN=" + chaosToken},
		append(append(common[1:], "--node-rank", "0", "--rdzv-host", "10.79.0.1", "--rdzv-port", strconv.Itoa(port)), append(train, "--output-dir", filepath.Join(dir, "run"))...)...)
	node1 := exec.Command("ip", append([]string{"netns", "exec", ns, "env", "COHORT_TEST_MAIN=1", "COHORT_JOB_TOKEN=" + chaosToken, "COHORT_DATA_HOST=127.0.0.1", os.Args[0]},
		append(append(common, "--node-rank", "1", "--rdzv-endpoint", fmt.Sprintf("nats://10.79.0.1:%d", port)), train...)...)...)
	node1.Dir = dir
	var err1 bytes.Buffer
	node1.Stderr = &err1
	if err := node1.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node1.Process.Kill() })
	started := time.Now()
	bound := rdzvTimeout + 20*time.Second
	done := make(chan error, 1)
	go func() { done <- node0.Wait() }()
	var took time.Duration
	code := -1
	select {
	case <-done:
		took, code = time.Since(started), node0.ProcessState.ExitCode()
	case <-time.After(bound):
		took = time.Since(started)
		node0.Process.Signal(syscall.SIGINT)
		node1.Process.Kill()
	}
	outcome := fmt.Sprintf("every rank exits %d naming the unreachable rank", ExitRendezvous)
	if code != ExitRendezvous || !strings.Contains(err0.String(), "rank 1") {
		outcome = fmt.Sprintf("HANG: no rank gave up within %v (rendezvous timeout %v)", bound, rdzvTimeout)
		if code >= 0 {
			outcome = fmt.Sprintf("node 0 exit %d after %v", code, took.Round(time.Millisecond))
		}
		t.Errorf("%s; want exit %d naming rank 1's unreachable address\nnode 0:\n%s\nnode 1:\n%s", outcome, ExitRendezvous, err0, err1.String())
	}
	chaosReport(t, "data plane unreachable, NATS fine (node 1 in a netns publishes its loopback)", outcome, []time.Duration{took}, code)
}
