package collective

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrPeerLost reports a peer whose connection closed or reset, or that
	// left the group, while this rank still needed it.
	ErrPeerLost = errors.New("collective: peer lost")
	// ErrPeerStalled reports a peer that neither sent nor accepted a byte for
	// Config.StallTimeout during an operation.
	ErrPeerStalled = errors.New("collective: peer stalled")
	// ErrPeerAborted reports a peer whose group was aborted (Group.Abort),
	// as relayed over the ring.
	ErrPeerAborted = errors.New("collective: peer aborted")
	// ErrProtocol reports a frame of the wrong type, sequence, step or length.
	ErrProtocol = errors.New("collective: protocol error")
	// ErrClosed reports an operation on a closed group.
	ErrClosed = errors.New("collective: group closed")
	// ErrInvalid reports a bad Config or bad operation arguments.
	ErrInvalid = errors.New("collective: invalid argument")
	// ErrAuth reports a handshake whose peer failed to prove the job secret.
	ErrAuth = errors.New("collective: handshake authentication failed")
	// ErrRejected reports a handshake the other side refused (job ID, rank,
	// version or chunk size mismatch, or failed authentication there).
	ErrRejected = errors.New("collective: handshake rejected")
	// ErrFormation reports a ring that could not be connected; the error
	// names the missing peers.
	ErrFormation = errors.New("collective: ring formation failed")
	// ErrBigEndian reports a big-endian host: payloads are the in-memory
	// bytes of float32 slices, defined as little-endian on the wire.
	ErrBigEndian = errors.New("collective: big-endian hosts are not supported")
)

// PeerError is the failure of an operation because of one peer. Err wraps
// ErrPeerLost, ErrPeerStalled, ErrPeerAborted or ErrProtocol; use errors.Is.
type PeerError struct {
	Rank int    // the peer held responsible
	Op   string // the operation that failed, or "" when the group was idle
	Err  error
}

func (e *PeerError) Error() string {
	// Err's own "collective: " prefix would repeat this one.
	cause := strings.TrimPrefix(e.Err.Error(), "collective: ")
	if e.Op == "" {
		return fmt.Sprintf("collective: rank %d: %s", e.Rank, cause)
	}
	return fmt.Sprintf("collective: %s: rank %d: %s", e.Op, e.Rank, cause)
}

func (e *PeerError) Unwrap() error { return e.Err }
