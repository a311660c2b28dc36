package rendezvous

import (
	"fmt"
	"strings"
	"unicode"
)

// JobUser is one job's NATS user in AuthorizationConfig.
type JobUser struct {
	// User and Password are what the job's workers present
	// (COHORT_RDZV_USER, COHORT_RDZV_PASSWORD).
	User, Password string
	// RunID is the job's --rdzv-id; Restarts its --max-restarts, since
	// each restart runs under its own ID (AttemptID).
	RunID    string
	Restarts int
}

// AuthorizationConfig is a nats-server configuration block giving each job
// its user, allowed to publish and subscribe to its own job's subjects
// (Permissions) and nothing else. A server has one authorization block:
// list every job that shares it in one call.
func AuthorizationConfig(users ...JobUser) (string, error) {
	if len(users) == 0 {
		return "", fmt.Errorf("%w: no job users", ErrInvalid)
	}
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	seen := map[string]bool{}
	for _, u := range users {
		if err := u.check(); err != nil {
			return "", err
		}
		if seen[u.User] {
			return "", fmt.Errorf("%w: NATS user %q listed twice", ErrInvalid, u.User)
		}
		seen[u.User] = true
		allow, err := Permissions(u.RunID, u.Restarts)
		if err != nil {
			return "", err
		}
		quoted := make([]string, len(allow))
		for i, p := range allow {
			quoted[i] = confString(p)
		}
		list := "[" + strings.Join(quoted, ", ") + "]"
		fmt.Fprintf(&b, "    # job %s, %d restart(s)\n", u.RunID, u.Restarts)
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: %s\n", confString(u.User), confString(u.Password))
		fmt.Fprintf(&b, "      permissions: {\n        publish: { allow: %s }\n        subscribe: { allow: %s }\n      }\n    }\n", list, list)
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func (u JobUser) check() error {
	for _, f := range []struct{ name, value string }{{"user", u.User}, {"password", u.Password}} {
		if f.value == "" {
			return fmt.Errorf("%w: job %s: empty NATS %s", ErrInvalid, u.RunID, f.name)
		}
		if strings.ContainsFunc(f.value, unicode.IsControl) {
			return fmt.Errorf("%w: job %s: NATS %s with a control character", ErrInvalid, u.RunID, f.name)
		}
	}
	return nil
}

// confString quotes s for nats-server's configuration format, whose quoted
// strings know only the escapes \\, \", \t, \n, \r and \xXX; s holds no
// control characters.
func confString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
