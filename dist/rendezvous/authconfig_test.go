package rendezvous

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestAuthorizationConfig(t *testing.T) {
	one := `authorization {
  users = [
    # job jobA, 1 restart(s)
    {
      user: "alice"
      password: "pw"
      permissions: {
        publish: { allow: ["cohort.jobA.>", "cohort.jobA-r1.>"] }
        subscribe: { allow: ["cohort.jobA.>", "cohort.jobA-r1.>"] }
      }
    }
  ]
}
`
	alice := JobUser{User: "alice", Password: "pw", RunID: "jobA", Restarts: 1}
	tests := []struct {
		name  string
		users []JobUser
		want  string // "" for ErrInvalid
	}{
		{"one job", []JobUser{alice}, one},
		{"none", nil, ""},
		{"empty user", []JobUser{{Password: "pw", RunID: "j"}}, ""},
		{"empty password", []JobUser{{User: "u", RunID: "j"}}, ""},
		{"newline in password", []JobUser{{User: "u", Password: "p\nw", RunID: "j"}}, ""},
		{"user twice", []JobUser{alice, {User: "alice", Password: "x", RunID: "jobB"}}, ""},
		{"bad run ID", []JobUser{{User: "u", Password: "pw", RunID: "a.b"}}, ""},
		{"negative restarts", []JobUser{{User: "u", Password: "pw", RunID: "j", Restarts: -1}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AuthorizationConfig(tt.users...)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("AuthorizationConfig = %q, %v, want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("AuthorizationConfig =\n%s%v\nwant\n%s", got, err, tt.want)
			}
		})
	}
}

// nats-server reads the block back as the users and permissions meant,
// passwords with quotes, backslashes and dollar signs included.
func TestAuthorizationConfigParses(t *testing.T) {
	users := []JobUser{
		{User: "alice", Password: `a"b\c $HOME ${X}`, RunID: "jobA", Restarts: 2},
		{User: "bob smith", Password: "pw", RunID: "slurm-9-0"},
	}
	conf, err := AuthorizationConfig(users...)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects\n%s: %v", conf, err)
	}
	if len(opts.Users) != len(users) {
		t.Fatalf("nats-server reads %d users, want %d", len(opts.Users), len(users))
	}
	for i, u := range opts.Users {
		want, _ := Permissions(users[i].RunID, users[i].Restarts)
		p := u.Permissions
		if u.Username != users[i].User || u.Password != users[i].Password || p == nil || p.Publish == nil || p.Subscribe == nil ||
			!slices.Equal(p.Publish.Allow, want) || !slices.Equal(p.Subscribe.Allow, want) || p.Publish.Deny != nil || p.Subscribe.Deny != nil {
			t.Errorf("user %d read back as %+v with %+v, want %+v allowed %v", i, u, p, users[i], want)
		}
	}
}
