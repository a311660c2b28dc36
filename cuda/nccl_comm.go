//go:build cuda

package cuda

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// NCCLComm is this rank's member of an NCCL communicator: the collectives
// of one process group, run by NCCL on one Device's GPU.
//
// Collectives are enqueued from inside Device.Do on the Queue's stream, in
// order with the compute enqueued there, and like other Queue operations
// keep their error in the Queue. Every rank must enqueue the same
// collectives in the same order with the same sizes; a rank that does not
// leaves the others' kernels waiting on the GPU, which only Abort (or the
// process's exit) ends.
//
// The communicator is in blocking mode: ncclCommInitRank and the first
// collective between two ranks wait for the peers inside NCCL. AsyncError
// and Abort may be called from any goroutine, to watch a rank and to get
// one unstuck.
type NCCLComm struct {
	lib        *ncclLib
	dev        *Device
	ctx        cu.CUContext // the device's primary context, for Abort's thread
	rank, size int

	mu sync.Mutex
	h  unsafe.Pointer // ncclComm_t; nil once closed or aborted
}

// NewNCCLComm joins communicator id as rank of size (0 ≤ rank < size), on
// this device. Every rank calls it with the same id and size and its own
// rank; it returns once all size ranks have joined (ncclCommInitRank
// blocks the device thread until then).
//
// If ctx ends first, NewNCCLComm returns an error wrapping ctx.Err(), but
// the device thread stays inside ncclCommInitRank: NCCL cannot interrupt
// a blocking init, and a communicator that has no handle yet cannot be
// aborted. The Device is then unusable (Do and Close wait for that
// thread), and the caller should exit the process, as a trainer does on a
// rendezvous timeout. If the missing ranks join later, the communicator
// made then is aborted.
func (d *Device) NewNCCLComm(ctx context.Context, id NCCLID, rank, size int) (*NCCLComm, error) {
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("%w: NCCL rank %d of %d", ErrArgument, rank, size)
	}
	if id.IsZero() {
		return nil, fmt.Errorf("%w: zero NCCL unique id (rank 0 makes one with NewNCCLID)", ErrArgument)
	}
	lib, err := loadNCCL()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cuda: NCCL init of rank %d of %d: %w", rank, size, err)
	}
	type made struct {
		c   *NCCLComm
		err error
	}
	res := make(chan made)
	abandon := make(chan struct{})
	go func() {
		var c *NCCLComm
		err := d.Do(func(q *Queue) error {
			h, err := lib.initRank(&id, rank, size)
			if err != nil {
				return fmt.Errorf("cuda: NCCL init of rank %d of %d: %w", rank, size, err)
			}
			c = &NCCLComm{lib: lib, dev: d, ctx: q.ctx, rank: rank, size: size, h: h}
			return nil
		})
		select {
		case res <- made{c, err}:
		case <-abandon:
			if c != nil {
				_ = c.Abort() // nobody holds it: the caller has given up
			}
		}
	}()
	select {
	case m := <-res:
		return m.c, m.err
	case <-ctx.Done():
		close(abandon)
		return nil, fmt.Errorf("cuda: NCCL init of rank %d of %d: %w; the device thread still waits in ncclCommInitRank "+
			"for the other ranks, so the device can no longer be used or closed: exit the process", rank, size, ctx.Err())
	}
}

// Rank is this member's rank in the communicator.
func (c *NCCLComm) Rank() int { return c.rank }

// Size is the number of ranks in the communicator.
func (c *NCCLComm) Size() int { return c.size }

// handle is the live communicator, or nil after Close or Abort.
func (c *NCCLComm) handle() unsafe.Pointer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h
}

// take removes the handle, so that exactly one of Close and Abort frees it
// and no collective starts on it afterwards.
func (c *NCCLComm) take() unsafe.Pointer {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.h
	c.h = nil
	return h
}

// enqueueable checks a collective's Queue and float32 buffer and returns
// the handle and element count, or nil after recording why not.
func (c *NCCLComm) enqueueable(q *Queue, op string, buf Buffer) (unsafe.Pointer, int) {
	if q.err != nil || buf.bytes == 0 {
		return nil, 0
	}
	if q.ctx != c.ctx {
		q.fail(fmt.Errorf("%w: %s on a Queue of another device than the communicator's", ErrArgument, op))
		return nil, 0
	}
	if buf.bytes%4 != 0 {
		q.fail(fmt.Errorf("%w: %s of %d bytes, not whole float32s", ErrArgument, op, buf.bytes))
		return nil, 0
	}
	h := c.handle()
	if h == nil {
		q.fail(fmt.Errorf("%w: %s", ErrCommClosed, op))
	}
	return h, int(buf.bytes / 4)
}

// AllReduceSum enqueues on q's stream the in-place sum of the float32s of
// buf over all ranks: afterwards every rank's buf holds the sum. It runs
// after the work enqueued before it and before the work enqueued after.
func (c *NCCLComm) AllReduceSum(q *Queue, buf Buffer) {
	c.reduce(q, "AllReduceSum", buf, ncclSum, q.stream)
}

