//go:build cuda

package cuda

// Direct cuBLAS bindings. gorgonia.org/cu/blas is not used: its Sgemm
// takes Go slices (host pointers) and its handle is unexported, so neither
// device pointers nor SetStream/SetMathMode can go through it. Device
// pointers cross into C as CUdeviceptr integers and are cast there, so no
// Go code turns an integer into a pointer.

/*
#cgo LDFLAGS: -lcublas
#include <cuda.h>
#include <cublas_v2.h>

static cublasStatus_t cohort_sgemm(cublasHandle_t h, int ta, int tb, int m, int n, int k,
                                   float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb,
                                   float beta, CUdeviceptr c, int ldc) {
	return cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
	                   &alpha, (const float*)a, lda, (const float*)b, ldb, &beta, (float*)c, ldc);
}

static cublasStatus_t cohort_set_stream(cublasHandle_t h, void* s) {
	return cublasSetStream(h, (cudaStream_t)s);
}

static cublasStatus_t cohort_set_tf32(cublasHandle_t h, int on) {
	return cublasSetMathMode(h, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}

static int cohort_cublas_version(void) {
	int major = 0, minor = 0, patch = 0;
	if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
	    cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
	    cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS) {
		return -1;
	}
	return major * 10000 + minor * 100 + patch;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// blasHandle is a cuBLAS handle bound to the context current on the device
// thread when it was made.
type blasHandle struct{ h C.cublasHandle_t }

func blasErr(op string, s C.cublasStatus_t) error {
	if s == C.CUBLAS_STATUS_SUCCESS {
		return nil
	}
	return fmt.Errorf("%w: %s: status %d", ErrCUBLAS, op, int(s))
}

// newBlas makes a handle that runs on stream s, in FP32 or TF32 math.
func newBlas(s cu.Stream, tf32 bool) (blasHandle, error) {
	var b blasHandle
	if err := blasErr("cublasCreate", C.cublasCreate(&b.h)); err != nil {
		return b, err
	}
	// cu.Stream.C returns cu's own cgo type; both name the same
	// struct CUstream_st*, so it passes through as a plain pointer.
	if err := blasErr("cublasSetStream", C.cohort_set_stream(b.h, unsafe.Pointer(s.C()))); err != nil {
		b.destroy()
		return b, err
	}
	if err := b.setTF32(tf32); err != nil {
		b.destroy()
		return b, err
	}
	return b, nil
}

func (b blasHandle) setTF32(on bool) error {
	return blasErr("cublasSetMathMode", C.cohort_set_tf32(b.h, cbool(on)))
}

func (b blasHandle) destroy() error {
	return blasErr("cublasDestroy", C.cublasDestroy(b.h))
}

// sgemm is cuBLAS's column-major Sgemm on device pointers.
func (b blasHandle) sgemm(ta, tb bool, m, n, k int, alpha float32, a cu.DevicePtr, lda int, bm cu.DevicePtr, ldb int, beta float32, c cu.DevicePtr, ldc int) error {
	return blasErr("cublasSgemm", C.cohort_sgemm(b.h, cbool(ta), cbool(tb), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.CUdeviceptr(a), C.int(lda), C.CUdeviceptr(bm), C.int(ldb),
		C.float(beta), C.CUdeviceptr(c), C.int(ldc)))
}

// blasVersion is the loaded cuBLAS's "major.minor.patch"; it needs no
// context.
func blasVersion() string {
	v := int(C.cohort_cublas_version())
	if v < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

func cbool(v bool) C.int {
	if v {
		return 1
	}
	return 0
}
