package rendezvous

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthCheck(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "job.creds")
	if err := os.WriteFile(creds, []byte("creds"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		auth Auth
		want string // substring of the error; "" for valid
	}{
		{"token", "nats://h:4222", Auth{Token: "t"}, ""},
		{"user", "nats://h:4222", Auth{Token: "t", User: "u", Password: "p"}, ""},
		{"user without password", "nats://h:4222", Auth{User: "u"}, ""},
		{"creds", "nats://h:4222", Auth{Token: "t", CredsFile: creds}, ""},
		{"user in the URL", "nats://u:p@h:4222", Auth{Token: "t"}, ""},
		{"user and creds", "nats://h:4222", Auth{User: "u", CredsFile: creds}, "exclude each other"},
		{"password alone", "nats://h:4222", Auth{Password: "p"}, "without a user"},
		{"missing creds", "nats://h:4222", Auth{CredsFile: creds + ".gone"}, "no such file"},
		{"user twice", "nats://u:p@h:4222", Auth{User: "u", Password: "p"}, "both in the URL nats://u:xxxxx@h:4222"},
		{"creds and URL user", "nats://u:p@h:4222", Auth{CredsFile: creds}, "give them once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Options{URL: tt.url, Auth: tt.auth}.checkAuth()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkAuth() = %v, want ErrInvalid with %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://t0ken@h:4222", "nats://xxxxx@h:4222"},
		{"nats://a:b@c@h:4222", "nats://a:xxxxx@h:4222"},
		{"nats://u:p@[::1:4222", "(a URL with user info that does not parse)"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
