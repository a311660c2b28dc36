package collective

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Handshake messages. The dialer opens with a hello; every later message
// starts with a tag byte, and either side may answer with a reject instead
// of the expected message before closing.
const (
	protoVersion = 1
	nonceBytes   = 32
	macBytes     = sha256.Size
	maxReason    = 256

	tagChallenge = 'C' // acceptor: nonceA, macA
	tagProof     = 'P' // dialer: macD
	tagWelcome   = 'W' // acceptor: accepted
	tagReject    = 'R' // either: u16 length, reason
)

// helloMagic opens every connection, so a stray client is recognised
// before any length is trusted.
var helloMagic = [4]byte{'C', 'H', 'R', 'T'}

// helloFixed is the size of a hello without its job ID: magic, version,
// chunk bytes, from, to, nonceD, job ID length.
const helloFixed = 4 + 2 + 4 + 4 + 4 + nonceBytes + 2

// hello is the dialer's opening message.
type hello struct {
	version    uint16
	chunkBytes uint32
	from, to   uint32
	nonceD     [nonceBytes]byte
	jobID      string
}

func (h *hello) append(b []byte) []byte {
	b = append(b, helloMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, h.version)
	b = binary.LittleEndian.AppendUint32(b, h.chunkBytes)
	b = binary.LittleEndian.AppendUint32(b, h.from)
	b = binary.LittleEndian.AppendUint32(b, h.to)
	b = append(b, h.nonceD[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.jobID)))
	return append(b, h.jobID...)
}

// readHello decodes a hello. The magic is checked as soon as it arrives,
// so a stray client is refused without waiting for a whole hello, and the
// job ID's length before the job ID is read.
func readHello(r io.Reader) (hello, error) {
	var h hello
	var b [helloFixed]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return h, fmt.Errorf("read hello: %w", err)
	}
	if [4]byte(b[:4]) != helloMagic {
		return h, fmt.Errorf("%w: bad magic %q", ErrProtocol, b[:4])
	}
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return h, fmt.Errorf("read hello: %w", err)
	}
	h.version = binary.LittleEndian.Uint16(b[4:])
	h.chunkBytes = binary.LittleEndian.Uint32(b[6:])
	h.from = binary.LittleEndian.Uint32(b[10:])
	h.to = binary.LittleEndian.Uint32(b[14:])
	copy(h.nonceD[:], b[18:18+nonceBytes])
	n := int(binary.LittleEndian.Uint16(b[18+nonceBytes:]))
	if n > MaxJobIDBytes {
		return h, fmt.Errorf("%w: job id of %d bytes", ErrProtocol, n)
	}
	job := make([]byte, n)
	if _, err := io.ReadFull(r, job); err != nil {
		return h, fmt.Errorf("read hello job id: %w", err)
	}
	h.jobID = string(job)
	return h, nil
}

// rejectError is a reject message received from the other side.
type rejectError struct{ reason string }

func (e *rejectError) Error() string { return fmt.Sprintf("%v: %q", ErrRejected, e.reason) }
func (e *rejectError) Unwrap() error { return ErrRejected }

func appendReject(b []byte, reason string) []byte {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	b = append(b, tagReject)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// readTagged reads a message whose tag must be want and whose body is
// exactly len(body) bytes; a reject comes back as a *rejectError.
func readTagged(r io.Reader, want byte, body []byte) error {
	var tag [1]byte
	if _, err := io.ReadFull(r, tag[:]); err != nil {
		return fmt.Errorf("read %q: %w", want, err)
	}
	switch tag[0] {
	case want:
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("read %q: %w", want, err)
		}
		return nil
	case tagReject:
		var n [2]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return fmt.Errorf("read reject: %w", err)
		}
		size := int(binary.LittleEndian.Uint16(n[:]))
		if size > maxReason {
			return fmt.Errorf("%w: reject reason of %d bytes", ErrProtocol, size)
		}
		reason := make([]byte, size)
		if _, err := io.ReadFull(r, reason); err != nil {
			return fmt.Errorf("read reject: %w", err)
		}
		return &rejectError{reason: string(reason)}
	default:
		return fmt.Errorf("%w: handshake message %q, want %q", ErrProtocol, tag[0], want)
	}
}

// handshakeMAC binds a role ('A' acceptor, 'D' dialer), the whole hello
// and the acceptor's nonce under the job secret. The domain byte keeps one
// side's proof from being reflected as the other's; the nonces make every
// proof single-use.
func handshakeMAC(secret []byte, role byte, h *hello, nonceA *[nonceBytes]byte) [macBytes]byte {
	m := hmac.New(sha256.New, secret)
	var buf [1 + helloFixed + MaxJobIDBytes + nonceBytes]byte
	b := append(buf[:0], role)
	b = h.append(b)
	b = append(b, nonceA[:]...)
	m.Write(b)
	var out [macBytes]byte
	m.Sum(out[:0])
	return out
}
