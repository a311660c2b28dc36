package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cohort/dist/rendezvous"
)

func TestRdzvConfig(t *testing.T) {
	want, err := rendezvous.AuthorizationConfig(rendezvous.JobUser{User: "alice", Password: "pw", RunID: "jobA", Restarts: 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		password string // COHORT_RDZV_PASSWORD
		code     int
		out      string // stdout, or a substring of stderr when code ≠ 0
	}{
		{"flags", []string{"--rdzv-id", "jobA", "--rdzv-user", "alice", "--rdzv-password", "pw", "--max-restarts", "2"}, "", 0, want},
		{"password from the environment", []string{"--rdzv-id", "jobA", "--rdzv-user", "alice", "--max-restarts", "2"}, "pw", 0, want},
		{"no password", []string{"--rdzv-id", "jobA", "--rdzv-user", "alice"}, "", ExitUsage, "empty NATS password"},
		{"bad run ID", []string{"--rdzv-id", "job.A", "--rdzv-user", "alice", "--rdzv-password", "pw"}, "", ExitUsage, `run ID "job.A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("COHORT_RDZV_PASSWORD", tt.password)
			code, stdout, stderr := cohort(append([]string{"rdzv-config"}, tt.args...)...)
			if code != tt.code || (code == 0 && stdout != tt.out) || (code != 0 && !strings.Contains(stderr, tt.out)) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d with %q", code, stdout, stderr, tt.code, tt.out)
			}
		})
	}
}

// A job launched with its own NATS user trains on a server configured by
// `cohort rdzv-config`; under a run ID its user may not use it exits 3 at
// once, naming the pattern to allow; with a wrong password it exits 3 too.
func TestRdzvUserLaunchOnExternalServer(t *testing.T) {
	bin := natsServerBinary(t)
	dir := t.TempDir()
	code, conf, stderr := cohort("rdzv-config", "--rdzv-id", "jobA", "--rdzv-user", "alice", "--rdzv-password", "alice-pw")
	if code != 0 {
		t.Fatalf("rdzv-config: exit %d: %s", code, stderr)
	}
	confFile := writeFile(t, dir, "nats.conf", conf)
	port := freePort(t)
	startNATSWith(t, bin, port, "-c", confFile)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	tests := []struct {
		name, run, password string
		code                int
		want                string // in stderr when code ≠ 0
	}{
		{"its own run", "jobA", "alice-pw", 0, ""},
		{"another run", "jobB", "alice-pw", ExitRendezvous, `user "alice" lacks permission on cohort.jobB.>`},
		{"wrong password", "jobA", "not-alice-pw", ExitRendezvous, `rejected user "alice"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stdout, stderr := launcher(t, dir, []string{"COHORT_RDZV_PASSWORD=" + tt.password},
				"--nproc-per-node", "2", "--rdzv-endpoint", "nats://"+addr, "--rdzv-user", "alice", "--rdzv-id", tt.run, "--rdzv-timeout", "1m",
				"--", "train", "-c", cfg, "num_epochs=1", "--output-dir", filepath.Join(dir, fmt.Sprint("run", i)), "--log-freq", "0")
			code := exitCodeOf(t, cmd, 2*time.Minute)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d with %q; stdout:\n%s\nstderr:\n%s", code, tt.code, tt.want, stdout, stderr)
			}
			if strings.Contains(stderr.String(), tt.password) {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}
