// Package launch is `cohort launch`: it starts (or finds) the rendezvous
// server, spawns one worker process per slot on this node with its rank in
// the environment, prefixes their output with the rank, forwards signals,
// and on the first failure stops the whole gang and reports the root cause —
// the duties of torchrun's elastic agent, without its 30-minute hangs.
package launch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strconv"
	"time"

	"cohort/dist"
	"cohort/dist/natsserver"
	"cohort/dist/rendezvous"
)

// ErrOptions marks bad launcher flags.
var ErrOptions = errors.New("launch: bad options")

// Options configure one node's launcher.
type Options struct {
	NProcPerNode     int
	NNodes, NodeRank int
	// RdzvEndpoint names an existing NATS server (nats://host:port); empty
	// means node 0 starts an embedded one on RdzvHost:RdzvPort.
	RdzvEndpoint string
	RdzvHost     string
	RdzvPort     int
	// RdzvID is the run's namespace; every node must give the same one.
	RdzvID      string
	RdzvTimeout time.Duration
	MaxRestarts int
	// Token is the job secret (COHORT_JOB_TOKEN); generated when empty on
	// a single node.
	Token string
	// RdzvUser and RdzvPassword, or RdzvCreds (a NATS credentials file),
	// are the job's own user on the external server RdzvEndpoint; the
	// workers present it instead of the token.
	RdzvUser, RdzvPassword, RdzvCreds string
	// Grace is how long workers get between SIGTERM and SIGKILL.
	Grace time.Duration
	// Binary is the worker executable (normally this cohort binary).
	Binary     string
	WorkerArgs []string
	// Env is the workers' base environment (normally os.Environ()).
	Env            []string
	Stdout, Stderr io.Writer
	// PassRank0Stderr hands local rank 0 the launcher's own stderr (a
	// terminal) unprefixed, so its progress bar works.
	PassRank0Stderr bool
	// Signals delivers signals to forward to the workers (SIGINT, SIGTERM,
	// SIGUSR1); nil means none.
	Signals <-chan os.Signal
	// GPUs are the device ids to hand out, one per worker, as
	// CUDA_VISIBLE_DEVICES (DetectGPUs); none are set when there are fewer
	// GPUs than workers.
	GPUs []string
}

func (o *Options) check() error {
	switch {
	case o.NProcPerNode < 1:
		return fmt.Errorf("%w: --nproc-per-node %d must be ≥ 1", ErrOptions, o.NProcPerNode)
	case o.NNodes < 1 || o.NodeRank < 0 || o.NodeRank >= o.NNodes:
		return fmt.Errorf("%w: --node-rank %d must be in [0, --nnodes %d)", ErrOptions, o.NodeRank, o.NNodes)
	case len(o.WorkerArgs) == 0:
		return fmt.Errorf("%w: no worker command; usage: cohort launch --nproc-per-node N -- train -c cfg.yaml", ErrOptions)
	case o.MaxRestarts < 0:
		return fmt.Errorf("%w: --max-restarts %d must be ≥ 0", ErrOptions, o.MaxRestarts)
	case (o.RdzvUser != "" || o.RdzvCreds != "") && o.RdzvEndpoint == "":
		return fmt.Errorf("%w: --rdzv-user and --rdzv-creds are for an external NATS server: add --rdzv-endpoint (the embedded one knows only COHORT_JOB_TOKEN)", ErrOptions)
	}
	if err := (rendezvous.Auth{User: o.RdzvUser, Password: o.RdzvPassword, CredsFile: o.RdzvCreds}).Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if o.NNodes > 1 {
		switch {
		case o.RdzvID == "":
			return fmt.Errorf("%w: --nnodes %d needs --rdzv-id, the same on every node", ErrOptions, o.NNodes)
		case o.Token == "":
			return fmt.Errorf("%w: --nnodes %d needs the same COHORT_JOB_TOKEN on every node (e.g. export COHORT_JOB_TOKEN=$(openssl rand -hex 16))", ErrOptions, o.NNodes)
		case o.NodeRank > 0 && o.RdzvEndpoint == "":
			return fmt.Errorf("%w: node %d needs --rdzv-endpoint nats://<node 0 host>:<port>", ErrOptions, o.NodeRank)
		case o.NodeRank == 0 && o.RdzvEndpoint == "" && o.RdzvPort == 0:
			return fmt.Errorf("%w: node 0 of %d needs --rdzv-port (and --rdzv-host) so the other nodes can reach its rendezvous server", ErrOptions, o.NNodes)
		}
	}
	return nil
}

