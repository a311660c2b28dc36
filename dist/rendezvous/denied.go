package rendezvous

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

// violation picks the operation and subject out of the server's
// "Permissions Violation for Subscription to "cohort.x.hb"".
var violation = regexp.MustCompile(`Permissions Violation for (Publish to|Subscription to|Publish with Reply of) "([^"]*)"`)

// denialOps turns the server's wording into the client's operation.
var denialOps = map[string]string{
	"Publish to":            "publish to",
	"Subscription to":       "subscribe to",
	"Publish with Reply of": "publish with the reply subject",
}

// permissionError explains a subject the server denied. The server only
// reports the denial, asynchronously; waiting on instead would end in a
// rendezvous timeout that names missing ranks, not the cause.
func (m *Member) permissionError(err error) error {
	what := "use one of the run's subjects"
	if s := violation.FindStringSubmatch(err.Error()); s != nil {
		what = denialOps[s[1]] + " " + strconv.Quote(s[2])
	}
	return fail(fmt.Sprintf("rendezvous %s: NATS at %s denied %s: %s lacks permission on %s, which holds all the run's subjects and its inbox prefix %s; allow it to publish and subscribe there (cohort rdzv-config prints the server's authorization block for a job)",
		m.run, m.url, what, m.identity, pattern(m.run), inboxPrefix(m.run)), ErrPermission, err)
}

// whileAllowed is ctx, ended early by the server's first denial of one of
// the run's subjects, which context.Cause then returns; call stop when done.
func (m *Member) whileAllowed(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	unwatch := context.AfterFunc(m.denied, func() { cancel(context.Cause(m.denied)) })
	return ctx, func() {
		unwatch()
		cancel(nil)
	}
}

// denial is the server's first denial of one of the run's subjects, or nil.
func (m *Member) denial() error {
	if m.denied.Err() == nil {
		return nil
	}
	return context.Cause(m.denied)
}
