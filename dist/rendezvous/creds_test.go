package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// operatorServer runs nats-server in operator mode with one account and
// writes a credentials file for a user of it allowed Permissions(run, 0).
func operatorServer(t *testing.T, run string) (url, credsFile string) {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	operator, err := nkeys.CreateOperator()
	must(err)
	opPub, err := operator.PublicKey()
	must(err)
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(operator)
	must(err)
	account, err := nkeys.CreateAccount()
	must(err)
	accPub, err := account.PublicKey()
	must(err)
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(operator)
	must(err)
	user, err := nkeys.CreateUser()
	must(err)
	userPub, err := user.PublicKey()
	must(err)
	claims := jwt.NewUserClaims(userPub)
	allow, err := Permissions(run, 0)
	must(err)
	claims.Pub.Allow.Add(allow...)
	claims.Sub.Allow.Add(allow...)
	userJWT, err := claims.Encode(account)
	must(err)
	seed, err := user.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)

	credsFile = filepath.Join(dir, "job.creds")
	must(os.WriteFile(credsFile, creds, 0o600))
	opFile := filepath.Join(dir, "operator.jwt")
	must(os.WriteFile(opFile, []byte(opJWT), 0o600))
	conf := filepath.Join(dir, "nats.conf")
	must(os.WriteFile(conf, fmt.Appendf(nil, "operator: %q\nresolver: MEMORY\nresolver_preload: { %s: %q }\n", opFile, accPub, accJWT), 0o600))
	url, _ = startExternal(t, "-c", conf)
	return url, credsFile
}

// A job presents a credentials file; its user's JWT carries the job's
// permissions, which the server enforces like a configured user's.
func TestCredsFile(t *testing.T) {
	url, creds := operatorServer(t, "jobJ")
	opts := fixed(url, "jobJ", 2)
	for i := range opts {
		opts[i].CredsFile = creds
	}
	checkAgreement(t, mustJoinAll(t, opts), opts)

	other := worker(url, "jobK", 2, 0, 0)
	other.CredsFile = creds
	_, err := Join(context.Background(), other)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "the user of "+creds+" lacks permission on cohort.jobK.>") {
		t.Fatalf("Join of another run with the job's credentials: %v, want ErrPermission", err)
	}

	noCreds := worker(url, "jobJ", 1, 0, 0)
	_, err = Join(context.Background(), noCreds)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Join with a token against an operator-mode server: %v, want ErrAuth", err)
	}
}
