package collective

import (
	"fmt"
	"time"
)

const (
	// DefaultStallTimeout is Config.StallTimeout when it is zero.
	DefaultStallTimeout = 30 * time.Second
	// DefaultChunkBytes is Config.ChunkBytes when it is zero, picked by
	// BenchmarkChunk on loopback (see bench_test.go).
	DefaultChunkBytes = 256 << 10
	// MaxChunkBytes bounds Config.ChunkBytes and so every data frame.
	MaxChunkBytes = 16 << 20
	// MinSecretBytes is the shortest job secret accepted.
	MinSecretBytes = 16
	// MaxSize bounds Config.Size: frames number steps in 16 bits.
	MaxSize = 1 << 15
	// MaxJobIDBytes bounds Config.JobID; the handshake refuses longer ones.
	MaxJobIDBytes = 256
)

// Config describes one rank's place in the ring.
type Config struct {
	Rank, Size int
	// Peers is the data-plane address "host:port" of every rank, indexed
	// by rank (from rendezvous); this rank's own entry is not dialled.
	Peers []string
	// Secret is the job secret shared by all ranks (at least
	// MinSecretBytes); it authenticates both ends of every connection.
	Secret []byte
	// JobID is bound into the handshake so two jobs never connect.
	JobID string
	// StallTimeout fails an operation when a peer sends or accepts no
	// bytes for this long (default DefaultStallTimeout).
	StallTimeout time.Duration
	// ChunkBytes is the pipelining unit, a multiple of 4 up to
	// MaxChunkBytes (default DefaultChunkBytes). Every rank must use the
	// same value; the handshake checks it.
	ChunkBytes int
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	switch {
	case c.Size < 1 || c.Size > MaxSize:
		return c, fmt.Errorf("%w: size %d outside [1,%d]", ErrInvalid, c.Size, MaxSize)
	case c.Rank < 0 || c.Rank >= c.Size:
		return c, fmt.Errorf("%w: rank %d outside [0,%d)", ErrInvalid, c.Rank, c.Size)
	case c.StallTimeout < 0:
		return c, fmt.Errorf("%w: stall timeout %v", ErrInvalid, c.StallTimeout)
	case c.ChunkBytes < 4 || c.ChunkBytes%4 != 0 || c.ChunkBytes > MaxChunkBytes:
		return c, fmt.Errorf("%w: chunk bytes %d (want a multiple of 4 in [4,%d])", ErrInvalid, c.ChunkBytes, MaxChunkBytes)
	}
	if c.Size == 1 {
		return c, nil
	}
	switch {
	case len(c.Peers) != c.Size:
		return c, fmt.Errorf("%w: %d peer addresses for size %d", ErrInvalid, len(c.Peers), c.Size)
	case len(c.Secret) < MinSecretBytes:
		return c, fmt.Errorf("%w: secret of %d bytes (want at least %d)", ErrInvalid, len(c.Secret), MinSecretBytes)
	case c.JobID == "" || len(c.JobID) > MaxJobIDBytes:
		return c, fmt.Errorf("%w: job id of %d bytes (want 1 to %d)", ErrInvalid, len(c.JobID), MaxJobIDBytes)
	}
	return c, nil
}

// prev and next are the ring neighbours: rank r receives from prev and
// sends to next.
func (c Config) prev() int { return (c.Rank + c.Size - 1) % c.Size }
func (c Config) next() int { return (c.Rank + 1) % c.Size }
