// Package natsserver runs the embedded NATS server that carries Cohort's
// control plane (rendezvous, heartbeats, abort). It never carries tensors.
package natsserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNoToken is returned when a server would listen beyond loopback without a
// token: anyone who can reach the port could then join or abort a job.
var ErrNoToken = errors.New("natsserver: a token is required off loopback")

// readyTimeout bounds the wait for the listener; binding takes milliseconds,
// so reaching it means something is wrong with the host.
const readyTimeout = 5 * time.Second

// Options configures Start.
type Options struct {
	// Host is the address to listen on; empty means 127.0.0.1.
	Host string
	// Port is the client port; 0 picks a random free one.
	Port int
	// Token is the client authorization token; empty disables auth, which
	// Start only allows on loopback.
	Token string
	// Debug sends the server's own log lines to stderr (stdout belongs to
	// the training output).
	Debug bool
}

// Server is a running embedded NATS server.
type Server struct {
	ns *server.Server
}

// Start starts an embedded server and waits until it accepts clients.
func Start(opts Options) (*Server, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if opts.Token == "" && !isLoopback(host) {
		return nil, fmt.Errorf("%w: refusing to listen on %s without one, since any host that reaches it could join or abort the run; set COHORT_JOB_TOKEN", ErrNoToken, host)
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:    "cohort",
		Host:          host,
		Port:          port,
		Authorization: opts.Token,
		// Without NoSigs the server traps SIGINT/SIGTERM and calls os.Exit,
		// which would skip the trainer's own preemption handling.
		NoSigs: true,
		NoLog:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsserver: configure %s: %w", net.JoinHostPort(host, fmt.Sprint(opts.Port)), err)
	}
	var logTo io.Writer
	if opts.Debug {
		logTo = os.Stderr
	}
	lg := newLogger(logTo)
	// The server's default fatal path exits the process; ours reports instead.
	ns.SetLogger(lg, opts.Debug, false)
	ns.Start()
	if err := waitReady(ns, lg.fatal); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsserver: start on %s: %w", net.JoinHostPort(host, fmt.Sprint(opts.Port)), err)
	}
	return &Server{ns: ns}, nil
}

// waitReady polls readiness but returns as soon as the server reports a fatal
// error (a port already in use would otherwise cost the whole readyTimeout).
func waitReady(ns *server.Server, fatal <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-fatal:
			return err
		default:
		}
		if ns.ReadyForConnections(25 * time.Millisecond) {
			return nil
		}
	}
	return fmt.Errorf("not accepting connections after %s", readyTimeout)
}

// URL is the client URL, nats://host:port, with the port actually bound. For
// a wildcard Host (0.0.0.0) it names the wildcard: advertise a reachable
// hostname to other nodes instead.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has released its port.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
