package rendezvous

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// joinRecord is a worker's entry in the join round.
type joinRecord struct {
	Rank  int    `json:"rank"` // -1: by arrival
	World int    `json:"world"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	Addr  string `json:"addr"`
	Since int64  `json:"since"` // Unix ns when Join was called; orders arrivals
}

// Join connects to the NATS server (retrying until o.Timeout: the server may
// start after the workers) and returns once all o.WorldSize workers agree on
// the membership and ranks. The Member keeps the connection; call Leave.
func Join(ctx context.Context, o Options) (*Member, error) {
	start := time.Now()
	o, err := o.normalized()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(ctx, start.Add(o.Timeout))
	defer cancel()
	self := envelope[joinRecord]{Run: o.RunID, From: rand.Text(), Body: joinRecord{
		Rank: o.Rank, World: o.WorldSize, Host: o.Host, PID: os.Getpid(), Addr: o.DataAddr, Since: start.UnixNano(),
	}}
	m := newMember(o, self.From)
	nc, err := dial(ctx, o, start, m.noteConnError)
	if err != nil {
		return nil, err
	}
	m.nc = nc
	// Listen for aborts before the rendezvous can complete anywhere, so an
	// abort sent by a member that has already joined reaches us.
	if err := m.subscribeLiveness(); err != nil {
		nc.Close()
		return nil, err
	}
	r := newRound(nc, subject(o.RunID, "join"), o.WorldSize, self, admitJoin(o), true)
	rctx, stop := m.whileAllowed(ctx)
	err = r.run(rctx)
	stop()
	if err != nil {
		nc.Close()
		if denied := m.denial(); denied != nil {
			return nil, denied
		}
		if ctx.Err() == nil {
			return nil, fmt.Errorf("rendezvous %s: %w", o.RunID, err)
		}
		held := r.snapshot()
		msg := fmt.Sprintf("rendezvous %s: %s", o.RunID, progress(held, o.WorldSize, time.Since(start)))
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fail(msg, ErrTimeout, err)
		}
		return nil, fail(msg+": "+err.Error(), err)
	}
	m.peers = assignRanks(r.snapshot(), o.WorldSize)
	for _, p := range m.peers {
		if p.ID == m.id {
			m.rank = p.Rank
		}
	}
	return m, nil
}

// admitJoin checks a newcomer's record against the held ones.
func admitJoin(o Options) admitFunc[joinRecord] {
	return func(held map[string]*envelope[joinRecord], e *envelope[joinRecord]) (bool, error) {
		b := e.Body
		who := describe(b)
		if b.World != o.WorldSize {
			me := joinRecord{Rank: o.Rank, Host: o.Host, PID: os.Getpid()}
			return false, fail(fmt.Sprintf("%s has world size %d, %s has %d",
				who, b.World, describe(me), o.WorldSize), ErrConflict)
		}
		if b.Rank < -1 || b.Rank >= o.WorldSize {
			return false, fail(fmt.Sprintf("%s claims a rank outside world size %d", who, o.WorldSize), ErrConflict)
		}
		for _, h := range held {
			if b.Rank >= 0 && h.Body.Rank == b.Rank {
				return false, fail(fmt.Sprintf("rank %d claimed twice, by %s pid %d and %s pid %d",
					b.Rank, h.Body.Host, h.Body.PID, b.Host, b.PID), ErrConflict)
			}
		}
		if len(held) >= o.WorldSize {
			all := make(map[string]envelope[joinRecord], len(held)+1)
			for id, h := range held {
				all[id] = *h
			}
			all[e.From] = *e
			return false, fail(fmt.Sprintf("more than %d workers joined: %s", o.WorldSize, listJoined(all)), ErrConflict)
		}
		return true, nil
	}
}

// assignRanks gives fixed workers their ranks and fills the rest in arrival
// order (Since, then ID); every worker computes the same from the same set.
func assignRanks(held map[string]envelope[joinRecord], n int) []Peer {
	peers := make([]Peer, n)
	taken := make([]bool, n)
	var arrivals []envelope[joinRecord]
	for id, e := range held {
		if e.Body.Rank < 0 {
			arrivals = append(arrivals, e)
			continue
		}
		peers[e.Body.Rank] = toPeer(e.Body.Rank, id, e.Body)
		taken[e.Body.Rank] = true
	}
	slices.SortFunc(arrivals, func(a, b envelope[joinRecord]) int {
		return cmp.Or(cmp.Compare(a.Body.Since, b.Body.Since), cmp.Compare(a.From, b.From))
	})
	next := 0
	for _, e := range arrivals {
		for taken[next] {
			next++
		}
		peers[next] = toPeer(next, e.From, e.Body)
		taken[next] = true
	}
	return peers
}

func toPeer(rank int, id string, b joinRecord) Peer {
	return Peer{Rank: rank, Host: b.Host, PID: b.PID, DataAddr: b.Addr, ID: id}
}
