package rendezvous

import (
	"fmt"
	"os"
	"regexp"
	"time"
)

// DefaultTimeout bounds a rendezvous when Options.Timeout is zero; it is
// torchrun's join timeout, long enough for a batch scheduler to start the
// last node.
const DefaultTimeout = 10 * time.Minute

// namePattern keeps run IDs and exchange keys valid as one NATS subject token.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Options describes one worker's view of the run it joins.
type Options struct {
	// URL is the NATS server, nats://host:port. User info in it
	// (nats://user:password@host:port, or nats://token@host:port) is what
	// nats.go sends instead of Auth's user or token.
	URL string
	// Auth is what the worker presents to the NATS server.
	Auth
	// RunID namespaces every subject: cohort.<RunID>. It must match
	// [A-Za-z0-9_-]{1,64}.
	RunID string
	// WorldSize is the number of workers.
	WorldSize int
	// Rank is this worker's fixed rank (node_rank×local_world+local_rank),
	// or -1 to be assigned one by arrival.
	Rank int
	// Host is this worker's hostname, shown in messages; empty means
	// os.Hostname.
	Host string
	// DataAddr is this worker's data-plane address, published to peers.
	DataAddr string
	// Timeout bounds the whole rendezvous, connection retries included (the
	// server may start after the workers, e.g. under SLURM); zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// Peer is one member of the run.
type Peer struct {
	// Rank is the peer's global rank.
	Rank int
	// Host is the peer's hostname.
	Host string
	// PID is the peer's process id.
	PID int
	// DataAddr is the peer's data-plane address.
	DataAddr string
	// ID is random per Join call and tells two processes on one rank apart.
	ID string
}

// normalized validates o and fills its defaults.
func (o Options) normalized() (Options, error) {
	if o.URL == "" {
		return o, fmt.Errorf("%w: empty NATS URL", ErrInvalid)
	}
	if !namePattern.MatchString(o.RunID) {
		return o, fmt.Errorf("%w: run ID %q must match %s", ErrInvalid, o.RunID, namePattern)
	}
	if err := o.checkAuth(); err != nil {
		return o, err
	}
	if o.WorldSize < 1 {
		return o, fmt.Errorf("%w: world size %d, want ≥ 1", ErrInvalid, o.WorldSize)
	}
	if o.Rank < -1 || o.Rank >= o.WorldSize {
		return o, fmt.Errorf("%w: rank %d outside world size %d (use -1 for rank by arrival)", ErrInvalid, o.Rank, o.WorldSize)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("rendezvous: hostname: %w", err)
		}
		o.Host = h
	}
	return o, nil
}
