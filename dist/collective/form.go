package collective

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// handshakeTimeout bounds one connection's handshake, so a silent
	// connector costs one goroutine for this long and never blocks formation.
	handshakeTimeout = 10 * time.Second
	// maxPendingHandshakes bounds concurrent handshakes on the acceptor.
	maxPendingHandshakes = 16
	// redialMax caps the pause between dial attempts.
	redialMax = 500 * time.Millisecond
)

// Listen binds the data-plane address before rendezvous, so that the
// address can be published; New takes the listener over.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("collective: listen %s: %w", addr, err)
	}
	return ln, nil
}

// New connects the ring: rank r dials rank r+1 and accepts rank r-1, each
// connection mutually authenticated with the job secret. It honours ctx's
// deadline and, on failure, names the peers that are missing. New closes
// ln in every case. A group of one needs no network and ln may be nil.
func New(ctx context.Context, cfg Config, ln net.Listener) (*Group, error) {
	if ln != nil {
		defer ln.Close()
	}
	if !littleEndian() {
		return nil, ErrBigEndian
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{rank: cfg.Rank, size: cfg.Size, broken: make(chan struct{})}
	if cfg.Size == 1 {
		return g, nil
	}
	if ln == nil {
		return nil, fmt.Errorf("%w: no listener for a group of %d", ErrInvalid, cfg.Size)
	}
	send, recv, err := connect(ctx, &cfg, ln)
	if err != nil {
		return nil, err
	}
	g.ring = newRing(g, &cfg, send, recv)
	return g, nil
}

// connect dials next and accepts prev concurrently.
func connect(ctx context.Context, cfg *Config, ln net.Listener) (send, recv net.Conn, err error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn net.Conn
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := acceptPrev(fctx, cfg, ln)
		accepted <- result{c, err}
	}()
	send, dialErr := dialNext(fctx, cfg)
	if dialErr != nil {
		cancel()
	}
	acc := <-accepted
	if dialErr == nil && acc.err == nil {
		return send, acc.conn, nil
	}
	var missing []string
	if dialErr != nil {
		missing = append(missing, fmt.Sprintf("rank %d (dial %s: %v)", cfg.next(), cfg.Peers[cfg.next()], dialErr))
	} else {
		send.Close()
	}
	if acc.err != nil && (dialErr == nil || ctx.Err() != nil) {
		missing = append(missing, fmt.Sprintf("rank %d (never connected: %v)", cfg.prev(), acc.err))
	} else if acc.conn != nil {
		acc.conn.Close()
	}
	msg := fmt.Sprintf("%v: rank %d: missing %s", ErrFormation, cfg.Rank, strings.Join(missing, ", "))
	causes := []error{ErrFormation}
	for _, e := range []error{dialErr, acc.err} {
		if e != nil {
			causes = append(causes, e)
		}
	}
	return nil, nil, &formationError{msg: msg, causes: causes}
}

// formationError reads as one sentence naming the missing peers, and still
// matches ErrFormation and every cause (ErrAuth, ErrRejected, the context's
// error) with errors.Is.
type formationError struct {
	msg    string
	causes []error
}

func (e *formationError) Error() string   { return e.msg }
func (e *formationError) Unwrap() []error { return e.causes }

// dialNext dials next until a handshake succeeds, the other side refuses
// us (no retry: the secret or job differs), or ctx ends.
func dialNext(ctx context.Context, cfg *Config) (net.Conn, error) {
	addr := cfg.Peers[cfg.next()]
	var d net.Dialer
	pause := 10 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			err = handshake(ctx, conn, func() error {
				h, err := newHello(cfg)
				if err != nil {
					return err
				}
				return dialHandshake(conn, cfg.Secret, h)
			})
			if err == nil {
				return conn, nil
			}
			conn.Close()
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrRejected) {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, redialMax)
	}
}

// acceptPrev accepts connections until one proves to be prev, or ctx ends.
// Each connection is handshaken on its own goroutine, so strangers, replays
// and silent connectors cost nothing but their own attempt.
func acceptPrev(ctx context.Context, cfg *Config, ln net.Listener) (net.Conn, error) {
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(hctx, func() { ln.Close() })
	want := hello{version: protoVersion, chunkBytes: uint32(cfg.ChunkBytes), from: uint32(cfg.prev()), to: uint32(cfg.Rank), jobID: cfg.JobID}
	won := make(chan net.Conn, 1)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lastErr error
	)
	slots := make(chan struct{}, maxPendingHandshakes)
	// pending lists the connections in their handshake, oldest first: when
	// all slots are taken, one is dropped for the newcomer (see
	// evictionVictim), so silent strangers cannot hold the slots and lock
	// the real peer out (a peer sends its hello at once and finishes in a
	// round trip).
	var pending []net.Conn
	for {
		conn, err := ln.Accept()
		if err != nil {
			if hctx.Err() == nil {
				mu.Lock()
				lastErr = fmt.Errorf("accept: %w", err)
				mu.Unlock()
			}
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			if len(pending) > 0 {
				hosts := make([]string, len(pending))
				for i, c := range pending {
					hosts[i] = remoteHost(c)
				}
				v := evictionVictim(hosts)
				pending[v].Close()
				pending = slices.Delete(pending, v, v+1)
			}
			mu.Unlock()
			slots <- struct{}{} // the evicted handshake fails at once and frees its slot
		}
		mu.Lock()
		pending = append(pending, conn)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			unlist := func() {
				mu.Lock()
				if i := slices.Index(pending, conn); i >= 0 {
					pending = slices.Delete(pending, i, i+1)
				}
				mu.Unlock()
			}
			defer unlist()
			err := handshake(hctx, conn, func() error { return acceptHandshake(conn, cfg.Secret, &want) })
			if err == nil {
				unlist() // authenticated: no longer evictable
			}
			if err != nil {
				conn.Close()
				mu.Lock()
				lastErr = fmt.Errorf("refused %s: %w", conn.RemoteAddr(), err)
				mu.Unlock()
				return
			}
			select {
			case won <- conn:
				cancel() // closes the listener and interrupts the other handshakes
			default:
				conn.Close()
			}
		}()
	}
	cancel()
	stop()
	wg.Wait()
	select {
	case conn := <-won:
		return conn, nil
	default:
	}
	if lastErr == nil {
		return nil, ctx.Err()
	}
	if ctx.Err() == nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), lastErr)
}

// evictionVictim picks the pending handshake to drop when every slot is
// taken, given each one's source host, oldest first: the oldest from the
// host with the most pending. A flood from a few hosts then only evicts
// its own connections, never the real peer's (one connection from its own
// host), however fast it reconnects; only a flood from more hosts than
// there are slots competes with the peer again.
func evictionVictim(hosts []string) int {
	count := map[string]int{}
	for _, h := range hosts {
		count[h]++
	}
	victim := 0
	for i, h := range hosts {
		if count[h] > count[hosts[victim]] {
			victim = i
		}
	}
	return victim
}

// remoteHost is the address a connection comes from, without its port.
func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// handshake runs fn over conn under a deadline of handshakeTimeout, cut
// short if ctx ends first; on success the deadline is cleared again.
func handshake(ctx context.Context, conn net.Conn, fn func() error) error {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	err := fn()
	if !stop() {
		return errors.Join(err, ctx.Err())
	}
	if err != nil {
		return err
	}
	return conn.SetDeadline(time.Time{})
}
