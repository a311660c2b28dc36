// Package dist forms the process group a training rank runs in: it finds the
// rank's place from its environment (the cohort launcher, an srun step, or a
// lone process), joins the rendezvous over NATS (dist/rendezvous), connects
// the TCP ring of the data plane (dist/collective) and watches peers'
// heartbeats so that a lost rank aborts everyone promptly. dist/launch is
// the launcher that spawns and supervises the ranks of one node.
package dist

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"cohort/dist/rendezvous"
	"cohort/dist/slurm"
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
	// EnvRdzvEndpoint names an existing NATS server for an srun step,
	// instead of the one the step's first task starts.
	EnvRdzvEndpoint = "COHORT_RDZV_ENDPOINT"
	// EnvRdzvPort overrides the port derived from the job and step ids.
	EnvRdzvPort = "COHORT_RDZV_PORT"
	// EnvAllowNoToken lets a multi-node step rendezvous without a token
	// (anyone who reaches the port could join or abort the run).
	EnvAllowNoToken = "COHORT_ALLOW_NO_TOKEN"
	// EnvRdzvUser and EnvRdzvPassword are the job's own NATS user on an
	// external server (instead of the token towards NATS), whose
	// permissions confine it to the job's subjects (cohort rdzv-config).
	EnvRdzvUser     = "COHORT_RDZV_USER"
	EnvRdzvPassword = "COHORT_RDZV_PASSWORD"
	// EnvRdzvCreds is a NATS credentials file (user JWT and nkey seed) for
	// an external server in operator mode.
	EnvRdzvCreds = "COHORT_RDZV_CREDS"
)

// Kinds of environment.
const (
	KindLauncher = "launcher"
	KindSLURM    = "slurm"
	KindNone     = "none"
)

// ErrEnv marks an environment that does not describe a valid place in a job.
var ErrEnv = errors.New("dist: bad environment")

// Env is this process's place in the job.
type Env struct {
	Kind                                             string
	Rank, LocalRank, WorldSize, LocalWorldSize, Node int
	RdzvURL, RunID                                   string
	// Auth is what the rank presents to NATS; its token also keys the
	// data plane.
	Auth        rendezvous.Auth
	RdzvTimeout time.Duration
	// ServeRdzv: this process starts the rendezvous server (under srun,
	// the first task of the first node), listening on RdzvListen.
	ServeRdzv  bool
	RdzvListen string
	// JobID is the scheduler's job id (SLURM), for requeueing.
	JobID string
}

// Single is the environment of a process training alone.
func Single() Env {
	return Env{Kind: KindNone, WorldSize: 1, LocalWorldSize: 1}
}

// FromEnv reads the environment. force is "", "launcher", "slurm" or "none"
// (the CLI's --env); "" detects: the launcher's variables first (a worker of
// `cohort launch`, even inside an srun step), then an srun step's task (not
// a batch script or an salloc shell: see slurm.IsStep), else a lone process.
func FromEnv(getenv func(string) string, force string) (Env, error) {
	kind := force
	if kind == "" {
		switch {
		case getenv(EnvRdzvURL) != "":
			kind = KindLauncher
		case slurm.IsStep(getenv):
			kind = KindSLURM
		default:
			kind = KindNone
		}
	}
	switch kind {
	case KindNone:
		return Single(), nil
	case KindLauncher:
		return launcherEnv(getenv)
	case KindSLURM:
		return slurmEnv(getenv)
	}
	return Env{}, fmt.Errorf("%w: unknown environment kind %q (want launcher, slurm or none)", ErrEnv, kind)
}

// slurmEnv places an srun task: ranks from SLURM; rendezvous on the step's
// first node, at a port derived from job and step id, served by the first
// task there — no extra service to run.
func slurmEnv(getenv func(string) string) (Env, error) {
	se, err := slurm.FromEnv(getenv)
	if err != nil {
		return Env{}, fmt.Errorf("%w: %w", ErrEnv, err)
	}
	auth, err := rdzvAuth(getenv)
	if err != nil {
		return Env{}, err
	}
	e := Env{
		Kind: KindSLURM, Rank: se.Rank, LocalRank: se.LocalRank, WorldSize: se.WorldSize,
		LocalWorldSize: se.LocalWorldSize, Node: se.NodeRank, Auth: auth,
		RunID: "slurm-" + se.JobID + "-" + se.StepID, JobID: se.JobID,
	}
	if t := getenv(EnvRdzvTimeout); t != "" {
		if e.RdzvTimeout, err = time.ParseDuration(t); err != nil {
			return Env{}, fmt.Errorf("%w: %s=%q: %v", ErrEnv, EnvRdzvTimeout, t, err)
		}
	}
	if url := getenv(EnvRdzvEndpoint); url != "" {
		e.RdzvURL = url
		return e, nil
	}
	if auth.User != "" || auth.CredsFile != "" {
		return Env{}, fmt.Errorf("%w: %s or %s name a user of an external NATS server: set %s to it (the step's own server knows only the token)",
			ErrEnv, EnvRdzvUser, EnvRdzvCreds, EnvRdzvEndpoint)
	}
	port := slurm.RendezvousPort(se.JobID, se.StepID)
	if p := getenv(EnvRdzvPort); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return Env{}, fmt.Errorf("%w: %s=%q is not a port", ErrEnv, EnvRdzvPort, p)
		}
	}
	host := se.FirstHost
	listen := "0.0.0.0"
	if se.NNodes == 1 {
		// One node: loopback is enough, and needs no token.
		host, listen = "127.0.0.1", "127.0.0.1"
	} else if e.Auth.Token == "" && getenv(EnvAllowNoToken) != "1" {
		return Env{}, fmt.Errorf("%w: a %d-node step needs COHORT_JOB_TOKEN (the same in every task; scripts/cohort.sbatch makes one) so that nobody else who reaches %s:%d can join or abort the run; set %s=1 to accept that risk",
			ErrEnv, se.NNodes, se.FirstHost, port, EnvAllowNoToken)
	}
	e.RdzvURL = "nats://" + net.JoinHostPort(host, strconv.Itoa(port))
	e.ServeRdzv = se.NodeRank == 0 && se.LocalRank == 0
	e.RdzvListen = net.JoinHostPort(listen, strconv.Itoa(port))
	return e, nil
}

func launcherEnv(getenv func(string) string) (Env, error) {
	auth, err := rdzvAuth(getenv)
	if err != nil {
		return Env{}, err
	}
	e := Env{Kind: KindLauncher, RdzvURL: getenv(EnvRdzvURL), Auth: auth, RunID: getenv(EnvRunID)}
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

// RdzvAuth is what a rank presents to NATS, from COHORT_JOB_TOKEN,
// COHORT_RDZV_USER, COHORT_RDZV_PASSWORD and COHORT_RDZV_CREDS.
func RdzvAuth(getenv func(string) string) rendezvous.Auth {
	return rendezvous.Auth{Token: getenv(EnvToken), User: getenv(EnvRdzvUser), Password: getenv(EnvRdzvPassword), CredsFile: getenv(EnvRdzvCreds)}
}

// rdzvAuth is RdzvAuth, checked.
func rdzvAuth(getenv func(string) string) (rendezvous.Auth, error) {
	a := RdzvAuth(getenv)
	if err := a.Check(); err != nil {
		return rendezvous.Auth{}, fmt.Errorf("%w: %w", ErrEnv, err)
	}
	return a, nil
}

// Hostname is os.Hostname, or "unknown".
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
