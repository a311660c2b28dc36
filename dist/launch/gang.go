package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cohort/dist"
)

// Worker exit codes the launcher treats specially (see the README).
const (
	// ExitUsage: bad input (config, flags, data); restarting cannot help.
	ExitUsage = 2
	// ExitPeerLost: "a peer was lost"; another failure is preferred as
	// the root cause.
	ExitPeerLost = 4
	// ExitPreempted: the worker checkpointed and stopped on request; the
	// others are doing the same, so it must not trigger SIGTERM/SIGKILL.
	ExitPreempted = 5
)

// tailLines is how many stderr lines of a failed worker the summary shows.
const tailLines = 12

// worker is one spawned rank.
type worker struct {
	rank, localRank int
	cmd             *exec.Cmd
	tail            *tail
	output          sync.WaitGroup // the goroutines copying its output
	// sent is the last stop signal the launcher sent it (0: none): its
	// death by exactly that signal is collateral, not a cause.
	sent syscall.Signal
}

// gang is this node's workers for one attempt.
type gang struct {
	workers []*worker
	host    string
}

// exit is one worker's end.
type exit struct {
	w   *worker
	err error
}

// failure is the root cause of a gang's end.
type failure struct {
	rank, localRank, pid int
	host                 string
	code                 int
	signal               string
	stderr               []string
	// hung: it needed SIGKILL after SIGTERM, so it was not running.
	hung bool
}

func (f *failure) summary(attempt, maxRestarts int) string {
	var b strings.Builder
	how := fmt.Sprintf("exited with code %d", f.code)
	switch {
	case f.signal != "":
		how = "was killed by " + f.signal
	case f.code == ExitPreempted:
		how = fmt.Sprintf("stopped on request (code %d); continue with --resume auto", f.code)
	}
	if f.hung {
		how += ", after ignoring SIGTERM for the whole grace period (hung or stopped?)"
	}
	fmt.Fprintf(&b, "cohort launch: root cause: rank %d (local rank %d) on %s, pid %d, %s", f.rank, f.localRank, f.host, f.pid, how)
	if maxRestarts > 0 {
		fmt.Fprintf(&b, " (attempt %d of %d)", attempt+1, maxRestarts+1)
	}
	b.WriteString("\n")
	if len(f.stderr) > 0 {
		fmt.Fprintf(&b, "  last stderr lines of rank %d:\n", f.rank)
		for _, l := range f.stderr {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}

func startGang(o Options, env []string) (*gang, error) {
	g := &gang{host: dist.Hostname()}
	out := &lockedWriter{w: o.Stdout}
	errw := &lockedWriter{w: o.Stderr}
	for local := range o.NProcPerNode {
		rank := o.NodeRank*o.NProcPerNode + local
		cmd := exec.Command(o.Binary, o.WorkerArgs...)
		cmd.Env = append(append([]string(nil), env...),
			dist.EnvRank+"="+strconv.Itoa(rank),
			dist.EnvLocalRank+"="+strconv.Itoa(local),
			"RANK="+strconv.Itoa(rank),
			"LOCAL_RANK="+strconv.Itoa(local),
		)
		if gpu := gpuFor(o.GPUs, local, o.NProcPerNode); gpu != "" {
			cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+gpu)
		}
		// Own process group: a terminal's Ctrl-C reaches the launcher only,
		// which forwards it once. Pdeathsig: if the launcher is killed, its
		// workers die with it instead of training on as orphans.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		w := &worker{rank: rank, localRank: local, cmd: cmd, tail: newTail(tailLines)}
		prefix := fmt.Sprintf("[rank %d] ", rank)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			g.kill()
			return nil, err
		}
		if local == 0 && o.PassRank0Stderr {
			cmd.Stderr = os.Stderr
		} else {
			stderr, err := cmd.StderrPipe()
			if err != nil {
				g.kill()
				return nil, err
			}
			w.output.Add(1)
			go func() {
				defer w.output.Done()
				copyLines(stderr, errw, prefix, w.tail)
			}()
		}
		w.output.Add(1)
		go func() {
			defer w.output.Done()
			copyLines(stdout, out, prefix, nil)
		}()
		if err := cmd.Start(); err != nil {
			g.kill()
			return nil, fmt.Errorf("start rank %d (%s): %w", rank, o.Binary, err)
		}
		g.workers = append(g.workers, w)
	}
	return g, nil
}

