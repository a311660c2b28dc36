package collective

import (
	"encoding/binary"
	"fmt"
)

// After the handshake every message is a frame: a 12-byte header
//
//	type u8 | reserved u8 (0) | step u16 | seq u32 | payload length u32
//
// (little-endian) and a payload. Data frames carry one chunk of one step
// of operation number seq; their type names the operation, so ranks that
// disagree about which collective they are in fail with ErrProtocol.
const headerBytes = 12

type frameType uint8

const (
	frameKeepalive frameType = 1 // "still inside an operation", sent downstream while waiting
	frameAbort     frameType = 2 // the group is broken; payload says by whom and why
	frameBye       frameType = 3 // closed cleanly, after every operation it took part in

	frameSum       frameType = 16
	frameMean      frameType = 17
	frameMax       frameType = 18
	frameBroadcast frameType = 19
	frameAllGather frameType = 20
	frameBarrier   frameType = 21
)

func (t frameType) String() string {
	switch t {
	case frameKeepalive:
		return "keepalive"
	case frameAbort:
		return "abort"
	case frameBye:
		return "bye"
	case frameSum:
		return "allreduce-sum"
	case frameMean:
		return "allreduce-mean"
	case frameMax:
		return "allreduce-max"
	case frameBroadcast:
		return "broadcast"
	case frameAllGather:
		return "allgather"
	case frameBarrier:
		return "barrier"
	}
	return fmt.Sprintf("frame type %d", uint8(t))
}

func (t frameType) isData() bool { return t >= frameSum && t <= frameBarrier }

type header struct {
	typ  frameType
	step uint16
	seq  uint32
	size uint32
}

func (h *header) put(b *[headerBytes]byte) {
	b[0] = byte(h.typ)
	b[1] = 0
	binary.LittleEndian.PutUint16(b[2:], h.step)
	binary.LittleEndian.PutUint32(b[4:], h.seq)
	binary.LittleEndian.PutUint32(b[8:], h.size)
}

// parseHeader decodes a header, refusing unknown types and lengths no
// frame of that type may have, so a payload length is bounded before
// anything trusts it.
func parseHeader(b *[headerBytes]byte) (header, error) {
	h := header{
		typ:  frameType(b[0]),
		step: binary.LittleEndian.Uint16(b[2:]),
		seq:  binary.LittleEndian.Uint32(b[4:]),
		size: binary.LittleEndian.Uint32(b[8:]),
	}
	if b[1] != 0 {
		return h, fmt.Errorf("%w: reserved header byte %#x", ErrProtocol, b[1])
	}
	limit := uint32(0)
	switch {
	case h.typ == frameKeepalive || h.typ == frameBye:
	case h.typ == frameAbort:
		limit = maxAbortBytes
	case h.typ.isData():
		limit = MaxChunkBytes
	default:
		return h, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, b[0])
	}
	if h.size > limit {
		return h, fmt.Errorf("%w: %v frame of %d bytes (at most %d)", ErrProtocol, h.typ, h.size, limit)
	}
	return h, nil
}

// failKind is why a group broke, as relayed in an abort frame.
type failKind uint8

const (
	kindLost     failKind = 1
	kindStalled  failKind = 2
	kindAborted  failKind = 3
	kindProtocol failKind = 4
)

func (k failKind) sentinel() error {
	switch k {
	case kindLost:
		return ErrPeerLost
	case kindStalled:
		return ErrPeerStalled
	case kindAborted:
		return ErrPeerAborted
	}
	return ErrProtocol
}

// abortMsg is an abort frame's payload: culprit u32 | reporter u32 |
// kind u8 | reason length u16 | reason.
type abortMsg struct {
	culprit, reporter uint32
	kind              failKind
	reason            string
}

const (
	abortFixed    = 4 + 4 + 1 + 2
	maxAbortBytes = abortFixed + maxReason
)

func (m *abortMsg) append(b []byte) []byte {
	reason := m.reason
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	b = binary.LittleEndian.AppendUint32(b, m.culprit)
	b = binary.LittleEndian.AppendUint32(b, m.reporter)
	b = append(b, byte(m.kind))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// parseAbort decodes an abort payload of a group of size ranks.
func parseAbort(b []byte, size int) (abortMsg, error) {
	var m abortMsg
	if len(b) < abortFixed {
		return m, fmt.Errorf("%w: abort payload of %d bytes", ErrProtocol, len(b))
	}
	m.culprit = binary.LittleEndian.Uint32(b)
	m.reporter = binary.LittleEndian.Uint32(b[4:])
	m.kind = failKind(b[8])
	n := int(binary.LittleEndian.Uint16(b[9:]))
	switch {
	case int64(m.culprit) >= int64(size) || int64(m.reporter) >= int64(size):
		return m, fmt.Errorf("%w: abort names rank %d by rank %d in a group of %d", ErrProtocol, m.culprit, m.reporter, size)
	case m.kind < kindLost || m.kind > kindProtocol:
		return m, fmt.Errorf("%w: abort kind %d", ErrProtocol, m.kind)
	case abortFixed+n != len(b):
		return m, fmt.Errorf("%w: abort reason of %d bytes in a %d-byte payload", ErrProtocol, n, len(b))
	}
	m.reason = string(b[abortFixed:])
	return m, nil
}

// peerError is the error an abort message means on the rank that reads it.
func (m *abortMsg) peerError(op string) *PeerError {
	return &PeerError{
		Rank: int(m.culprit),
		Op:   op,
		Err:  fmt.Errorf("%w (reported by rank %d): %s", m.kind.sentinel(), m.reporter, m.reason),
	}
}
