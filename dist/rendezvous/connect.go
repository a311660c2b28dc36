package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// dialTimeout bounds one connection attempt, so a black-holed address
	// still leaves time for retries.
	dialTimeout = 2 * time.Second
	// maxBackoff caps the pause between connection attempts.
	maxBackoff = time.Second
)

// dial connects to o.URL, retrying until ctx ends: under a batch scheduler
// the server may come up after its workers. Rejected credentials are final.
// Errors the connection meets later go to onErr instead of stderr; a
// subject the server denies is one of them (nats.ErrPermissionViolation).
func dial(ctx context.Context, o Options, start time.Time, onErr func(error)) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { onErr(err) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				onErr(err)
			}
		}),
		nats.Name(fmt.Sprintf("cohort %s %s pid %d", o.RunID, o.Host, os.Getpid())),
		// Reconnect fast and forever: liveness, not the client, decides
		// when an outage is fatal.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond),
		nats.NoCallbacksAfterClientClose(),
		// Under the run's prefix, a job's permissions cover its inboxes.
		nats.CustomInboxPrefix(inboxPrefix(o.RunID)),
	}
	opts = append(opts, o.natsOptions()...)
	backoff := 50 * time.Millisecond
	for {
		d := &recordingDialer{Dialer: net.Dialer{Timeout: dialTimeout}}
		if dl, ok := ctx.Deadline(); ok {
			d.Timeout = max(min(d.Timeout, time.Until(dl)), time.Millisecond)
		}
		nc, err := nats.Connect(o.URL, append(opts, nats.SetCustomDialer(d))...)
		if err == nil {
			return nc, nil
		}
		if errors.Is(err, nats.ErrNoServers) && d.last != nil {
			err = d.last
		}
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, fail(fmt.Sprintf("rendezvous %s: NATS at %s %s", o.RunID, redact(o.URL), o.rejected()), ErrAuth, err)
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("rendezvous %s: NATS at %s unreachable after %s; last error: %v",
				o.RunID, redact(o.URL), time.Since(start).Round(100*time.Millisecond), err)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fail(msg, ErrTimeout, err)
			}
			return nil, fail(msg, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// recordingDialer keeps the last dial error, which nats.go reports only as
// "no servers available" when it is a refusal; the user needs the cause.
// nats.Connect dials synchronously, so reading last after it returns is safe.
type recordingDialer struct {
	net.Dialer
	last error
}

// Dial dials like net.Dialer and remembers a failure.
func (d *recordingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.Dialer.Dial(network, address)
	if err != nil {
		d.last = err
	}
	return c, err
}
