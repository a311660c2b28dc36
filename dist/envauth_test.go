package dist

import (
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"cohort/dist/rendezvous"
)

// launcherVars are a launched worker's variables.
var launcherVars = map[string]string{
	EnvRdzvURL: "nats://10.0.0.1:4222", EnvToken: "tok", EnvRunID: "job", EnvRank: "1", EnvLocalRank: "1",
	EnvWorldSize: "2", EnvLocalWorldSize: "2", EnvNodeRank: "0",
}

// slurmVars are an srun task's variables (one node, two tasks).
var slurmVars = map[string]string{
	"SLURMD_NODENAME": "vm", "SLURM_JOB_ID": "11", "SLURM_JOB_NODELIST": "vm", "SLURM_JOB_NUM_NODES": "1",
	"SLURM_LOCALID": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
	"SLURM_STEPID": "0", "SLURM_STEP_ID": "0", "SLURM_STEP_NODELIST": "vm", "SLURM_STEP_NUM_NODES": "1",
	"SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "2",
}

func TestFromEnvRdzvAuth(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "missing.creds")
	tests := []struct {
		name  string
		base  map[string]string
		extra map[string]string
		want  rendezvous.Auth
		err   string // substring of an ErrEnv error; "" for none
	}{
		{"launcher, token", launcherVars, nil, rendezvous.Auth{Token: "tok"}, ""},
		{"launcher, user", launcherVars, map[string]string{EnvRdzvUser: "alice", EnvRdzvPassword: "pw"},
			rendezvous.Auth{Token: "tok", User: "alice", Password: "pw"}, ""},
		{"launcher, password alone", launcherVars, map[string]string{EnvRdzvPassword: "pw"}, rendezvous.Auth{}, "without a user"},
		{"launcher, missing creds", launcherVars, map[string]string{EnvRdzvCreds: creds}, rendezvous.Auth{}, "credentials file"},
		{"srun, user on an external server", slurmVars, map[string]string{EnvRdzvEndpoint: "nats://n:4222", EnvRdzvUser: "alice", EnvRdzvPassword: "pw"},
			rendezvous.Auth{User: "alice", Password: "pw"}, ""},
		{"srun, user on the step's own server", slurmVars, map[string]string{EnvRdzvUser: "alice", EnvRdzvPassword: "pw"},
			rendezvous.Auth{}, "set COHORT_RDZV_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := maps.Clone(tt.base)
			maps.Copy(vars, tt.extra)
			env, err := FromEnv(func(k string) string { return vars[k] }, "")
			if tt.err != "" {
				if !errors.Is(err, ErrEnv) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("FromEnv: %v, want ErrEnv with %q", err, tt.err)
				}
				return
			}
			if err != nil || env.Auth != tt.want {
				t.Fatalf("FromEnv: auth %+v, %v, want %+v", env.Auth, err, tt.want)
			}
		})
	}
}
