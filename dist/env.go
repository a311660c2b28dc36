// Package dist forms the process group a training rank runs in: it finds the
// rank's place from its environment (the cohort launcher; SLURM later; or a
// lone process), joins the rendezvous over NATS (dist/rendezvous), connects
// the TCP ring of the data plane (dist/collective) and watches peers'
// heartbeats so that a lost rank aborts everyone promptly. dist/launch is
// the launcher that spawns and supervises the ranks of one node.
package dist

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Environment variables the launcher sets for each worker, besides
// torchrun's RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and GROUP_RANK.
const (
	EnvRdzvURL        = "COHORT_RDZV_URL"
	EnvToken          = "COHORT_JOB_TOKEN"
	EnvRunID          = "COHORT_RUN_ID"
	EnvRank           = "COHORT_RANK"
	EnvLocalRank      = "COHORT_LOCAL_RANK"
	EnvWorldSize      = "COHORT_WORLD_SIZE"
	EnvLocalWorldSize = "COHORT_LOCAL_WORLD_SIZE"
	EnvNodeRank       = "COHORT_NODE_RANK"
	EnvRdzvTimeout    = "COHORT_RDZV_TIMEOUT"
	// EnvDataHost overrides the address this rank's data plane listens on
	// and publishes (default: the local address that routes to NATS).
	EnvDataHost = "COHORT_DATA_HOST"
)

// Kinds of environment.
const (
	KindLauncher = "launcher"
	KindNone     = "none"
)

// ErrEnv marks an environment that does not describe a valid place in a job.
var ErrEnv = errors.New("dist: bad environment")

// Env is this process's place in the job.
type Env struct {
	Kind                                             string
	Rank, LocalRank, WorldSize, LocalWorldSize, Node int
	RdzvURL, Token, RunID                            string
	RdzvTimeout                                      time.Duration
}

// Single is the environment of a process training alone.
func Single() Env {
	return Env{Kind: KindNone, WorldSize: 1, LocalWorldSize: 1}
}

// FromEnv reads the environment. force is "", "launcher" or "none" (the
// CLI's --env); "" detects.
func FromEnv(getenv func(string) string, force string) (Env, error) {
	kind := force
	if kind == "" {
		switch {
		case getenv(EnvRdzvURL) != "":
			kind = KindLauncher
		case getenv("SLURM_NTASKS") != "" && getenv("SLURM_NTASKS") != "1" && getenv("SLURM_PROCID") != "":
			return Env{}, fmt.Errorf("%w: this looks like one of %s SLURM tasks (SLURM_PROCID=%s), but srun support is not built yet; run `srun --ntasks-per-node=1 cohort launch --nproc-per-node N …` per node, or pass --env none to train each task alone",
				ErrEnv, getenv("SLURM_NTASKS"), getenv("SLURM_PROCID"))
		default:
			kind = KindNone
		}
	}
	switch kind {
	case KindNone:
		return Single(), nil
	case KindLauncher:
		return launcherEnv(getenv)
	}
	return Env{}, fmt.Errorf("%w: unknown environment kind %q (want launcher or none)", ErrEnv, kind)
}

func launcherEnv(getenv func(string) string) (Env, error) {
	e := Env{Kind: KindLauncher, RdzvURL: getenv(EnvRdzvURL), Token: getenv(EnvToken), RunID: getenv(EnvRunID)}
	ints := []struct {
		name string
		dst  *int
	}{
		{EnvRank, &e.Rank}, {EnvLocalRank, &e.LocalRank}, {EnvWorldSize, &e.WorldSize},
		{EnvLocalWorldSize, &e.LocalWorldSize}, {EnvNodeRank, &e.Node},
	}
	for _, v := range ints {
		n, err := strconv.Atoi(getenv(v.name))
		if err != nil {
			return Env{}, fmt.Errorf("%w: %s=%q is not an integer (is this process started by cohort launch?)", ErrEnv, v.name, getenv(v.name))
		}
		*v.dst = n
	}
	if e.WorldSize < 1 || e.Rank < 0 || e.Rank >= e.WorldSize || e.LocalRank < 0 || e.LocalRank >= e.LocalWorldSize {
		return Env{}, fmt.Errorf("%w: rank %d / world %d, local rank %d / local world %d are inconsistent", ErrEnv, e.Rank, e.WorldSize, e.LocalRank, e.LocalWorldSize)
	}
	if e.RunID == "" {
		return Env{}, fmt.Errorf("%w: %s is empty", ErrEnv, EnvRunID)
	}
	if t := getenv(EnvRdzvTimeout); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return Env{}, fmt.Errorf("%w: %s=%q: %v", ErrEnv, EnvRdzvTimeout, t, err)
		}
		e.RdzvTimeout = d
	}
	return e, nil
}

// Hostname is os.Hostname, or "unknown".
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
