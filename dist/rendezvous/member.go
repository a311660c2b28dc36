package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// flushTimeout bounds how long Abort and Leave wait for the server to take
// their message.
const flushTimeout = 2 * time.Second

// Member is this worker's place in a joined run. Its methods are safe for
// concurrent use.
type Member struct {
	run      string
	url      string // redacted, for messages
	identity string // the credentials presented, for messages
	timeout  time.Duration
	nc       *nats.Conn
	id       string // this worker's random ID
	// denied ends, with the error as its cause, at the server's first
	// denial of one of the run's subjects.
	denied context.Context
	deny   context.CancelCauseFunc
	// peers and rank are set once the join completes, before Join returns.
	peers []Peer
	rank  int

	mu        sync.Mutex
	exchanges map[string]int // calls so far per Exchange key
	live      *liveness      // nil until StartLiveness
	onLost    func(error)
	early     error // an abort that came before StartLiveness
	connErr   error // the connection's latest error, for the outage report
	silenced  bool  // after a report, Abort or Leave: onLost stays quiet
	closed    bool
	leaveOnce sync.Once
}

// Rank is this worker's global rank.
func (m *Member) Rank() int { return m.rank }

// Peers lists every member, indexed by rank (this worker included).
func (m *Member) Peers() []Peer { return append([]Peer(nil), m.peers...) }

// Conn is the member's NATS connection, for other control traffic of the
// run; Leave closes it.
func (m *Member) Conn() *nats.Conn { return m.nc }

// abortMsg tells the run to stop.
type abortMsg struct {
	Run    string `json:"run"`
	From   string `json:"from"`
	Rank   int    `json:"rank"`
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// maxReason keeps an abort message far below the server's payload limit.
const maxReason = 4096

// Abort tells every member at once that the run must stop; their liveness
// callbacks receive an *AbortError with reason. This member's own callback
// stays quiet from now on: the fallout of its abort is not news to it.
func (m *Member) Abort(reason string) error {
	m.mu.Lock()
	m.silenced = true
	m.mu.Unlock()
	return publishAbort(m.nc, abortMsg{Run: m.run, From: m.id, Rank: m.rank, Host: m.peers[m.rank].Host, Reason: reason})
}

// AbortRun aborts run runID from a process that is not a member, such as a
// launcher that saw a worker die: every member's liveness callback receives
// an *AbortError with Rank -1, host and reason.
func AbortRun(nc *nats.Conn, runID, host, reason string) error {
	if !namePattern.MatchString(runID) {
		return fmt.Errorf("%w: run ID %q must match %s", ErrInvalid, runID, namePattern)
	}
	return publishAbort(nc, abortMsg{Run: runID, Rank: -1, Host: host, Reason: reason})
}

// publishAbort sends a and waits until the server has it.
func publishAbort(nc *nats.Conn, a abortMsg) error {
	if len(a.Reason) > maxReason {
		a.Reason = a.Reason[:maxReason]
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("rendezvous %s: abort: %w", a.Run, err)
	}
	if err := nc.Publish(subject(a.Run, "abort"), data); err != nil {
		return fmt.Errorf("rendezvous %s: abort: %w", a.Run, err)
	}
	if !nc.IsConnected() {
		// The server is gone: waiting for it only delays the exit.
		return fmt.Errorf("rendezvous %s: abort not delivered: no connection to NATS", a.Run)
	}
	if err := nc.FlushTimeout(flushTimeout); err != nil {
		return fmt.Errorf("rendezvous %s: abort: flush: %w", a.Run, err)
	}
	return nil
}

// Leave ends membership cleanly: it stops liveness, tells peers this worker
// is leaving (so they do not count a normal exit as a loss) and closes the
// connection. Later calls do nothing.
func (m *Member) Leave() {
	m.leaveOnce.Do(func() {
		m.mu.Lock()
		m.silenced, m.closed = true, true
		l := m.live
		m.mu.Unlock()
		if l != nil {
			l.halt()
		}
		// Offline, there is nobody to tell: peers see silence, the truth.
		if m.nc.IsConnected() && m.publishHeartbeat(true) == nil {
			_ = m.nc.FlushTimeout(flushTimeout)
		}
		m.nc.Close()
	})
}

// newMember is the member that o's worker will be once joined, with id.
func newMember(o Options, id string) *Member {
	m := &Member{run: o.RunID, url: redact(o.URL), identity: o.identity(), timeout: o.Timeout, id: id, exchanges: map[string]int{}}
	m.denied, m.deny = context.WithCancelCause(context.Background())
	return m
}

// noteConnError keeps the connection's latest asynchronous error (a reset,
// a slow-consumer drop) to explain an outage later. A denied subject fails
// the member at once: the round waiting on it (whileAllowed), or, once
// joined, the liveness callback.
func (m *Member) noteConnError(err error) {
	m.mu.Lock()
	m.connErr = err
	m.mu.Unlock()
	if errors.Is(err, nats.ErrPermissionViolation) {
		perr := m.permissionError(err)
		m.deny(perr)
		m.report(perr)
	}
}

// report hands err to the liveness callback, at most once, on its own
// goroutine so a slow callback never delays heartbeats.
func (m *Member) report(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reportLocked(err)
}

func (m *Member) reportLocked(err error) {
	switch {
	case m.silenced:
	case m.onLost == nil:
		if m.early == nil {
			m.early = err
		}
	default:
		m.silenced = true
		go m.onLost(err)
	}
}
