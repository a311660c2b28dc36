package rendezvous

import (
	"crypto/hmac"
	"crypto/sha256"
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
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("cohort-data-plane|" + runID))
	return mac.Sum(nil)
}