// AllReduceAvg is AllReduceSum divided by the number of ranks, computed by
// NCCL (ncclAvg, NCCL 2.10 or newer): the data-parallel gradient average
// in one pass, with no separate scaling kernel.
func (c *NCCLComm) AllReduceAvg(q *Queue, buf Buffer) {
	c.reduce(q, "AllReduceAvg", buf, ncclAvg, q.stream)
}

// AllReduceSumAside and AllReduceAvgAside are AllReduceSum and
// AllReduceAvg on q's communication stream, so that they run alongside the
// compute stream's later work. One starts after after has fired (when set:
// recorded on the compute stream once buf was final) and after the
// collectives enqueued aside before it, and records done. The compute
// stream must Wait(done) before it reads or writes buf again. Keeping a
// communicator's collectives on this one stream keeps them in the same
// order on the GPU as they were issued, on every rank.
func (c *NCCLComm) AllReduceSumAside(q *Queue, buf Buffer, after, done Event) {
	c.aside(q, "AllReduceSumAside", buf, ncclSum, after, done)
}

// AllReduceAvgAside: see AllReduceSumAside.
func (c *NCCLComm) AllReduceAvgAside(q *Queue, buf Buffer, after, done Event) {
	c.aside(q, "AllReduceAvgAside", buf, ncclAvg, after, done)
}

func (c *NCCLComm) aside(q *Queue, op string, buf Buffer, ncclOp int, after, done Event) {
	if q.err != nil {
		return
	}
	if !done.set {
		q.fail(fmt.Errorf("%w: %s without a done event", ErrArgument, op))
		return
	}
	if after.set {
		q.fail(wrapDriver("communication stream wait for event", q.comm.Wait(after.ev, 0)))
	}
	c.reduce(q, op, buf, ncclOp, q.comm)
	if q.err == nil {
		q.fail(wrapDriver("record event", done.ev.Record(q.comm)))
	}
}

// reduce enqueues an in-place all-reduce on stream s.
func (c *NCCLComm) reduce(q *Queue, op string, buf Buffer, ncclOp int, s cu.Stream) {
	h, n := c.enqueueable(q, op, buf)
	if h == nil {
		return
	}
	if ncclOp == ncclAvg && c.lib.version < ncclAvgSince {
		q.fail(fmt.Errorf("%w: %s needs NCCL 2.10 or newer for ncclAvg; loaded NCCL %s",
			ErrNCCL, op, ncclVersionString(c.lib.version)))
		return
	}
	q.fail(c.lib.allReduce(h, buf.ptr, n, ncclOp, s))
}

// Broadcast enqueues on q's stream a copy of root's float32s in buf into
// every other rank's buf (in place), ordered like AllReduceSum.
func (c *NCCLComm) Broadcast(q *Queue, buf Buffer, root int) {
	if q.err == nil && (root < 0 || root >= c.size) {
		q.fail(fmt.Errorf("%w: Broadcast from rank %d of %d", ErrArgument, root, c.size))
		return
	}
	if h, n := c.enqueueable(q, "Broadcast", buf); h != nil {
		q.fail(c.lib.broadcast(h, buf.ptr, n, root, q.stream))
	}
}

// AsyncError is nil while the communicator is healthy, an *NCCLError once
// NCCL has seen a failure in the background (a peer or the network lost;
// NCCLError.Remote tells), or ErrCommClosed. It does not block, so a
// watchdog goroutine may poll it while the device thread waits in a
// collective; on an error it should call Abort.
func (c *NCCLComm) AsyncError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return ErrCommClosed
	}
	return c.lib.asyncError(c.h)
}

// Close waits for the collectives enqueued on the device's streams, then
// destroys the communicator. It runs on the device thread, so it must not
// be called inside Device.Do, and must come before the Device's Close.
// If the stream has failed, the communicator is aborted instead. Close
// after Close or Abort does nothing.
func (c *NCCLComm) Close() error {
	return c.dev.Do(func(q *Queue) error {
		// Synchronize before taking the handle: an Abort from another
		// goroutine can still end a wait on a lost peer.
		syncErr := q.SyncAll()
		h := c.take()
		if h == nil {
			return syncErr
		}
		if syncErr != nil {
			return errors.Join(syncErr, c.lib.abort(h))
		}
		return c.lib.destroy(h)
	})
}

// Abort ends the communicator at once, without waiting for peers: NCCL
// stops the kernels of its collectives still on the GPU and frees the
// communicator, so that a device thread waiting in Queue.Sync, or in a
// collective, returns. It may be called from any goroutine, also while
// the device thread is busy; this is what it is for. The device's stream
// is not usable for further collectives of this communicator, and
// results of collectives cut short are undefined. Abort after Close or
// Abort does nothing.
//
// A collective call that was already inside NCCL when Abort began races
// with NCCL's freeing of the communicator; after Abort the rank should
// only tear down (exit, or rebuild everything).
func (c *NCCLComm) Abort() error {
	h := c.take()
	if h == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		// NCCL saves and restores the calling thread's current device; with
		// no context current it would set up device 0's, on a GPU that
		// may belong to another rank. This thread is never unlocked, so it
		// ends with the goroutine and takes the context binding with it.
		runtime.LockOSThread()
		ctxErr := wrapDriver("make context current for ncclCommAbort", cu.SetCurrentContext(c.ctx))
		done <- errors.Join(ctxErr, c.lib.abort(h))
	}()
	return <-done
}