// Run launches the node's workers and supervises them until they all exit,
// restarting the gang up to MaxRestarts times. It returns the exit code the
// launcher should exit with.
func Run(ctx context.Context, o Options) (int, error) {
	if err := o.check(); err != nil {
		return 0, err
	}
	if o.Token == "" {
		o.Token = randomHex(16)
	}
	if o.RdzvID == "" {
		o.RdzvID = "run-" + randomHex(6)
	}
	url := o.RdzvEndpoint
	if url == "" {
		srv, err := natsserver.Start(natsserver.Options{Host: o.RdzvHost, Port: o.RdzvPort, Token: o.Token})
		if err != nil {
			return 0, fmt.Errorf("rendezvous server: %w", err)
		}
		defer srv.Shutdown()
		url = srv.URL()
	}
	for attempt := 0; ; attempt++ {
		env := o.workerEnv(url, attempt)
		g, err := startGang(o, env)
		if err != nil {
			return 0, err
		}
		res := g.supervise(ctx, o)
		if res.root == nil {
			return res.code, nil
		}
		fmt.Fprint(o.Stderr, res.root.summary(attempt, o.MaxRestarts))
		// Bad input (exit 2) fails the same way every time: no restart.
		if res.byUser || attempt >= o.MaxRestarts || res.code == ExitUsage {
			return res.code, nil
		}
		fmt.Fprintf(o.Stderr, "cohort launch: restarting the gang from the newest checkpoint (restart %d of %d)\n", attempt+1, o.MaxRestarts)
	}
}

// workerEnv is the environment shared by this node's workers for one
// attempt; each attempt gets its own run namespace so stale messages of
// the previous gang cannot reach the new one.
func (o *Options) workerEnv(url string, attempt int) []string {
	env := append([]string(nil), o.Env...)
	env = append(env,
		dist.EnvRdzvURL+"="+url,
		dist.EnvToken+"="+o.Token,
		dist.EnvRunID+"="+rendezvous.AttemptID(o.RdzvID, attempt),
		dist.EnvWorldSize+"="+strconv.Itoa(o.NNodes*o.NProcPerNode),
		dist.EnvLocalWorldSize+"="+strconv.Itoa(o.NProcPerNode),
		dist.EnvNodeRank+"="+strconv.Itoa(o.NodeRank),
		"WORLD_SIZE="+strconv.Itoa(o.NNodes*o.NProcPerNode),
		"LOCAL_WORLD_SIZE="+strconv.Itoa(o.NProcPerNode),
		"GROUP_RANK="+strconv.Itoa(o.NodeRank),
	)
	if o.RdzvTimeout > 0 {
		env = append(env, dist.EnvRdzvTimeout+"="+o.RdzvTimeout.String())
	}
	for _, v := range []struct{ name, value string }{
		{dist.EnvRdzvUser, o.RdzvUser}, {dist.EnvRdzvPassword, o.RdzvPassword}, {dist.EnvRdzvCreds, o.RdzvCreds},
	} {
		if v.value != "" {
			env = append(env, v.name+"="+v.value)
		}
	}
	if attempt > 0 {
		env = append(env, "COHORT_RESUME=auto")
	}
	// Parsed: the URL may carry a user and password.
	if u, err := neturl.Parse(url); err == nil && u.Hostname() != "" {
		env = append(env, "MASTER_ADDR="+u.Hostname())
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
