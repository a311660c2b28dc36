//go:build cuda

package cuda

// Asynchronous transfers. Upload and Download go through pageable Go
// memory, so the driver makes them synchronous: the host waits for the
// GPU at every batch. Page-locked (pinned) host memory lets a copy run on
// the GPU's copy engine while the host goes on, and a second stream lets
// it overlap the compute stream's kernels; events order the two. cu binds
// cuMemFreeHost but not cuMemHostAlloc, so both are called here directly.

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult cohort_host_alloc(void** p, size_t bytes) { return cuMemHostAlloc(p, bytes, 0); }
static CUresult cohort_host_free(void* p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// Pinned is page-locked host memory from Queue.AllocPinned, or a view of
// it from PinnedSub: the only host memory the asynchronous copies take.
// Go code reads and writes it through Host.
type Pinned struct {
	p     unsafe.Pointer
	bytes int64
}

// Bytes is the size of p.
func (p Pinned) Bytes() int64 { return p.bytes }

// Host is p as a slice of T, for the host to fill or read. The memory is
// the driver's, not Go's: it stays valid until FreePinned.
func Host[T Elem](p Pinned) []T {
	if p.p == nil {
		return nil
	}
	return unsafe.Slice((*T)(p.p), p.bytes/sizeOf[T]())
}

// PinnedSub is the view of n elements of T starting at element off of p;
// like Sub it panics when the range is outside p.
func PinnedSub[T Elem](p Pinned, off, n int) Pinned {
	s := sizeOf[T]()
	if off < 0 || n < 0 || int64(off+n)*s > p.bytes {
		panic(fmt.Sprintf("cuda: view [%d:%d] of a %d-element pinned area", off, off+n, p.bytes/s))
	}
	return Pinned{p: unsafe.Add(p.p, int64(off)*s), bytes: int64(n) * s}
}

// AllocPinned returns bytes of page-locked host memory. Pinning is slow
// (it maps the pages for the device): allocate once and reuse.
func (q *Queue) AllocPinned(bytes int64) Pinned {
	if q.err != nil {
		return Pinned{}
	}
	if bytes <= 0 {
		q.fail(fmt.Errorf("%w: AllocPinned(%d)", ErrArgument, bytes))
		return Pinned{}
	}
	var p unsafe.Pointer
	if r := C.cohort_host_alloc(&p, C.size_t(bytes)); r != C.CUDA_SUCCESS {
		q.fail(fmt.Errorf("%w: cuMemHostAlloc(%d bytes): CUresult %d", ErrDriver, bytes, int(r)))
		return Pinned{}
	}
	q.pinned[p] = bytes
	return Pinned{p: p, bytes: bytes}
}

// FreePinned releases memory from AllocPinned after waiting for the GPU,
// since a copy enqueued earlier may still read or write it. A view, or
// memory freed already, fails with ErrArgument.
func (q *Queue) FreePinned(p Pinned) {
	if q.err != nil || p.p == nil {
		return
	}
	if bytes, ok := q.pinned[p.p]; !ok || bytes != p.bytes {
		q.fail(fmt.Errorf("%w: FreePinned of memory that is not a whole pinned allocation", ErrArgument))
		return
	}
	if q.SyncAll() != nil {
		return
	}
	delete(q.pinned, p.p)
	q.fail(freePinned(p.p))
}

func freePinned(p unsafe.Pointer) error {
	if r := C.cohort_host_free(p); r != C.CUDA_SUCCESS {
		return fmt.Errorf("%w: cuMemFreeHost: CUresult %d", ErrDriver, int(r))
	}
	return nil
}

// releasePinned frees every pinned allocation (the device is idle).
func (q *Queue) releasePinned() error {
	var first error
	for p := range q.pinned {
		if err := freePinned(p); err != nil && first == nil {
			first = err
		}
	}
	clear(q.pinned)
	return first
}

// Event marks a point in a stream's work: what was enqueued on that
// stream before Record. The zero Event means "none".
type Event struct {
	ev  cu.Event
	set bool
}

// IsZero reports whether e is the zero Event.
func (e Event) IsZero() bool { return !e.set }

// NewEvent makes an event for streams to wait on, without timing (cheaper
// to record and wait on).
func (q *Queue) NewEvent() Event { return q.newEvent(cu.DisableTiming) }

// NewHostEvent makes an event the host waits on (HostWait) as well: the
// waiting thread sleeps instead of spinning on a core.
func (q *Queue) NewHostEvent() Event { return q.newEvent(cu.DisableTiming | cu.BlockingSyncEvent) }

func (q *Queue) newEvent(flags cu.EventFlags) Event {
	if q.err != nil {
		return Event{}
	}
	ev, err := cu.MakeEvent(flags)
	if err != nil {
		q.fail(wrapDriver("create event", err))
		return Event{}
	}
	return Event{ev: ev, set: true}
}

// FreeEvent destroys e; work waiting on it is not affected.
func (q *Queue) FreeEvent(e Event) {
	if q.err == nil && e.set {
		q.fail(wrapDriver("destroy event", cu.DestroyEvent(&e.ev)))
	}
}

// Record marks e at the end of the work enqueued so far on the compute
// stream (kernels, GEMMs, Copy, DownloadAsync).
func (q *Queue) Record(e Event) {
	if q.err == nil && e.set {
		q.fail(wrapDriver("record event", e.ev.Record(q.stream)))
	}
}

// Wait makes the compute stream's later work wait for e (the host does
// not wait).
func (q *Queue) Wait(e Event) {
	if q.err == nil && e.set {
		q.fail(wrapDriver("stream wait for event", q.stream.Wait(e.ev, 0)))
	}
}

// HostWait blocks the host until the work before e's last Record has run.
// An event never recorded counts as done.
func (q *Queue) HostWait(e Event) {
	if q.err == nil && e.set {
		q.fail(wrapDriver("synchronize event", e.ev.Synchronize()))
	}
}

// UploadAsync copies each src into the start of the matching dst on the
// copy stream, which first waits for after (when set: the compute work
// still reading the dsts), and records done after the copies; the compute
// stream then waits for done, so work enqueued on it later sees the data.
// The host does not wait: it must not change the srcs until done has
// fired (HostWait).
func (q *Queue) UploadAsync(dst []Buffer, src []Pinned, after, done Event) {
	if q.err != nil {
		return
	}
	if len(dst) != len(src) || !done.set {
		q.fail(fmt.Errorf("%w: UploadAsync of %d areas into %d buffers (done event set: %v)", ErrArgument, len(src), len(dst), done.set))
		return
	}
	for i := range src {
		if src[i].bytes > dst[i].bytes {
			q.fail(fmt.Errorf("%w: upload of %d bytes into a %d-byte buffer", ErrArgument, src[i].bytes, dst[i].bytes))
			return
		}
	}
	if after.set {
		q.fail(wrapDriver("copy stream wait for event", q.copy.Wait(after.ev, 0)))
	}
	for i := range src {
		if src[i].bytes > 0 {
			q.fail(wrapDriver("async copy to device", cu.MemcpyHtoDAsync(dst[i].ptr, src[i].p, src[i].bytes, q.copy)))
		}
	}
	q.fail(wrapDriver("record event", done.ev.Record(q.copy)))
	q.Wait(done)
}

// DownloadAsync copies the start of src into dst on the compute stream,
// after the work enqueued before it, and records done; the host may read
// dst once done has fired (HostWait).
func (q *Queue) DownloadAsync(dst Pinned, src Buffer, done Event) {
	if q.err != nil {
		return
	}
	if dst.bytes > src.bytes || !done.set {
		q.fail(fmt.Errorf("%w: async download of %d bytes from a %d-byte buffer (done event set: %v)", ErrArgument, dst.bytes, src.bytes, done.set))
		return
	}
	q.fail(wrapDriver("async copy to host", cu.MemcpyDtoHAsync(dst.p, src.ptr, dst.bytes, q.stream)))
	q.Record(done)
}

// SyncAll is Sync for all three streams: compute, copy and communication.
func (q *Queue) SyncAll() error {
	q.Sync()
	if q.err == nil {
		q.fail(wrapDriver("synchronize copy stream", q.copy.Synchronize()))
	}
	if q.err == nil {
		q.fail(wrapDriver("synchronize communication stream", q.comm.Synchronize()))
	}
	return q.err
}
