package collective

// plan is one rank's schedule for one operation: at each step t it may send
// one segment to next and receive one segment from prev. Every send at a
// step t > 0 forwards the segment received at step t-1, chunk by chunk, so
// the sender only ever waits for the receiver's progress.
//
// All-reduce over n ranks (segment j is the j-th n-th of the buffer):
//
//	reduce-scatter, t in [0, n-1):  send r-t, receive r-t-1 and reduce into it
//	all-gather,     t in [n-1, 2n-2), s = t-n+1: send r+1-s, receive r-s (copy)
//
// After reduce-scatter rank r holds the fully reduced segment r+1; the
// all-gather copies those bits everywhere, so every rank ends bit-identical.
// AllGather is the all-gather half with segment r as the own one;
// Broadcast is a pipeline along the ring starting at root.
type plan struct {
	typ        frameType
	rank, size int
	total      int // floats in the data buffer
	segFloats  int // AllGather: floats per segment; otherwise unused
	pos        int // Broadcast: distance from root along the ring
	steps      int
}

func newAllReducePlan(typ frameType, rank, size, total int) plan {
	return plan{typ: typ, rank: rank, size: size, total: total, steps: 2 * (size - 1)}
}

func newAllGatherPlan(rank, size, segFloats int) plan {
	return plan{typ: frameAllGather, rank: rank, size: size, total: segFloats * size, segFloats: segFloats, steps: size - 1}
}

func newBroadcastPlan(rank, size, root, total int) plan {
	p := plan{typ: frameBroadcast, rank: rank, size: size, total: total, pos: mod(rank-root, size)}
	p.steps = 2
	if p.pos == 0 || p.pos == size-1 {
		p.steps = 1
	}
	return p
}

func mod(a, n int) int { return ((a % n) + n) % n }

// segment is the float range [off, off+n) of segment j.
func (p *plan) segment(j int) (off, n int) {
	switch p.typ {
	case frameBroadcast:
		return 0, p.total
	case frameAllGather:
		return j * p.segFloats, p.segFloats
	}
	base, rem := p.total/p.size, p.total%p.size
	return j*base + min(j, rem), base + b2i(j < rem)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sendSeg is the segment sent at step t, or -1.
func (p *plan) sendSeg(t int) int {
	switch p.typ {
	case frameBroadcast:
		if (p.pos == 0 && t == 0) || (p.pos > 0 && p.pos < p.size-1 && t == 1) {
			return 0
		}
		return -1
	case frameAllGather:
		return mod(p.rank-t, p.size)
	}
	if t < p.size-1 {
		return mod(p.rank-t, p.size)
	}
	return mod(p.rank+1-(t-p.size+1), p.size)
}

// recvSeg is the segment received at step t, or -1.
func (p *plan) recvSeg(t int) int {
	switch p.typ {
	case frameBroadcast:
		if p.pos > 0 && t == 0 {
			return 0
		}
		return -1
	case frameAllGather:
		return mod(p.rank-t-1, p.size)
	}
	if t < p.size-1 {
		return mod(p.rank-t-1, p.size)
	}
	return mod(p.rank-(t-p.size+1), p.size)
}

// reduces says whether step t reduces what it receives (else it copies).
func (p *plan) reduces(t int) bool {
	return p.typ != frameBroadcast && p.typ != frameAllGather && t < p.size-1
}

// finishes says whether step t completes this rank's own segment, where
// AllReduceMean scales it.
func (p *plan) finishes(t int) bool { return p.reduces(t) && t == p.size-2 }

// sendWire and recvWire are the step numbers carried in the frames sent and
// expected at step t: the same number on both ends of a connection.
func (p *plan) sendWire(t int) uint16 {
	if p.typ == frameBroadcast {
		return uint16(p.pos)
	}
	return uint16(t)
}

func (p *plan) recvWire(t int) uint16 {
	if p.typ == frameBroadcast {
		return uint16(p.pos - 1)
	}
	return uint16(t)
}

// chunk is the float range [lo, hi) of chunk k of the segment [off, off+n).
func chunk(off, n, k, chunkFloats int) (lo, hi int) {
	lo = off + k*chunkFloats
	return lo, min(lo+chunkFloats, off+n)
}

// chunks is the number of frames a segment of n floats travels in: at
// least one, so an empty segment still carries the step's causality (a
// barrier is an all-reduce of nothing).
func chunks(n, chunkFloats int) int {
	return max(1, (n+chunkFloats-1)/chunkFloats)
}