// kill SIGKILLs every started worker (used when the gang cannot start).
func (g *gang) kill() {
	for _, w := range g.workers {
		w.cmd.Process.Kill()
	}
}

// result is how a gang ended.
type result struct {
	code int
	root *failure
	// byUser: the gang ended because the launcher was signalled; no restart.
	byUser bool
}

// supervise waits for every worker. On the first failure it sends SIGTERM to
// the rest and SIGKILL after the grace period; signals received by the
// launcher are forwarded.
func (g *gang) supervise(ctx context.Context, o Options) result {
	exits := make(chan exit, len(g.workers))
	for _, w := range g.workers {
		go func() {
			w.output.Wait() // Wait closes the pipes; let the copiers drain them first
			exits <- exit{w: w, err: w.cmd.Wait()}
		}()
	}
	alive := map[*worker]bool{}
	for _, w := range g.workers {
		alive[w] = true
	}
	var res result
	var killTimer <-chan time.Time
	stopping, termSeen := false, false
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		g.signal(alive, syscall.SIGTERM)
		killTimer = time.After(o.Grace)
	}
	for len(alive) > 0 {
		select {
		case e := <-exits:
			delete(alive, e.w)
			f := g.describe(e)
			if f == nil {
				continue
			}
			// The first failure stops the gang; a later one replaces it as
			// the root cause when the first merely reported a lost peer and
			// this one is not: the lost peer itself usually exits a moment
			// after its neighbours noticed.
			// A rank that had to be SIGKILLed after ignoring SIGTERM is the
			// likely culprit behind its peers' "peer lost" (a hung rank).
			collateral := f.signal != "" && f.signal == e.w.sent.String() && !f.hung
			// Likewise a real failure outranks a rank that merely stopped on
			// request: it may be why the preemption checkpoint is missing.
			if res.root == nil || (secondHand(res.root.code) && !secondHand(f.code) && !collateral) {
				res.root = f
			}
			if f.code != ExitPreempted {
				stop()
			}
		case sig := <-o.Signals:
			res.byUser = true
			g.forward(alive, sig.(syscall.Signal))
			// SIGUSR1 and a first SIGTERM mean "checkpoint, then stop": the
			// workers exit by themselves after their checkpoint. SIGINT, or
			// TERM a second time, gets the grace period, then SIGKILL.
			graceful := sig == syscall.SIGUSR1 || (sig == syscall.SIGTERM && !termSeen)
			termSeen = termSeen || sig == syscall.SIGTERM
			if !graceful && killTimer == nil {
				stopping = true
				killTimer = time.After(o.Grace)
			}
		case <-ctx.Done():
			res.byUser = true
			stop()
		case <-killTimer:
			g.signal(alive, syscall.SIGKILL)
			killTimer = nil
		}
	}
	if res.root != nil {
		res.code = res.root.code
		if res.root.hung {
			res.code = ExitPeerLost // a hung rank: the code its peers exit with
		}
	}
	return res
}

// secondHand tells the exit codes that report something else's doing: a
// lost peer, or a stop on request.
func secondHand(code int) bool { return code == ExitPeerLost || code == ExitPreempted }

// signal stops the live workers with sig (SIGTERM or SIGKILL).
func (g *gang) signal(alive map[*worker]bool, sig syscall.Signal) {
	for w := range alive {
		w.sent = sig
		w.cmd.Process.Signal(sig)
	}
}

// forward passes a signal the launcher received on to the live workers.
func (g *gang) forward(alive map[*worker]bool, sig syscall.Signal) {
	for w := range alive {
		w.cmd.Process.Signal(sig)
	}
}

// describe returns nil for a clean exit, else the failure.
func (g *gang) describe(e exit) *failure {
	if e.err == nil {
		return nil
	}
	f := &failure{rank: e.w.rank, localRank: e.w.localRank, pid: e.w.cmd.Process.Pid, host: g.host, stderr: e.w.tail.lines()}
	var ee *exec.ExitError
	if !errors.As(e.err, &ee) {
		f.code = 1
		return f
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		f.signal = ws.Signal().String()
		f.code = 128 + int(ws.Signal())
		f.hung = ws.Signal() == syscall.SIGKILL && e.w.sent == syscall.SIGKILL
		return f
	}
	f.code = ee.ExitCode()
	return f
}
