package main

import (
	"fmt"

	"cohort/dist/rendezvous"
)

// rdzvConfigCmd prints the nats-server side of a job's own NATS user, so
// that jobs sharing one server cannot see each other's subjects.
type rdzvConfigCmd struct {
	RdzvID       string `required:"" placeholder:"ID" help:"The job's --rdzv-id (under SLURM: slurm-<job id>-<step id>)."`
	RdzvUser     string `required:"" env:"COHORT_RDZV_USER" placeholder:"USER" help:"The job's NATS user."`
	RdzvPassword string `required:"" env:"COHORT_RDZV_PASSWORD" placeholder:"PASSWORD" help:"Its password (prefer the environment variable: arguments are visible to other users)."`
	MaxRestarts  int    `default:"0" help:"The job's --max-restarts: each restart rendezvouses under an ID of its own."`
}

// Run prints the authorization block.
func (c *rdzvConfigCmd) Run(io streams) error {
	conf, err := rendezvous.AuthorizationConfig(rendezvous.JobUser{
		User: c.RdzvUser, Password: c.RdzvPassword, RunID: c.RdzvID, Restarts: c.MaxRestarts,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	_, err = fmt.Fprint(io.Out, conf)
	return err
}
