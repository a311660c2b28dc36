package rendezvous

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func TestJobSecret(t *testing.T) {
	// Computed independently: Python's hmac.new(b"tok", b"cohort-data-plane|run-7", sha256).
	want := "cad485fe79154eee147dcdc760b2309a49b85bd9bc2b728011d103fca022d233"
	if got := hex.EncodeToString(JobSecret("tok", "run-7")); got != want {
		t.Fatalf("JobSecret = %s, want %s", got, want)
	}
	base := JobSecret("tok", "run-7")
	for _, other := range [][]byte{JobSecret("tok", "run-8"), JobSecret("tok2", "run-7")} {
		if bytes.Equal(base, other) {
			t.Fatal("secrets of different runs or tokens are equal")
		}
	}
}

// Without a token the data plane is keyed by the job's own NATS
// credential, so a job logged in as its own user still keeps strangers
// (who know the run id, but not the password) off its ring.
func TestDataPlaneSecretKeys(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "job.creds")
	if err := os.WriteFile(creds, []byte("seed-of-job"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auth Auth
		url  string
		key  string
	}{
		{"token wins", Auth{Token: "tok", User: "u", Password: "pw"}, "", "tok"},
		{"password", Auth{User: "u", Password: "pw"}, "nats://h:4222", "pw"},
		{"password in the URL", Auth{}, "nats://u:pw@h:4222", "pw"},
		{"creds file", Auth{CredsFile: creds}, "nats://h:4222", "seed-of-job"},
		{"nothing", Auth{}, "nats://h:4222", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DataPlaneSecret(tc.auth, tc.url, "run-7"); !bytes.Equal(got, JobSecret(tc.key, "run-7")) {
				t.Errorf("not keyed by %q", tc.key)
			}
		})
	}
}
