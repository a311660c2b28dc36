// Package collective is the data plane of Cohort's process group: the
// collectives a data-parallel trainer runs every step (all-reduce of the
// gradients, broadcast of the initial weights, all-gather, barrier) over
// direct TCP between ranks. NATS is the control plane and never carries a
// tensor.
//
// # Ring
//
// Rank r dials rank r+1 and accepts rank r-1; data flows one way around the
// ring. Each connection starts with a handshake that proves the job secret
// in both directions over fresh nonces and binds the job ID, the two ranks
// and the chunk size, so a stranger, another job or a replayed handshake
// cannot join (see handshake.go). Listen binds the address before
// rendezvous publishes it; New forms the ring within the context's
// deadline.
//
// All-reduce is reduce-scatter then all-gather over the ring (plan.go),
// split into chunks of Config.ChunkBytes and pipelined: a sender goroutine
// forwards chunk i as soon as the operation's goroutine has received and
// reduced it, while that goroutine reads chunk i+1. Payloads move straight
// between the caller's []float32 and the socket (the wire format is the
// host's little-endian float32 memory), and every buffer the group needs is
// allocated once in New. The all-gather half copies each segment's final
// bits from its one owner, so every rank ends bit-identical.
//
// # Failure
//
// A peer that closes or resets fails the operation with a *PeerError
// matching ErrPeerLost; one that neither sends nor accepts a byte for
// Config.StallTimeout, with ErrPeerStalled. Ranks waiting inside an
// operation send keepalives downstream, so only the neighbours of the rank
// that really stopped see silence; the rank that notices sends an abort
// frame both ways around the ring, and every other rank fails at once
// blaming the same peer. After any failure the group is broken and every
// operation returns the first error. Abort breaks the group from outside
// (the NATS liveness watcher calls it).
//
// StallTimeout therefore also bounds how long one rank may wait inside a
// collective for a rank that has not entered it yet (say, while rank 0
// writes a checkpoint before a barrier): set it above the worst such skew.
//
// # Concurrency
//
// Operations must be called from one goroutine at a time, in the same order
// with the same lengths on every rank; a mutex serialises them regardless.
// Abort and Close may be called from any goroutine.
package collective
