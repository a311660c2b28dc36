package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxExchange is the largest value Exchange carries: NATS is the control
// plane, and this is room for ids and addresses, not tensors.
const MaxExchange = 64 << 10

// exchangeValue is one member's contribution to an Exchange.
type exchangeValue struct {
	Rank int    `json:"rank"`
	Data []byte `json:"data"`
}

// Exchange all-gathers one small value per member (an NCCL unique id, say)
// and returns them indexed by rank. It is collective: every member must
// call it, and the k-th call with a key on one member meets the k-th call
// with that key on the others, so keys may repeat. It gives up when ctx
// ends or after the Options.Timeout of Join, whichever comes first.
func (m *Member) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	if !namePattern.MatchString(key) {
		return nil, fmt.Errorf("%w: exchange key %q must match %s", ErrInvalid, key, namePattern)
	}
	if len(mine) > MaxExchange {
		return nil, fmt.Errorf("%w: exchange %s: %d bytes exceeds the %d-byte limit", ErrInvalid, key, len(mine), MaxExchange)
	}
	m.mu.Lock()
	seq := m.exchanges[key]
	m.exchanges[key]++
	m.mu.Unlock()

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	self := envelope[exchangeValue]{Run: m.run, From: m.id, Body: exchangeValue{Rank: m.rank, Data: slices.Clone(mine)}}
	// The sequence number keeps a repeated key's rounds apart: an earlier
	// round may still be answering stragglers.
	r := newRound(m.nc, subject(m.run, fmt.Sprintf("x.%s.%d", key, seq)), len(m.peers), self, m.admitExchange, false)
	rctx, stop := m.whileAllowed(ctx)
	err := r.run(rctx)
	stop()
	if err != nil {
		if denied := m.denial(); denied != nil {
			return nil, denied
		}
		held := r.snapshot()
		msg := fmt.Sprintf("rendezvous %s: exchange %s: %d/%d values after %s; %s: %v",
			m.run, key, len(held), len(m.peers), time.Since(start).Round(time.Millisecond), m.missingRanks(held), err)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fail(msg, ErrTimeout, err)
		}
		return nil, fail(msg, err)
	}
	out := make([][]byte, len(m.peers))
	for _, e := range r.snapshot() {
		out[e.Body.Rank] = e.Body.Data
	}
	return out, nil
}

// admitExchange accepts only the member that owns the rank it claims.
func (m *Member) admitExchange(_ map[string]*envelope[exchangeValue], e *envelope[exchangeValue]) (bool, error) {
	r := e.Body.Rank
	return r >= 0 && r < len(m.peers) && m.peers[r].ID == e.From, nil
}

func (m *Member) missingRanks(held map[string]envelope[exchangeValue]) string {
	have := make([]bool, len(m.peers))
	for _, e := range held {
		have[e.Body.Rank] = true
	}
	var out []string
	for r, ok := range have {
		if !ok {
			p := m.peers[r]
			out = append(out, fmt.Sprintf("%d@%s pid %d", r, p.Host, p.PID))
		}
	}
	return "missing " + capList(out)
}
