//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"
)

// Queue is a device's stream seen from its thread: operations on it are
// enqueued in order and run asynchronously unless they say otherwise. It
// keeps the first error of the current Device.Do and turns later
// operations into no-ops, so a sequence of calls needs one check (Err, or
// Do's result) instead of one per call.
type Queue struct {
	ctx    cu.CUContext
	dev    cu.Device
	stream cu.Stream // the compute stream: kernels, GEMMs, collectives
	copy   cu.Stream // asynchronous uploads (UploadAsync)
	comm   cu.Stream // collectives beside the compute (NCCLComm's Aside methods)
	blas   blasHandle
	pool   *pool
	pinned map[unsafe.Pointer]int64 // AllocPinned's allocations
	k      *kernels
	sms    int
	err    error
}

// newQueue sets up the device on the calling, locked thread.
func newQueue(ordinal int, o Options) (*Queue, error) {
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("%w: cuDeviceGet(%d): %w", ErrDriver, ordinal, err)
	}
	// The primary context is the one the CUDA runtime (inside cuBLAS, and
	// NCCL later) uses, so all of them share allocations and streams.
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		return nil, fmt.Errorf("%w: retain primary context: %w", ErrDriver, err)
	}
	q := &Queue{ctx: ctx, dev: dev, pool: newPool(), pinned: map[unsafe.Pointer]int64{}}
	if err := q.setup(o); err != nil {
		return nil, errors.Join(err, q.close())
	}
	return q, nil
}

func (q *Queue) setup(o Options) error {
	if err := cu.SetCurrentContext(q.ctx); err != nil {
		return fmt.Errorf("%w: make context current: %w", ErrDriver, err)
	}
	var err error
	if q.sms, err = q.dev.Attribute(cu.MultiprocessorCount); err != nil {
		return fmt.Errorf("%w: SM count: %w", ErrDriver, err)
	}
	// A blocking stream (not NonBlocking) stays ordered with the legacy
	// default stream, which the synchronous copies use.
	if q.stream, err = cu.MakeStream(cu.DefaultStream); err != nil {
		return fmt.Errorf("%w: create stream: %w", ErrDriver, err)
	}
	if q.copy, err = cu.MakeStream(cu.DefaultStream); err != nil {
		return fmt.Errorf("%w: create copy stream: %w", ErrDriver, err)
	}
	if q.comm, err = cu.MakeStream(cu.DefaultStream); err != nil {
		return fmt.Errorf("%w: create communication stream: %w", ErrDriver, err)
	}
	if q.blas, err = newBlas(q.stream, o.TF32); err != nil {
		return err
	}
	q.k, err = loadKernels()
	return err
}

// close releases what setup made, in reverse, after the GPU is idle.
func (q *Queue) close() error {
	var errs []error
	for _, s := range []cu.Stream{q.stream, q.copy, q.comm} {
		if s != (cu.Stream{}) {
			errs = append(errs, wrapDriver("synchronize", s.Synchronize()))
		}
	}
	errs = append(errs, q.pool.release(), q.releasePinned())
	if q.k != nil {
		errs = append(errs, q.k.unload())
	}
	if q.blas.h != nil {
		errs = append(errs, q.blas.destroy())
	}
	for _, s := range []*cu.Stream{&q.stream, &q.copy, &q.comm} {
		if *s != (cu.Stream{}) {
			errs = append(errs, wrapDriver("destroy stream", s.Destroy()))
		}
	}
	errs = append(errs, wrapDriver("release primary context", q.dev.ReleasePrimaryCtx()))
	return errors.Join(errs...)
}

// run executes one Do closure with a fresh error state.
func (q *Queue) run(f func(*Queue) error) error {
	q.err = nil
	err := f(q)
	if err == nil {
		err = q.err
	}
	q.err = nil
	return err
}

// Err is the first error of this Do so far.
func (q *Queue) Err() error { return q.err }

