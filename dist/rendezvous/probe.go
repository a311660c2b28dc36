package rendezvous

import (
	"context"
	"time"
)

// Probe connects to the NATS server at url with token and disconnects, for
// `cohort doctor`: nil when it is reachable and accepts the token, an error
// wrapping ErrAuth for a rejected token, ErrTimeout when it stays
// unreachable for timeout (the message names the last dial error).
func Probe(url, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	o := Options{URL: url, Token: token, RunID: "doctor"}
	nc, err := dial(ctx, o, time.Now(), func(error) {})
	if err != nil {
		return err
	}
	nc.Close()
	return nil
}
