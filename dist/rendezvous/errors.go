package rendezvous

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid reports bad Options or arguments.
	ErrInvalid = errors.New("rendezvous: invalid argument")
	// ErrTimeout reports a rendezvous or exchange that did not complete in
	// time, including a NATS server that never became reachable.
	ErrTimeout = errors.New("rendezvous: timed out")
	// ErrAuth reports a NATS server that rejected the credentials: the
	// token, the user and password, or the credentials file.
	ErrAuth = errors.New("rendezvous: credentials rejected")
	// ErrPermission reports a NATS server that denied the job's user one
	// of the run's subjects (see Permissions).
	ErrPermission = errors.New("rendezvous: permission denied")
	// ErrConflict reports workers that cannot form one run: a rank claimed
	// twice, a different world size, more workers than the world size.
	ErrConflict = errors.New("rendezvous: conflicting workers")
	// ErrDisconnected reports a NATS connection that stayed down longer
	// than the liveness window.
	ErrDisconnected = errors.New("rendezvous: disconnected from NATS")
)

// failure is an error whose text is written for people, and which still
// matches its sentinel and cause with errors.Is.
type failure struct {
	msg   string
	wraps []error
}

func (f *failure) Error() string   { return f.msg }
func (f *failure) Unwrap() []error { return f.wraps }

// fail builds a failure matching every non-nil error in wraps.
func fail(msg string, wraps ...error) error {
	f := &failure{msg: msg}
	for _, w := range wraps {
		if w != nil {
			f.wraps = append(f.wraps, w)
		}
	}
	return f
}

// LostError is passed to the liveness callback when a peer stops
// heartbeating without having left.
type LostError struct {
	Rank   int    // the lost peer's rank
	Host   string // its hostname
	PID    int    // its process id
	Reason string // what gave it away: "no heartbeat for 2.0s"
}

// Error says which rank was lost and why.
func (e *LostError) Error() string {
	return fmt.Sprintf("rank %d on %s (pid %d) lost: %s", e.Rank, e.Host, e.PID, e.Reason)
}

// AbortError is passed to the liveness callback when a peer (or, with Rank
// -1, another process of the run such as a launcher) aborts the run.
type AbortError struct {
	Rank   int    // the aborting member's rank, -1 for a non-member
	Host   string // its hostname
	Reason string // why it aborted
}

// Error says which rank aborted and why.
func (e *AbortError) Error() string {
	return fmt.Sprintf("rank %d on %s aborted the run: %s", e.Rank, e.Host, e.Reason)
}
