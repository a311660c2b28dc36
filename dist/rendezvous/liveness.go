package rendezvous

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// DefaultHeartbeat is the heartbeat interval when StartLiveness gets 0.
	DefaultHeartbeat = 250 * time.Millisecond
	// DefaultMissed is how many intervals of silence mean a lost peer when
	// StartLiveness gets 0: 2 s by default.
	DefaultMissed = 8
	// maxProbe bounds the round trip that checks our own link before a
	// silent peer is blamed.
	maxProbe = time.Second
)

// heartbeat says a member is alive, or with Leaving, that it exits normally.
type heartbeat struct {
	Run     string `json:"run"`
	From    string `json:"from"`
	Rank    int    `json:"rank"`
	Leaving bool   `json:"leaving,omitempty"`
}

// liveness is the watcher's state; Member.mu guards last, left and offline.
type liveness struct {
	interval, window time.Duration
	last             []time.Time // latest heartbeat per rank
	left             []bool      // ranks that said they are leaving
	offline          time.Time   // when our connection was first seen down
	stop             chan struct{}
	wg               sync.WaitGroup
}

// StartLiveness publishes this member's heartbeat every interval and watches
// everyone's. onLost is called once, on its own goroutine, with the first
// problem: *LostError for a peer silent for interval×missed, *AbortError for
// an abort from any member, or an ErrDisconnected error when this member's
// own NATS connection stays down that long. Call it right after Join: peers
// that start watching first count the gap as silence. Later calls do nothing.
func (m *Member) StartLiveness(interval time.Duration, missed int, onLost func(error)) {
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	if missed <= 0 {
		missed = DefaultMissed
	}
	m.mu.Lock()
	if m.live != nil || m.closed {
		m.mu.Unlock()
		return
	}
	l := &liveness{
		interval: interval,
		window:   interval * time.Duration(missed),
		last:     make([]time.Time, len(m.peers)),
		left:     make([]bool, len(m.peers)),
		stop:     make(chan struct{}),
	}
	now := time.Now()
	for i := range l.last {
		l.last[i] = now
	}
	m.live, m.onLost = l, onLost
	if m.early != nil {
		m.reportLocked(m.early)
	}
	m.mu.Unlock()
	l.wg.Add(2)
	go m.beat(l)
	go m.watch(l)
}

// subscribeLiveness listens for heartbeats and aborts; Join calls it before
// the rendezvous so that nothing sent after any member joined is missed.
func (m *Member) subscribeLiveness() error {
	for name, cb := range map[string]nats.MsgHandler{"hb": m.onHeartbeat, "abort": m.onAbort} {
		if _, err := m.nc.Subscribe(subject(m.run, name), cb); err != nil {
			return fmt.Errorf("rendezvous %s: subscribe %s: %w", m.run, name, err)
		}
	}
	return nil
}

func (l *liveness) halt() {
	close(l.stop)
	l.wg.Wait()
}

// beat publishes heartbeats. It is apart from watch, whose probe of the
// server may block: our heartbeats must not pause while we judge others.
func (m *Member) beat(l *liveness) {
	defer l.wg.Done()
	l.every(func() {
		// A failed publish means we are offline, which watch detects.
		_ = m.publishHeartbeat(false)
	})
}

// watch checks peers and the connection every interval.
func (m *Member) watch(l *liveness) {
	defer l.wg.Done()
	l.every(func() {
		if err := m.check(l); err != nil {
			m.report(err)
		}
	})
}

// every runs f now and then every interval until halt.
func (l *liveness) every(f func()) {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		f()
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
	}
}

// check returns the first problem it sees, or nil.
func (m *Member) check(l *liveness) error {
	now, connected := time.Now(), m.nc.IsConnected()
	m.mu.Lock()
	if m.silenced {
		m.mu.Unlock()
		return nil
	}
	lost, silence := l.scan(now, connected, m.rank)
	connErr := m.connErr
	m.mu.Unlock()
	switch {
	case !connected && silence > 0:
		msg := fmt.Sprintf("rendezvous %s: no connection to NATS at %s for %.1fs", m.run, m.url, silence.Seconds())
		if connErr != nil {
			msg += "; last error: " + connErr.Error()
		}
		return fail(msg, ErrDisconnected, connErr)
	case lost < 0:
		return nil
	}
	// Every peer falls silent when our own link dies without a TCP reset;
	// blame the peer only if the server still answers us.
	if err := m.nc.FlushTimeout(min(l.window, maxProbe)); err != nil {
		return fail(fmt.Sprintf("rendezvous %s: NATS at %s stopped answering (while rank %d was silent for %.1fs): %v",
			m.run, m.url, lost, silence.Seconds(), err), ErrDisconnected, err)
	}
	p := m.peers[lost]
	return &LostError{Rank: lost, Host: p.Host, PID: p.PID, Reason: fmt.Sprintf("no heartbeat for %.1fs", silence.Seconds())}
}

// scan finds the lowest silent rank, with its silence, or -1. Offline, it
// returns how long we have been offline once that exceeds the window; back
// online, everyone gets a fresh window, since their heartbeats could not
// reach us meanwhile.
func (l *liveness) scan(now time.Time, connected bool, self int) (int, time.Duration) {
	if !connected {
		if l.offline.IsZero() {
			l.offline = now
		}
		if d := now.Sub(l.offline); d > l.window {
			return -1, d
		}
		return -1, 0
	}
	if !l.offline.IsZero() {
		l.offline = time.Time{}
		for i := range l.last {
			l.last[i] = now
		}
		return -1, 0
	}
	for r, t := range l.last {
		if r != self && !l.left[r] && now.Sub(t) > l.window {
			return r, now.Sub(t)
		}
	}
	return -1, 0
}

func (m *Member) publishHeartbeat(leaving bool) error {
	data, err := json.Marshal(heartbeat{Run: m.run, From: m.id, Rank: m.rank, Leaving: leaving})
	if err != nil {
		return err
	}
	return m.nc.Publish(subject(m.run, "hb"), data)
}

func (m *Member) onHeartbeat(msg *nats.Msg) {
	var hb heartbeat
	if json.Unmarshal(msg.Data, &hb) != nil || hb.Run != m.run {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Before StartLiveness there is nothing to track; a sender that is not
	// the member at its rank is a stale process of an earlier attempt.
	if m.live == nil || hb.Rank < 0 || hb.Rank >= len(m.peers) || m.peers[hb.Rank].ID != hb.From {
		return
	}
	if hb.Leaving {
		m.live.left[hb.Rank] = true
	} else {
		m.live.last[hb.Rank] = time.Now()
	}
}

func (m *Member) onAbort(msg *nats.Msg) {
	var a abortMsg
	if json.Unmarshal(msg.Data, &a) != nil || a.Run != m.run || a.From == m.id {
		return
	}
	// Any process of the run may abort it, a launcher included (rank -1).
	m.report(&AbortError{Rank: a.Rank, Host: a.Host, Reason: a.Reason})
}
