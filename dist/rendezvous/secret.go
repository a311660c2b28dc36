package rendezvous

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/url"
	"os"
)

// JobSecret is the data plane's shared secret for runID:
// HMAC-SHA256(token, "cohort-data-plane|"+runID).
//
// It is derived rather than sent: every worker already holds the job token,
// so no second secret travels over NATS or the environment; it differs per
// run, so a connection from another run that shares the token is refused;
// and HMAC is one-way, so a data-plane secret that leaks (say, from a
// peer's memory on a compromised node) does not reveal the NATS token.
func JobSecret(token, runID string) []byte {
	return jobSecret([]byte(token), runID)
}

// DataPlaneSecret is JobSecret keyed by the job's own credential: the token
// when there is one, else the NATS password (given apart or in rdzvURL),
// else the credentials file's contents (its nkey seed). A job that logs in
// as its own NATS user then keeps strangers off its data plane without
// also needing COHORT_JOB_TOKEN. An unreadable file keys nothing, as
// Auth.Check has refused it before.
func DataPlaneSecret(a Auth, rdzvURL, runID string) []byte {
	key := []byte(a.Token)
	switch {
	case a.Token != "":
	case a.Password != "":
		key = []byte(a.Password)
	case a.CredsFile != "":
		key, _ = os.ReadFile(a.CredsFile)
	default:
		if u, err := url.Parse(rdzvURL); err == nil && u.User != nil {
			p, _ := u.User.Password()
			key = []byte(p)
		}
	}
	return jobSecret(key, runID)
}

func jobSecret(key []byte, runID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("cohort-data-plane|" + runID))
	return mac.Sum(nil)
}
