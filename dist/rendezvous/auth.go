package rendezvous

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Auth is what a worker presents to the NATS server: the job token, or a
// NATS user of its own, whose permissions can confine the job to its own
// subjects on a server shared with other jobs (see Permissions). A user or
// a credentials file replaces the token towards NATS; the token still keys
// the data plane (JobSecret).
type Auth struct {
	// Token is the server's authorization token (COHORT_JOB_TOKEN).
	Token string
	// User and Password are the job's NATS user (COHORT_RDZV_USER,
	// COHORT_RDZV_PASSWORD).
	User, Password string
	// CredsFile is a NATS credentials file, a user JWT with its nkey seed,
	// for a server in operator mode (COHORT_RDZV_CREDS).
	CredsFile string
}

// Check reports credentials that contradict each other, or a credentials
// file that cannot be read: a connection attempt would fail the same way
// until the rendezvous timeout.
func (a Auth) Check() error {
	switch {
	case a.User != "" && a.CredsFile != "":
		return fmt.Errorf("%w: NATS user %q and credentials file %s exclude each other (the file names its user)", ErrInvalid, a.User, a.CredsFile)
	case a.Password != "" && a.User == "":
		return fmt.Errorf("%w: a NATS password (COHORT_RDZV_PASSWORD) without a user (COHORT_RDZV_USER)", ErrInvalid)
	case a.CredsFile != "":
		f, err := os.Open(a.CredsFile)
		if err != nil {
			return fmt.Errorf("%w: NATS credentials file: %v", ErrInvalid, err)
		}
		f.Close()
	}
	return nil
}

// checkAuth is Check plus the URL's user info, which nats.go would send
// instead of the user or credentials given apart, silently.
func (o Options) checkAuth() error {
	if err := o.Auth.Check(); err != nil {
		return err
	}
	u, err := url.Parse(o.URL)
	if err == nil && u.User != nil && (o.User != "" || o.CredsFile != "") {
		return fmt.Errorf("%w: NATS credentials both in the URL %s and in COHORT_RDZV_USER or COHORT_RDZV_CREDS: give them once", ErrInvalid, redact(o.URL))
	}
	return nil
}

// natsOptions are the nats.go options presenting a.
func (a Auth) natsOptions() []nats.Option {
	switch {
	case a.CredsFile != "":
		return []nats.Option{nats.UserCredentials(a.CredsFile)}
	case a.User != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}
	case a.Token != "":
		return []nats.Option{nats.Token(a.Token)}
	}
	return nil
}

// identity names the credentials the server judges, for messages; never
// a secret.
func (o Options) identity() string {
	if u, err := url.Parse(o.URL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return fmt.Sprintf("user %q (from the URL)", u.User.Username())
		}
		return "the token in the URL"
	}
	switch {
	case o.CredsFile != "":
		return "the user of " + o.CredsFile
	case o.User != "":
		return fmt.Sprintf("user %q", o.User)
	case o.Token != "":
		return "the job token"
	}
	return "a client without credentials"
}

// rejected says what to check when the server refuses the connection.
func (o Options) rejected() string {
	if u, err := url.Parse(o.URL); err == nil && u.User != nil {
		return "rejected " + o.identity() + ": check the user info in the rendezvous URL"
	}
	switch {
	case o.CredsFile != "":
		return "rejected the credentials in " + o.CredsFile + ": check COHORT_RDZV_CREDS (--rdzv-creds)"
	case o.User != "":
		return fmt.Sprintf("rejected user %q: check COHORT_RDZV_USER (--rdzv-user) and COHORT_RDZV_PASSWORD", o.User)
	case o.Token != "":
		return "rejected the token: check COHORT_JOB_TOKEN"
	}
	return "requires credentials: set COHORT_JOB_TOKEN, or COHORT_RDZV_USER and COHORT_RDZV_PASSWORD"
}

// redact hides the password or token in a URL's user info, since URLs end
// up in every rank's log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil && strings.Contains(raw, "@"):
		return "(a URL with user info that does not parse)"
	case err != nil || u.User == nil:
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else {
		u.User = url.User("xxxxx")
	}
	return u.String()
}
