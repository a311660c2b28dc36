package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cohort/dist"
	"cohort/dist/launch"
	"cohort/dist/slurm"
	"cohort/hooks"
)

// launchCmd is torchrun's role: spawn and supervise this node's ranks.
type launchCmd struct {
	NProcPerNode int           `name:"nproc-per-node" default:"1" help:"Workers on this node (one per GPU or CPU slot)."`
	NNodes       int           `name:"nnodes" default:"1" help:"Number of nodes, each running one cohort launch."`
	NodeRank     int           `default:"0" help:"This node's rank in [0, nnodes)."`
	RdzvEndpoint string        `placeholder:"nats://HOST:PORT" help:"Use this NATS server for rendezvous instead of starting one (required on nodes > 0)."`
	RdzvHost     string        `default:"127.0.0.1" help:"Interface node 0's embedded NATS server binds (another than loopback for multi-node; needs COHORT_JOB_TOKEN)."`
	RdzvPort     int           `default:"0" help:"Port of node 0's embedded NATS server (0: any free port; set it for multi-node)."`
	RdzvID       string        `placeholder:"ID" help:"Run namespace on the NATS server; the same on every node (default: random, single node only)."`
	RdzvTimeout  time.Duration `default:"5m" help:"How long workers wait for all ranks to join before failing, naming the missing ones."`
	RdzvUser     string        `env:"COHORT_RDZV_USER" placeholder:"USER" help:"The job's own NATS user on the --rdzv-endpoint server, password in COHORT_RDZV_PASSWORD (cohort rdzv-config prints the server's side)."`
	RdzvCreds    string        `env:"COHORT_RDZV_CREDS" placeholder:"FILE" help:"NATS credentials file (user JWT and nkey seed) for an --rdzv-endpoint server in operator mode."`
	MaxRestarts  int           `default:"0" help:"Restart the whole gang from its newest checkpoint up to K times after a failure."`
	Grace        time.Duration `default:"3s" help:"Time between SIGTERM and SIGKILL when stopping workers."`
	Worker       []string      `arg:"" passthrough:"partial" placeholder:"-- train ARGS" help:"The worker command, normally: -- train -c cfg.yaml [overrides]."`
}

// Run launches and supervises; its result is the launcher's exit code.
func (c *launchCmd) Run(io streams) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the cohort binary to spawn: %w", err)
	}
	args := c.Worker
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if err := c.fromSLURM(os.Getenv); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	code, err := launch.Run(context.Background(), launch.Options{
		NProcPerNode: c.NProcPerNode, NNodes: c.NNodes, NodeRank: c.NodeRank,
		RdzvEndpoint: c.RdzvEndpoint, RdzvHost: c.RdzvHost, RdzvPort: c.RdzvPort, RdzvID: c.RdzvID,
		RdzvTimeout: c.RdzvTimeout, MaxRestarts: c.MaxRestarts, Token: os.Getenv("COHORT_JOB_TOKEN"),
		RdzvUser: c.RdzvUser, RdzvPassword: os.Getenv(dist.EnvRdzvPassword), RdzvCreds: c.RdzvCreds,
		Grace: c.Grace, Binary: self, WorkerArgs: args, Env: os.Environ(),
		Stdout: io.Out, Stderr: io.Err, PassRank0Stderr: hooks.IsTerminal(os.Stderr), Signals: sigs,
		GPUs: launch.DetectGPUs(os.Getenv),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// exitError carries a code to exit with, already explained on stderr.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// fromSLURM fills the multi-node flags from an srun step when the launcher
// runs as one task per node (srun --ntasks-per-node=1 cohort launch …) and
// the user left them alone: node count and rank from SLURM, the rendezvous
// on the step's first node at a port derived from job and step id.
func (c *launchCmd) fromSLURM(getenv func(string) string) error {
	if !slurm.IsStep(getenv) || c.NNodes != 1 || c.NodeRank != 0 || c.RdzvEndpoint != "" {
		return nil
	}
	se, err := slurm.FromEnv(getenv)
	if err != nil {
		return err
	}
	if se.LocalWorldSize != 1 {
		return fmt.Errorf("cohort launch under srun wants one task per node (srun --ntasks-per-node=1), got %d on this node; or run srun -n N cohort train … without the launcher", se.LocalWorldSize)
	}
	if c.RdzvID == "" {
		c.RdzvID = "slurm-" + se.JobID + "-" + se.StepID
	}
	if se.NNodes == 1 {
		return nil
	}
	port := c.RdzvPort
	if port == 0 {
		port = slurm.RendezvousPort(se.JobID, se.StepID)
	}
	c.NNodes, c.NodeRank = se.NNodes, se.NodeRank
	if se.NodeRank == 0 {
		c.RdzvHost, c.RdzvPort = "0.0.0.0", port
	} else {
		c.RdzvEndpoint = fmt.Sprintf("nats://%s:%d", se.FirstHost, port)
	}
	return nil
}
