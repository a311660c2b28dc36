package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"cohort/cuda"
	"cohort/dist"
	"cohort/dist/collective"
	"cohort/dist/rendezvous"
	"cohort/engine/config"
	"cohort/engine/cpu"
	"cohort/engine/data"
)

// doctorCmd checks what a job will need before it burns an allocation.
type doctorCmd struct {
	Config       []string      `short:"c" name:"config" placeholder:"FILE" help:"Also check the datasets this config reads."`
	Overrides    []string      `arg:"" optional:"" placeholder:"KEY=VALUE" help:"Overrides for the config."`
	RdzvEndpoint string        `placeholder:"nats://HOST:PORT" help:"NATS server to probe (default: the one this environment would use)."`
	Timeout      time.Duration `default:"3s" help:"How long to try reaching NATS."`
	DataRoot     string        `env:"COHORT_DATA_DIR" placeholder:"DIR" help:"Where MNIST lives when dataset.*.root is empty."`
	Env          string        `name:"env" enum:",launcher,slurm,none" default:"" help:"Environment kind to assume (empty detects)."`
}

// errDoctor marks a failed check (exit code 2).
var errDoctor = errors.New("doctor found problems")

// check is one line of the report.
type check struct {
	name string
	err  error
	info string
}

// Run performs every check and prints one line each.
func (c *doctorCmd) Run(io streams) error {
	var checks []check
	env, err := dist.FromEnv(os.Getenv, c.Env)
	if err != nil {
		checks = append(checks, check{name: "environment", err: err})
	} else {
		checks = append(checks, check{name: "environment", info: fmt.Sprintf("%s: rank %d of %d, local rank %d of %d", env.Kind, env.Rank, env.WorldSize, env.LocalRank, env.LocalWorldSize)})
	}
	url := c.RdzvEndpoint
	if url == "" {
		url = env.RdzvURL
	}
	switch {
	case url == "":
		checks = append(checks, check{name: "rendezvous", info: "none needed (single process); pass --rdzv-endpoint to probe a server"})
	case env.ServeRdzv && c.RdzvEndpoint == "":
		checks = append(checks, check{name: "rendezvous", info: "this task would start the server at " + env.RdzvListen})
	default:
		auth, accepted := dist.RdzvAuth(os.Getenv), "token accepted"
		if auth.User != "" || auth.CredsFile != "" {
			accepted = "NATS user accepted"
		}
		if err := rendezvous.Probe(url, auth, c.Timeout); err != nil {
			checks = append(checks, check{name: "rendezvous", err: err})
		} else {
			checks = append(checks, check{name: "rendezvous", info: url + " reachable, " + accepted})
		}
	}
	checks = append(checks, dataPlaneCheck(url))
	checks = append(checks, check{name: "cpu", info: fmt.Sprintf("BLAS %s", cpu.BLASName)})
	checks = append(checks, check{name: "gpu", info: cuda.Describe()})
	checks = append(checks, c.datasetChecks()...)
	failed := 0
	for _, ch := range checks {
		if ch.err != nil {
			failed++
			fmt.Fprintf(io.Out, "FAIL %-11s %v\n", ch.name, ch.err)
		} else {
			fmt.Fprintf(io.Out, "ok   %-11s %s\n", ch.name, ch.info)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %w: %d of %d checks failed", errUsage, errDoctor, failed, len(checks))
	}
	return nil
}

// dataPlaneCheck binds a data-plane port where a rank would: on the
// address dist.Join picks, or loopback for a lone process.
func dataPlaneCheck(rdzvURL string) check {
	host := "127.0.0.1"
	if rdzvURL != "" || os.Getenv(dist.EnvDataHost) != "" {
		h, err := dist.DataHost(rdzvURL)
		if err != nil {
			return check{name: "data plane", err: err}
		}
		host = h
	}
	ln, err := collective.Listen(net.JoinHostPort(host, "0"))
	if err != nil {
		return check{name: "data plane", err: fmt.Errorf("cannot listen on %s: %w (set %s)", host, err, dist.EnvDataHost)}
	}
	defer ln.Close()
	return check{name: "data plane", info: "can listen on " + ln.Addr().String()}
}

// datasetChecks loads every dataset the config names.
func (c *doctorCmd) datasetChecks() []check {
	if len(c.Config) == 0 {
		return nil
	}
	cfg, err := config.Load(c.Config, c.Overrides)
	if err != nil {
		return []check{{name: "config", err: err}}
	}
	out := []check{{name: "config", info: fmt.Sprintf("%s: task %q", strings.Join(c.Config, ", "), cfg.Name)}}
	root, err := dataRoot(c.DataRoot)
	if err != nil {
		return append(out, check{name: "dataset", err: err})
	}
	for _, split := range []struct {
		name string
		ds   *config.Dataset
	}{{"train", cfg.Dataset.Train}, {"test", cfg.Dataset.Test}} {
		if split.ds == nil || split.ds.Name != "mnist" {
			continue
		}
		dir := split.ds.Root
		if dir == "" {
			dir = root
		}
		d, err := data.LoadMNIST(dir, split.name == "train")
		if err != nil {
			out = append(out, check{name: "dataset", err: fmt.Errorf("%s: %w", split.name, err)})
			continue
		}
		out = append(out, check{name: "dataset", info: fmt.Sprintf("%s: mnist in %s, %d samples", split.name, dir, d.Len())})
	}
	return out
}
