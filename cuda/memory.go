//go:build cuda

package cuda

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// Buffer is a range of device memory: a whole allocation from Queue.Alloc
// or a view of one from Sub. The zero Buffer means "none" where an
// operation takes an optional buffer. A Buffer is plain data, safe to keep
// anywhere, but only the device's own thread (inside Device.Do) may use it.
type Buffer struct {
	ptr   cu.DevicePtr
	bytes int64
}

// Bytes is the buffer's size.
func (b Buffer) Bytes() int64 { return b.bytes }

// IsZero reports whether b is the zero ("none") Buffer.
func (b Buffer) IsZero() bool { return b.ptr == 0 }

// Elem is an element type a Buffer can hold.
type Elem interface{ ~float32 | ~int32 | ~float64 }

func sizeOf[T Elem]() int64 {
	var z T
	return int64(unsafe.Sizeof(z))
}

// Len is how many elements of T fit in b.
func Len[T Elem](b Buffer) int { return int(b.bytes / sizeOf[T]()) }

// Sub is the view of n elements of T starting at element off of b. Like a
// slice expression it panics when the range is outside b: that is a bug in
// the caller, not a run-time condition.
func Sub[T Elem](b Buffer, off, n int) Buffer {
	s := sizeOf[T]()
	if off < 0 || n < 0 || int64(off+n)*s > b.bytes {
		panic(fmt.Sprintf("cuda: view [%d:%d] of a %d-element buffer", off, off+n, Len[T](b)))
	}
	return Buffer{ptr: b.ptr + cu.DevicePtr(int64(off)*s), bytes: int64(n) * s}
}

// pool caches device allocations by size: a training step asks for the
// same sizes every time, and cuMemAlloc/cuMemFree synchronize the device.
type pool struct {
	free map[int64][]cu.DevicePtr
	// live holds every allocation made (cached or in use), so Free can
	// reject views and second frees and close can release everything.
	live map[cu.DevicePtr]allocation
}

type allocation struct {
	bytes  int64
	cached bool // in free, not handed out
}

func newPool() *pool {
	return &pool{free: map[int64][]cu.DevicePtr{}, live: map[cu.DevicePtr]allocation{}}
}

func (p *pool) get(bytes int64) (Buffer, error) {
	if list := p.free[bytes]; len(list) > 0 {
		ptr := list[len(list)-1]
		p.free[bytes] = list[:len(list)-1]
		p.live[ptr] = allocation{bytes: bytes}
		return Buffer{ptr: ptr, bytes: bytes}, nil
	}
	ptr, err := cu.MemAlloc(bytes)
	if err != nil {
		return Buffer{}, fmt.Errorf("%w: cuMemAlloc(%d bytes): %w", ErrDriver, bytes, err)
	}
	p.live[ptr] = allocation{bytes: bytes}
	return Buffer{ptr: ptr, bytes: bytes}, nil
}

// put caches b. A second Free of the same buffer is refused: it would hand
// one allocation to two later Allocs, which would then overwrite each other.
func (p *pool) put(b Buffer) error {
	a, ok := p.live[b.ptr]
	if !ok || a.bytes != b.bytes {
		return fmt.Errorf("%w: Free of a buffer that is not a whole allocation", ErrArgument)
	}
	if a.cached {
		return fmt.Errorf("%w: Free of a buffer already freed", ErrArgument)
	}
	p.live[b.ptr] = allocation{bytes: b.bytes, cached: true}
	p.free[b.bytes] = append(p.free[b.bytes], b.ptr)
	return nil
}

// release frees every allocation, in use or cached.
func (p *pool) release() error {
	var first error
	for ptr := range p.live {
		if err := cu.MemFree(ptr); err != nil && first == nil {
			first = fmt.Errorf("%w: cuMemFree: %w", ErrDriver, err)
		}
	}
	p.live, p.free = map[cu.DevicePtr]allocation{}, map[int64][]cu.DevicePtr{}
	return first
}

// unsafePointer is the address of s's first element for a copy; the
// driver only reads or writes it during the call.
func unsafePointer[T Elem](s []T) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s)) }
