package launch

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRdzvAuthOptions(t *testing.T) {
	ok := Options{NProcPerNode: 2, NNodes: 1, WorkerArgs: []string{"train"}, RdzvEndpoint: "nats://n:4222", RdzvID: "job"}
	tests := []struct {
		name string
		edit func(*Options)
		want string // substring of an ErrOptions error; "" for valid
	}{
		{"user", func(o *Options) { o.RdzvUser, o.RdzvPassword = "alice", "pw" }, ""},
		{"user without an endpoint", func(o *Options) { o.RdzvUser, o.RdzvEndpoint = "alice", "" }, "add --rdzv-endpoint"},
		{"creds without an endpoint", func(o *Options) { o.RdzvCreds, o.RdzvEndpoint = "job.creds", "" }, "add --rdzv-endpoint"},
		{"password without a user", func(o *Options) { o.RdzvPassword = "pw" }, "without a user"},
		{"missing creds", func(o *Options) { o.RdzvCreds = "/nonexistent/job.creds" }, "credentials file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			err := o.check()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check() = %v, want ErrOptions with %q", err, tt.want)
			}
		})
	}
}

// Workers get the job's NATS user, the run ID of their attempt, and
// MASTER_ADDR even from a URL with user info.
func TestWorkerEnvRdzvAuth(t *testing.T) {
	o := Options{NProcPerNode: 2, NNodes: 1, RdzvID: "job", Token: "tok", RdzvUser: "alice", RdzvPassword: "pw", RdzvCreds: ""}
	env := o.workerEnv("nats://alice:pw@10.0.0.1:4222", 2)
	for _, want := range []string{"COHORT_RDZV_USER=alice", "COHORT_RDZV_PASSWORD=pw", "COHORT_RUN_ID=job-r2", "MASTER_ADDR=10.0.0.1"} {
		if !slices.Contains(env, want) {
			t.Errorf("worker env lacks %s: %v", want, env)
		}
	}
	if slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "COHORT_RDZV_CREDS=") }) {
		t.Errorf("worker env sets an empty COHORT_RDZV_CREDS: %v", env)
	}
}
