package rendezvous

import (
	"context"
	"time"
)

// Probe connects to the NATS server at url with auth and disconnects, for
// `cohort doctor`: nil when it is reachable and accepts the credentials,
// an error wrapping ErrAuth when it rejects them, ErrTimeout when it stays
// unreachable for timeout (the message names the last dial error).
func Probe(url string, auth Auth, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	o := Options{URL: url, Auth: auth, RunID: "doctor"}
	if err := o.checkAuth(); err != nil {
		return err
	}
	nc, err := dial(ctx, o, time.Now(), func(error) {})
	if err != nil {
		return err
	}
	nc.Close()
	return nil
}
