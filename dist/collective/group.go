package collective

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group is one rank's member of a process group. Operations must be called
// from one goroutine at a time, and every rank must call the same
// operations in the same order with the same lengths (a mismatch fails with
// ErrProtocol where the frames show it). A mutex serialises operations
// anyway. Abort and Close may be called from any goroutine at any time.
//
// After any failure the group is broken: the operation in flight and every
// later one return the first error. The trainer is expected to exit.
type Group struct {
	rank, size int
	ring       *ring // nil for a group of one

	mu    sync.Mutex // serialises operations
	seq   uint32     // operations started, carried in every frame
	curOp atomic.Uint32

	closeOnce sync.Once
	closed    atomic.Bool

	fmu    sync.Mutex
	err    error         // the first failure
	broken chan struct{} // closed when err is set
	failed atomic.Bool   // err is set; cheaper to poll than broken
}

// side says where a failure was noticed, which decides whom to tell and
// whether the frame being sent may finish.
type side int

const (
	sideLocal side = iota // Abort or Close on this rank
	sidePrev              // the connection from the ring predecessor
	sideNext              // the connection to the ring successor
)

// Rank is this rank's index in [0, Size).
func (g *Group) Rank() int { return g.rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.size }

// AllReduceSum replaces buf on every rank with the element-wise sum over
// ranks; every rank ends with identical bits.
func (g *Group) AllReduceSum(buf []float32) error {
	return g.allReduce(frameSum, buf)
}

// AllReduceMean is AllReduceSum followed by a scale by 1/Size.
func (g *Group) AllReduceMean(buf []float32) error {
	return g.allReduce(frameMean, buf)
}

// AllReduceMax replaces buf with the element-wise maximum over ranks; a
// NaN anywhere wins.
func (g *Group) AllReduceMax(buf []float32) error {
	return g.allReduce(frameMax, buf)
}

// Barrier returns once every rank has entered it.
func (g *Group) Barrier() error {
	return g.allReduce(frameBarrier, nil)
}

func (g *Group) allReduce(typ frameType, buf []float32) error {
	return g.run(newAllReducePlan(typ, g.rank, g.size, len(buf)), buf)
}

// Broadcast copies root's buf into buf on every other rank.
func (g *Group) Broadcast(buf []float32, root int) error {
	if root < 0 || root >= g.size {
		return fmt.Errorf("%w: broadcast root %d outside [0,%d)", ErrInvalid, root, g.size)
	}
	return g.run(newBroadcastPlan(g.rank, g.size, root, len(buf)), buf)
}

// AllGather sets out to the concatenation of every rank's in, in rank
// order; len(out) must be Size×len(in), and in must not overlap out.
func (g *Group) AllGather(in, out []float32) error {
	if len(out) != g.size*len(in) {
		return fmt.Errorf("%w: allgather of %d floats into %d (want %d)", ErrInvalid, len(in), len(out), g.size*len(in))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.failure(); err != nil {
		return err
	}
	copy(out[g.rank*len(in):], in)
	return g.runLocked(newAllGatherPlan(g.rank, g.size, len(in)), out)
}

func (g *Group) run(p plan, data []float32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runLocked(p, data)
}

// runLocked runs one operation: this goroutine receives (and reduces)
// while the ring's sender goroutine sends, each chunk as soon as the chunk
// it forwards has arrived.
func (g *Group) runLocked(p plan, data []float32) error {
	if err := g.failure(); err != nil {
		return err
	}
	r := g.ring
	if r == nil {
		return nil
	}
	if r.nextBye.Load() {
		g.breakOn(sideNext, r.next, p.typ.String(), kindLost, errPeerClosed)
		return g.failure()
	}
	g.seq++
	g.curOp.Store(uint32(p.typ))
	defer g.curOp.Store(0)
	r.progress.Store(0)
	r.jobs <- sendJob{p: p, data: floatBytes(data), seq: g.seq}
	rerr := g.receive(&p, data, g.seq)
	serr := <-r.done
	r.end <- struct{}{}
	if rerr != nil || serr != nil {
		return g.failure()
	}
	return nil
}

// opName names the operation in flight for errors noticed off the
// operation's goroutine, or "" when idle.
func (g *Group) opName() string {
	if t := frameType(g.curOp.Load()); t != 0 {
		return t.String()
	}
	return ""
}

// failure is the error every operation now returns, or nil.
func (g *Group) failure() error {
	if g.closed.Load() {
		return ErrClosed
	}
	if !g.failed.Load() {
		return nil
	}
	g.fmu.Lock()
	defer g.fmu.Unlock()
	return g.err
}

// errStop reports, inside the package, that a goroutine stopped because
// the group broke; callers return g.failure() instead.
var errStop = errors.New("collective: stopped")

// fail breaks the group with err unless it is already broken, unblocks the
// operation in flight, and has farewell (an abort or bye frame, or nil)
// sent to both neighbours.
func (g *Group) fail(from side, err error, farewell []byte) {
	g.fmu.Lock()
	if g.err != nil {
		g.fmu.Unlock()
		return
	}
	g.err = err
	r := g.ring
	if r != nil {
		r.farewell = farewell
	}
	g.failed.Store(true)
	close(g.broken)
	g.fmu.Unlock()
	if r != nil {
		r.interrupt(from)
	}
}

// errAborted stands in for a nil error given to Abort.
var errAborted = errors.New("collective: aborted")

// errPeerClosed is the cause when a neighbour said bye before an
// operation it should have joined.
var errPeerClosed = errors.New("it closed the group")

// breakOn fails the group blaming culprit, noticed on side from, and tells
// the neighbours. It returns errStop for the goroutine that noticed.
func (g *Group) breakOn(from side, culprit int, op string, kind failKind, cause error) error {
	err := cause
	if !errors.Is(cause, kind.sentinel()) {
		err = fmt.Errorf("%w: %w", kind.sentinel(), cause)
	}
	g.fail(from, &PeerError{Rank: culprit, Op: op, Err: err}, g.ring.blame(culprit, kind, cause.Error()))
	return errStop
}

// Abort makes the operation in flight, and every later one, fail promptly
// with err (for the liveness watcher, when heartbeats say a peer is gone).
// The neighbours are told, so their operations fail with ErrPeerAborted
// naming this rank instead of waiting to stall.
func (g *Group) Abort(err error) {
	if err == nil {
		err = errAborted
	}
	var farewell []byte
	if g.ring != nil {
		farewell = g.ring.blame(g.rank, kindAborted, err.Error())
	}
	g.fail(sideLocal, err, farewell)
}

// Close leaves the group: the neighbours are told goodbye (or, if an
// operation is in flight, that this rank is lost), Close waits up to
// min(StallTimeout, 1 s) for the predecessor to close its end so nothing
// in flight is reset, and every goroutine ends. Later operations return
// ErrClosed. Close may be called more than once and always returns nil.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		r := g.ring
		if r == nil {
			g.closed.Store(true)
			return
		}
		if g.mu.TryLock() {
			g.fail(sideLocal, ErrClosed, byeFrame())
		} else {
			g.fail(sideLocal, ErrClosed, r.blame(g.rank, kindLost, "closed during an operation"))
			g.mu.Lock()
		}
		defer g.mu.Unlock()
		g.closed.Store(true)
		r.shutdown()
	})
	return nil
}