// Fail records err as this Do's error, unless one is recorded already;
// later operations of the Do become no-ops. It is for work done inside a
// Do that is not a Queue operation, such as a host all-reduce.
func (q *Queue) Fail(err error) { q.fail(err) }

func (q *Queue) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

func wrapDriver(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrDriver, op, err)
}

// Sync waits until everything enqueued so far has run. Errors of earlier
// kernel launches (bad addresses, …) surface here.
func (q *Queue) Sync() error {
	if q.err == nil {
		q.fail(wrapDriver("synchronize stream", q.stream.Synchronize()))
	}
	return q.err
}

// SetTF32 switches cuBLAS between true FP32 and TF32 tensor-core math for
// the GEMMs enqueued after it.
func (q *Queue) SetTF32(on bool) {
	if q.err == nil {
		q.fail(q.blas.setTF32(on))
	}
}

// Alloc returns a device buffer of the given size, reusing a freed one of
// the same size when there is one. Its contents are undefined.
func (q *Queue) Alloc(bytes int64) Buffer {
	if q.err != nil {
		return Buffer{}
	}
	if bytes <= 0 {
		q.fail(fmt.Errorf("%w: Alloc(%d)", ErrArgument, bytes))
		return Buffer{}
	}
	b, err := q.pool.get(bytes)
	q.fail(err)
	return b
}

// Free gives a buffer from Alloc back to the pool. Work already enqueued
// that uses it still runs first: the pool hands it out again only to later
// operations on the same stream. Freeing a view, or a buffer twice, fails
// with ErrArgument.
func (q *Queue) Free(b Buffer) {
	if q.err == nil && !b.IsZero() {
		q.fail(q.pool.put(b))
	}
}

// Fill sets every float32 of b to v (asynchronously).
func (q *Queue) Fill(b Buffer, v float32) {
	if q.err != nil || b.bytes == 0 {
		return
	}
	n := b.bytes / 4
	q.fail(wrapDriver("memset", cu.MemsetD32Async(b.ptr, uint(math.Float32bits(v)), n, q.stream)))
}

// Poison fills b with NaN, so that a test sees any element an operation
// failed to write.
func (q *Queue) Poison(b Buffer) { q.Fill(b, float32(math.NaN())) }

// Upload copies src to the start of dst. It waits for the work enqueued
// before it and returns once src has been copied, so src may be reused at
// once (it goes through the legacy default stream, which the Queue's
// stream is ordered with).
func Upload[T Elem](q *Queue, dst Buffer, src []T) {
	bytes := int64(len(src)) * sizeOf[T]()
	if q.err != nil || bytes == 0 {
		return
	}
	if bytes > dst.bytes {
		q.fail(fmt.Errorf("%w: upload of %d bytes into a %d-byte buffer", ErrArgument, bytes, dst.bytes))
		return
	}
	q.fail(wrapDriver("copy to device", cu.MemcpyHtoD(dst.ptr, unsafePointer(src), bytes)))
}

// Download copies the start of src into dst, after the work enqueued
// before it; it returns when dst is filled.
func Download[T Elem](q *Queue, dst []T, src Buffer) {
	bytes := int64(len(dst)) * sizeOf[T]()
	if q.err != nil || bytes == 0 {
		return
	}
	if bytes > src.bytes {
		q.fail(fmt.Errorf("%w: download of %d bytes from a %d-byte buffer", ErrArgument, bytes, src.bytes))
		return
	}
	q.fail(wrapDriver("copy to host", cu.MemcpyDtoH(unsafePointer(dst), src.ptr, bytes)))
}

// Copy copies src into the start of dst on the stream.
func (q *Queue) Copy(dst, src Buffer) {
	if q.err != nil || src.bytes == 0 {
		return
	}
	if src.bytes > dst.bytes {
		q.fail(fmt.Errorf("%w: copy of %d bytes into a %d-byte buffer", ErrArgument, src.bytes, dst.bytes))
		return
	}
	q.fail(wrapDriver("copy on device", cu.MemcpyDtoDAsync(dst.ptr, src.ptr, src.bytes, q.stream)))
}
