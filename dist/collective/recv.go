package collective

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// receive is the operation's receiving half, run on the caller's
// goroutine: it reads every chunk the plan expects from prev, reduces or
// copies it into data, and tells the sender after each one.
func (g *Group) receive(p *plan, data []float32, seq uint32) error {
	r := g.ring
	cf := r.chunkFloats
	inv := 1 / float32(g.size)
	for t := 0; t < p.steps; t++ {
		j := p.recvSeg(t)
		if j < 0 {
			continue
		}
		off, n := p.segment(j)
		for k := range chunks(n, cf) {
			lo, hi := chunk(off, n, k, cf)
			if err := g.readHeader(p, t, seq, 4*(hi-lo)); err != nil {
				return err
			}
			dst := data[lo:hi]
			if p.reduces(t) {
				src := r.scratch[:hi-lo]
				if err := g.readFull(floatBytes(src)); err != nil {
					return err
				}
				reduceInto(p.typ, dst, src, p.finishes(t), inv)
			} else if err := g.readFull(floatBytes(dst)); err != nil {
				return err
			}
			r.progress.Add(1)
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// readHeader reads up to the next data frame, which must be chunk-sized
// step t of operation seq; keepalives are skipped, aborts and byes break
// the group.
func (g *Group) readHeader(p *plan, t int, seq uint32, size int) error {
	r := g.ring
	for {
		if err := g.readFull(r.rhdr[:]); err != nil {
			return err
		}
		h, err := parseHeader(&r.rhdr)
		if err != nil {
			return g.protocolError(p, err)
		}
		switch h.typ {
		case frameKeepalive:
			continue
		case frameAbort:
			body := r.rbody[:h.size]
			if err := g.readFull(body); err != nil {
				return err
			}
			m, err := parseAbort(body, g.size)
			if err != nil {
				return g.protocolError(p, err)
			}
			g.fail(sidePrev, m.peerError(p.typ.String()), abortFrame(&m))
			return errStop
		case frameBye:
			return g.breakOn(sidePrev, r.prev, p.typ.String(), kindLost, errPeerClosed)
		}
		if h.typ != p.typ || h.step != p.recvWire(t) || h.seq != seq || int(h.size) != size {
			return g.protocolError(p, fmt.Errorf("%w: got %v step %d of operation %d with %d bytes, want %v step %d of operation %d with %d bytes",
				ErrProtocol, h.typ, h.step, h.seq, h.size, p.typ, p.recvWire(t), seq, size))
		}
		return nil
	}
}

func (g *Group) protocolError(p *plan, err error) error {
	return g.breakOn(sidePrev, g.ring.prev, p.typ.String(), kindProtocol, err)
}

// readFull fills b from prev. Each read may wait the stall timeout; a
// failure of the group interrupts it.
func (g *Group) readFull(b []byte) error {
	r := g.ring
	for len(b) > 0 {
		_ = r.recv.SetReadDeadline(time.Now().Add(r.stall))
		// Checked after setting the deadline, as in writeFrame.
		if g.failed.Load() {
			return errStop
		}
		n, err := r.recv.Read(b)
		b = b[n:]
		if err != nil && len(b) > 0 {
			return g.recvFailed(err)
		}
	}
	return nil
}

// recvFailed turns a read error into the group's failure.
func (g *Group) recvFailed(err error) error {
	if g.failed.Load() {
		return errStop
	}
	r := g.ring
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return g.breakOn(sidePrev, r.prev, g.opName(), kindStalled, fmt.Errorf("sent no bytes for %v", r.stall))
	}
	return g.breakOn(sidePrev, r.prev, g.opName(), kindLost, err)
}
