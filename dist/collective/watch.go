package collective

import (
	"fmt"
	"io"
)

// watchNext reads what next sends back on the data connection: only aborts
// and a bye. It notices next's death while the group is idle, and relays
// failures upstream even when the data direction is blocked.
func (r *ring) watchNext() {
	defer r.wg.Done()
	g := r.g
	var hb [headerBytes]byte
	var body [maxAbortBytes]byte
	for {
		if _, err := io.ReadFull(r.send, hb[:]); err != nil {
			if !g.failed.Load() && !r.nextBye.Load() {
				g.breakOn(sideNext, r.next, g.opName(), kindLost, err)
			}
			return
		}
		h, err := parseHeader(&hb)
		if err == nil && h.typ != frameAbort && h.typ != frameBye {
			err = fmt.Errorf("%w: %v frame on the return path", ErrProtocol, h.typ)
		}
		if err != nil {
			g.breakOn(sideNext, r.next, g.opName(), kindProtocol, err)
			return
		}
		if h.typ == frameBye {
			if !r.nextBye.Swap(true) {
				close(r.byeSeen)
			}
			continue
		}
		if _, err := io.ReadFull(r.send, body[:h.size]); err != nil {
			continue // the next read reports it
		}
		m, err := parseAbort(body[:h.size], g.size)
		if err != nil {
			g.breakOn(sideNext, r.next, g.opName(), kindProtocol, err)
			return
		}
		g.fail(sideNext, m.peerError(g.opName()), abortFrame(&m))
	}
}
