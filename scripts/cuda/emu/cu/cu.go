// Package cu stands in for gorgonia.org/cu in scripts/cuda/emu-test.sh: it
// has the part of cu's API that package cohort/cuda calls, on the host.
// Device memory is host memory, operations run when they are enqueued
// except uploads from the host on a stream, which wait for a reader
// (streams.go), and a kernel launch runs the kernel's CUDA C source,
// compiled for the host (emu.cpp), over the launch's grid. It checks launch shapes and the
// ranges of copies; it does not model the GPU's memory system, timing or
// cuBLAS's algorithms, so passing here is no substitute for a GPU run.
package cu

/*
#cgo CXXFLAGS: -std=c++20 -O2
#cgo LDFLAGS: -lstdc++ -pthread
#include <stdlib.h>
int emu_launch(const char* name, int gx, int gy, int bx, int by, void** params);
int emu_has(const char* name);
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// DevicePtr is a host address.
type DevicePtr uintptr

// CUContext is a token.
type CUContext struct{ p uintptr }

// SetCurrentContext does nothing.
func SetCurrentContext(CUContext) error { return nil }

// Device is an emulated GPU, by ordinal.
type Device int

// DeviceAttribute names an attribute.
type DeviceAttribute int

// The attributes package cuda reads.
const (
	MultiprocessorCount DeviceAttribute = iota
	ComputeCapabilityMajor
	ComputeCapabilityMinor
)

// emulatedDevices is how many GPUs the emulation has: two, so that
// two-rank NCCL tests (one rank per GPU) run.
const emulatedDevices = 2

// NumDevices is emulatedDevices.
func NumDevices() (int, error) { return emulatedDevices, nil }

// Version is the driver version reported (13.0).
func Version() int { return 13000 }

// GetDevice returns device 0.
func GetDevice(i int) (Device, error) {
	if i < 0 || i >= emulatedDevices {
		return 0, errors.New("cu emulation: no such device")
	}
	return Device(i), nil
}

// Name says it is emulated.
func (d Device) Name() (string, error) { return "host emulation", nil }

// TotalMem is nominal.
func (d Device) TotalMem() (int64, error) { return 1 << 34, nil }

// Attribute gives 4 SMs (so grid-stride loops take several passes) and
// compute capability 9.0.
func (d Device) Attribute(a DeviceAttribute) (int, error) {
	switch a {
	case MultiprocessorCount:
		return 4, nil
	case ComputeCapabilityMajor:
		return 9, nil
	}
	return 0, nil
}

// RetainPrimaryCtx returns a token.
func (d Device) RetainPrimaryCtx() (CUContext, error) { return CUContext{1}, nil }

// ReleasePrimaryCtx does nothing.
func (d Device) ReleasePrimaryCtx() error { return nil }

// allocations maps each live allocation to its size, to check copies.
var allocations = struct {
	sync.Mutex
	size map[DevicePtr]int64
}{size: map[DevicePtr]int64{}}

// MemAlloc allocates exactly n bytes (so AddressSanitizer sees overruns),
// 256-byte aligned as cuMemAlloc's are.
func MemAlloc(n int64) (DevicePtr, error) {
	var p unsafe.Pointer
	if C.posix_memalign(&p, 256, C.size_t(n)) != 0 {
		return 0, fmt.Errorf("cu emulation: out of memory for %d bytes", n)
	}
	allocations.Lock()
	defer allocations.Unlock()
	allocations.size[DevicePtr(uintptr(p))] = n
	return DevicePtr(uintptr(p)), nil
}

// MemFree frees an allocation.
func MemFree(p DevicePtr) error {
	allocations.Lock()
	defer allocations.Unlock()
	if _, ok := allocations.size[p]; !ok {
		return fmt.Errorf("cu emulation: free of %#x, not an allocation", p)
	}
	delete(allocations.size, p)
	C.free(unsafe.Pointer(uintptr(p)))
	return nil
}

// cMalloc and cFree are C's, for handles C libraries may keep.
func cMalloc(n int) unsafe.Pointer { return C.malloc(C.size_t(n)) }
func cFree(p unsafe.Pointer)       { C.free(p) }

// span is [p, p+n) as bytes; it panics when that is not inside one
// allocation, as the GPU would fault.
func span(p DevicePtr, n int64) []byte {
	allocations.Lock()
	defer allocations.Unlock()
	for b, size := range allocations.size {
		if p >= b && int64(p-b)+n <= size {
			return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
		}
	}
	panic(fmt.Sprintf("cu emulation: %d bytes at %#x are outside every allocation", n, p))
}

// MemsetD32Async sets n 32-bit words.
func MemsetD32Async(p DevicePtr, v uint, n int64, s Stream) error {
	s.flush()
	b := span(p, 4*n)
	w := unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n)
	for i := range w {
		w[i] = uint32(v)
	}
	return nil
}

// MemcpyHtoD copies n bytes to the device.
func MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, n int64) error {
	flushAll() // the legacy stream waits for the blocking streams
	copy(span(dst, n), unsafe.Slice((*byte)(src), n))
	return nil
}

// MemcpyDtoH copies n bytes to the host.
func MemcpyDtoH(dst unsafe.Pointer, src DevicePtr, n int64) error {
	flushAll()
	copy(unsafe.Slice((*byte)(dst), n), span(src, n))
	return nil
}

// MemcpyDtoDAsync copies n bytes on the device.
func MemcpyDtoDAsync(dst, src DevicePtr, n int64, s Stream) error {
	s.flush()
	copy(span(dst, n), span(src, n))
	return nil
}

// Module is a token: every kernel emu.cpp knows is in every module.
type Module struct{}

// Function is a kernel, by name.
type Function struct{ name string }

// LoadData ignores the image.
func LoadData(string) (Module, error) { return Module{}, nil }

// Unload does nothing.
func (Module) Unload() error { return nil }

// Function finds a kernel emu.cpp dispatches.
func (Module) Function(name string) (Function, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	if C.emu_has(cs) == 0 {
		return Function{}, fmt.Errorf("cu emulation: no kernel %s in emu.cpp", name)
	}
	return Function{name}, nil
}

// Launch runs the kernel over the grid, after checking the launch shape
// against the GPU's limits.
func (fn Function) Launch(gx, gy, gz, bx, by, bz, shared int, s Stream, params []unsafe.Pointer) error {
	s.flush()
	if gz != 1 || bz != 1 || gx < 1 || gy < 1 || gy > 65535 || bx < 1 || by < 1 || bx*by > 1024 || shared != 0 {
		return fmt.Errorf("cu emulation: launch of %s with grid %d×%d×%d, block %d×%d×%d, %d bytes shared", fn.name, gx, gy, gz, bx, by, bz, shared)
	}
	// The parameters go to C in C memory: one 8-byte slot per argument
	// (as cu's callers pass them) and the array of pointers to the slots.
	n := max(len(params), 1)
	slots := unsafe.Slice((*uint64)(C.malloc(C.size_t(8*n))), n)
	defer C.free(unsafe.Pointer(&slots[0]))
	ptrs := unsafe.Slice((*unsafe.Pointer)(C.malloc(C.size_t(8*n))), n)
	defer C.free(unsafe.Pointer(&ptrs[0]))
	for i, p := range params {
		slots[i] = *(*uint64)(p)
		ptrs[i] = unsafe.Pointer(&slots[i])
	}
	cs := C.CString(fn.name)
	defer C.free(unsafe.Pointer(cs))
	if C.emu_launch(cs, C.int(gx), C.int(gy), C.int(bx), C.int(by), &ptrs[0]) != 0 {
		return fmt.Errorf("cu emulation: no kernel %s", fn.name)
	}
	return nil
}
