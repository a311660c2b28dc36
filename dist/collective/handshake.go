package collective

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
)

// A connection is authenticated in four messages:
//
//	dialer   → hello{magic, version, chunk bytes, from, to, nonceD, job ID}
//	acceptor → challenge{nonceA, HMAC(secret, 'A'|hello|nonceA)}
//	dialer   → proof{HMAC(secret, 'D'|hello|nonceA)}
//	acceptor → welcome
//
// Each side proves the secret over a nonce the other chose, so recorded
// bytes replayed to a new connection fail. The caller bounds the exchange
// with a deadline on conn.

// newHello builds the hello rank from sends to rank to.
func newHello(cfg *Config) (*hello, error) {
	h := &hello{
		version:    protoVersion,
		chunkBytes: uint32(cfg.ChunkBytes),
		from:       uint32(cfg.Rank),
		to:         uint32(cfg.next()),
		jobID:      cfg.JobID,
	}
	if _, err := rand.Read(h.nonceD[:]); err != nil {
		return nil, fmt.Errorf("handshake nonce: %w", err)
	}
	return h, nil
}

// dialHandshake runs the dialer's side over conn.
func dialHandshake(conn net.Conn, secret []byte, h *hello) error {
	if _, err := conn.Write(h.append(nil)); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	var ch [nonceBytes + macBytes]byte
	if err := readTagged(conn, tagChallenge, ch[:]); err != nil {
		return err
	}
	nonceA := [nonceBytes]byte(ch[:nonceBytes])
	want := handshakeMAC(secret, 'A', h, &nonceA)
	if !hmac.Equal(want[:], ch[nonceBytes:]) {
		// Best effort: the acceptor learns why before the close.
		_, _ = conn.Write(appendReject(nil, "acceptor failed authentication (different job secret?)"))
		return fmt.Errorf("%w: rank %d did not prove the job secret (different secret?)", ErrAuth, h.to)
	}
	proof := handshakeMAC(secret, 'D', h, &nonceA)
	if _, err := conn.Write(append([]byte{tagProof}, proof[:]...)); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	return readTagged(conn, tagWelcome, nil)
}

// acceptHandshake runs the acceptor's side over conn for the hello that
// want describes (only its nonce is ignored).
func acceptHandshake(conn net.Conn, secret []byte, want *hello) error {
	h, err := readHello(conn)
	if err != nil {
		if errors.Is(err, ErrProtocol) {
			_, _ = conn.Write(appendReject(nil, err.Error()))
		}
		return err
	}
	if reason := checkHello(&h, want); reason != "" {
		_, _ = conn.Write(appendReject(nil, reason))
		return fmt.Errorf("%w: %s", ErrRejected, reason)
	}
	var nonceA [nonceBytes]byte
	if _, err := rand.Read(nonceA[:]); err != nil {
		return fmt.Errorf("handshake nonce: %w", err)
	}
	mac := handshakeMAC(secret, 'A', &h, &nonceA)
	msg := append(append([]byte{tagChallenge}, nonceA[:]...), mac[:]...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("send challenge: %w", err)
	}
	var proof [macBytes]byte
	if err := readTagged(conn, tagProof, proof[:]); err != nil {
		return err
	}
	wantProof := handshakeMAC(secret, 'D', &h, &nonceA)
	if !hmac.Equal(wantProof[:], proof[:]) {
		_, _ = conn.Write(appendReject(nil, "dialer failed authentication (different job secret or replayed handshake?)"))
		return fmt.Errorf("%w: connection claiming rank %d did not prove the job secret", ErrAuth, h.from)
	}
	if _, err := conn.Write([]byte{tagWelcome}); err != nil {
		return fmt.Errorf("send welcome: %w", err)
	}
	return nil
}

// checkHello says why got is not the hello this acceptor waits for, or "".
func checkHello(got, want *hello) string {
	switch {
	case got.version != want.version:
		return fmt.Sprintf("protocol version %d, want %d", got.version, want.version)
	case got.jobID != want.jobID:
		return fmt.Sprintf("job id %q is not this job's", got.jobID)
	case got.to != want.to:
		return fmt.Sprintf("dialled rank %d but this is rank %d", got.to, want.to)
	case got.from != want.from:
		return fmt.Sprintf("rank %d is not rank %d's ring predecessor (want rank %d)", got.from, want.to, want.from)
	case got.chunkBytes != want.chunkBytes:
		return fmt.Sprintf("chunk bytes %d, this rank uses %d", got.chunkBytes, want.chunkBytes)
	}
	return ""
}
