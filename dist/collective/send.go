package collective

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// sendLoop is the sender goroutine: it runs each operation's sends, keeps
// next informed while this rank waits inside an operation, and after a
// failure sends the farewell and half-closes.
func (r *ring) sendLoop() {
	defer close(r.sent)
	byeSeen := r.byeSeen
	for {
		select {
		case job := <-r.jobs:
			r.done <- r.runSends(&job)
			r.awaitEnd()
		case <-byeSeen:
			// Next is gone for good: closing our end lets its Close finish
			// draining now rather than after its linger.
			closeWrite(r.send)
			byeSeen = nil
		case <-r.g.broken:
			if r.farewell != nil && !r.sendDirty {
				_ = r.send.SetWriteDeadline(time.Now().Add(r.linger))
				_, _ = r.send.Write(r.farewell)
			}
			closeWrite(r.send)
			for {
				select {
				case <-r.jobs: // raced with the failure: answer, send nothing
					r.done <- errStop
					<-r.end
				case <-r.quit:
					return
				}
			}
		case <-r.quit:
			return
		}
	}
}

// runSends sends every chunk of the plan. A chunk forwarded at step t waits
// until the receiver has taken in the same chunk at step t-1.
func (r *ring) runSends(job *sendJob) error {
	p := &job.p
	cf := r.chunkFloats
	var before int64 // chunks received in the steps before t-1
	for t := 0; t < p.steps; t++ {
		if t >= 2 {
			if j := p.recvSeg(t - 2); j >= 0 {
				_, n := p.segment(j)
				before += int64(chunks(n, cf))
			}
		}
		j := p.sendSeg(t)
		if j < 0 {
			continue
		}
		off, n := p.segment(j)
		for k := range chunks(n, cf) {
			if t > 0 {
				if err := r.waitProgress(before+int64(k)+1, job.seq); err != nil {
					return err
				}
			}
			lo, hi := chunk(off, n, k, cf)
			h := header{typ: p.typ, step: p.sendWire(t), seq: job.seq, size: uint32(4 * (hi - lo))}
			if err := r.writeFrame(&h, job.data[4*lo:4*hi]); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitProgress blocks until the receiver has finished need chunks, sending
// keepalives meanwhile so next can tell waiting from stalling.
func (r *ring) waitProgress(need int64, seq uint32) error {
	if r.progress.Load() >= need {
		return nil
	}
	r.timer.Reset(r.stall / 4)
	defer r.timer.Stop()
	for r.progress.Load() < need {
		select {
		case <-r.wake:
		case <-r.g.broken:
			return errStop
		case <-r.timer.C:
			if err := r.writeFrame(&header{typ: frameKeepalive, seq: seq}, nil); err != nil {
				return err
			}
			r.timer.Reset(r.stall / 4)
		}
	}
	return nil
}

// awaitEnd keeps sending keepalives after this operation's sends are done
// and until the operation ends: next may already wait in the next
// operation. A failed keepalive is no failure of this operation, whose
// sends are complete (next may have finished and closed); it only stops
// the keepalives.
func (r *ring) awaitEnd() {
	r.timer.Reset(r.stall / 4)
	defer r.timer.Stop()
	for {
		select {
		case <-r.end:
			return
		case <-r.timer.C:
			if r.sendDirty || r.nextBye.Load() || r.write(&header{typ: frameKeepalive}, nil) != nil {
				continue
			}
			r.timer.Reset(r.stall / 4)
		}
	}
}

// writeFrame writes one frame; a write that fails, or makes no progress
// for the stall timeout, breaks the group blaming next.
func (r *ring) writeFrame(h *header, payload []byte) error {
	if err := r.write(h, payload); err != nil {
		return r.sendFailed(err)
	}
	return nil
}

// write writes a header and its payload in one writev.
func (r *ring) write(h *header, payload []byte) error {
	h.put(&r.shdr)
	_ = r.send.SetWriteDeadline(time.Now().Add(r.stall))
	// Checked after setting the deadline: fail sets its own deadline after
	// marking the group, so one of the two always stops this write.
	if r.g.failed.Load() {
		return errStop
	}
	r.iov[0], r.iov[1] = r.shdr[:], payload
	r.bufs = r.iov[:1+b2i(len(payload) > 0)]
	if _, err := r.bufs.WriteTo(r.send); err != nil {
		r.sendDirty = true
		return err
	}
	return nil
}

// sendFailed turns a write error into the group's failure.
func (r *ring) sendFailed(err error) error {
	g := r.g
	switch {
	case g.failed.Load():
		return errStop
	case errors.Is(err, os.ErrDeadlineExceeded):
		return g.breakOn(sideNext, r.next, g.opName(), kindStalled, fmt.Errorf("accepted no bytes for %v", r.stall))
	case r.nextBye.Load():
		return g.breakOn(sideNext, r.next, g.opName(), kindLost, errPeerClosed)
	}
	return g.breakOn(sideNext, r.next, g.opName(), kindLost, err)
}
