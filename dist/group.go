package dist

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"cohort/dist/collective"
	"cohort/dist/natsserver"
	"cohort/dist/rendezvous"
)

// Liveness defaults: a heartbeat every 250 ms, a peer lost after 2 s of
// silence (8 missed beats), well inside the 5 s users are promised.
const (
	HeartbeatInterval = 250 * time.Millisecond
	HeartbeatMissed   = 8
)

// Group is a joined process group: collectives over the TCP ring, control
// over NATS. It satisfies the trainer's Comm interface.
type Group struct {
	*collective.Group
	member *rendezvous.Member
	env    Env
	server *natsserver.Server // the rendezvous server this rank serves, if any
}

// Join forms the group described by env: bind the data plane, rendezvous,
// connect the ring, start liveness. A lost or aborting peer aborts the ring,
// so a rank blocked in a collective fails at once naming the peer.
func Join(ctx context.Context, env Env) (*Group, error) {
	var srv *natsserver.Server
	if env.ServeRdzv {
		host, port, err := net.SplitHostPort(env.RdzvListen)
		if err != nil {
			return nil, fmt.Errorf("%w: rendezvous listen address %q: %v", ErrEnv, env.RdzvListen, err)
		}
		p, _ := strconv.Atoi(port)
		if srv, err = natsserver.Start(natsserver.Options{Host: host, Port: p, Token: env.Auth.Token}); err != nil {
			return nil, fmt.Errorf("rank %d starts the rendezvous server: %w (another job's step on this node may hold the port: set %s)", env.Rank, err, EnvRdzvPort)
		}
	}
	g, err := join(ctx, env)
	if err != nil {
		if srv != nil {
			srv.Shutdown()
		}
		return nil, err
	}
	g.server = srv
	return g, nil
}

func join(ctx context.Context, env Env) (*Group, error) {
	host, err := DataHost(env.RdzvURL)
	if err != nil {
		return nil, err
	}
	ln, err := collective.Listen(net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("data plane: listen on %s: %w", host, err)
	}
	m, err := rendezvous.Join(ctx, rendezvous.Options{
		URL: env.RdzvURL, Auth: env.Auth, RunID: env.RunID, WorldSize: env.WorldSize,
		Rank: env.Rank, Host: Hostname(), DataAddr: ln.Addr().String(), Timeout: env.RdzvTimeout,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	peers := m.Peers()
	addrs := make([]string, len(peers))
	for i, p := range peers {
		addrs[i] = p.DataAddr
	}
	// Watch peers while the ring forms: a peer dying now must not leave
	// this rank waiting for its connection.
	timeout := env.RdzvTimeout
	if timeout == 0 {
		timeout = rendezvous.DefaultTimeout
	}
	// The ring must form within the rendezvous timeout too: peers that are
	// known over NATS but unreachable over TCP fail the job (exit 3), they
	// do not hang it.
	formCtx, stopForm := context.WithTimeoutCause(ctx, timeout, fmt.Errorf(
		"%w: the data plane did not connect within %v (peers %v; check firewalls or set %s)", rendezvous.ErrTimeout, timeout, addrs, EnvDataHost))
	defer stopForm()
	ringCtx, cancel := context.WithCancelCause(formCtx)
	defer cancel(nil)
	lost := make(chan error, 1)
	m.StartLiveness(HeartbeatInterval, HeartbeatMissed, func(err error) {
		lost <- err
		cancel(err)
	})
	coll, err := collective.New(ringCtx, collective.Config{
		Rank: m.Rank(), Size: env.WorldSize, Peers: addrs,
		Secret: rendezvous.DataPlaneSecret(env.Auth, env.RdzvURL, env.RunID), JobID: env.RunID,
	}, ln)
	if err != nil {
		if cause := context.Cause(ringCtx); cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		m.Abort(fmt.Sprintf("rank %d could not connect the data plane: %v", m.Rank(), err))
		m.Leave()
		return nil, fmt.Errorf("data plane: %w", err)
	}
	g := &Group{Group: coll, member: m, env: env}
	go func() {
		if err, ok := <-lost; ok {
			coll.Abort(err)
		}
	}()
	return g, nil
}

// DataHost is the address a rank binds its data plane on: COHORT_DATA_HOST,
// else the local address the kernel would use to reach the NATS server (a
// UDP "connect" sends nothing), which peers on other nodes can reach too.
func DataHost(rdzvURL string) (string, error) {
	if h := os.Getenv(EnvDataHost); h != "" {
		return h, nil
	}
	u, err := url.Parse(rdzvURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: rendezvous URL %q: want nats://host:port", ErrEnv, rdzvURL)
	}
	c, err := net.Dial("udp", u.Host)
	if err != nil {
		return "", fmt.Errorf("data plane: no route to the rendezvous host %s: %w (set %s)", u.Host, err, EnvDataHost)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// DataAddrs lists every rank's data-plane address, by rank.
func (g *Group) DataAddrs() []string {
	var addrs []string
	for _, p := range g.member.Peers() {
		addrs = append(addrs, p.DataAddr)
	}
	return addrs
}

// Abort tells every peer the run failed, with reason, and breaks the ring.
func (g *Group) Abort(reason string) {
	g.member.Abort(reason)
	g.Group.Abort(fmt.Errorf("aborted: %s", reason))
}

// Close leaves the run cleanly: peers do not count it as lost.
func (g *Group) Close() error {
	g.member.Leave()
	err := g.Group.Close()
	if g.server != nil {
		g.server.Shutdown()
	}
	return err
}
