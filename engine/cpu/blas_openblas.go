//go:build openblas

package cpu

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// BLASName names the BLAS this binary was built with.
const BLASName = "openblas"

// BLAS returns the float32 BLAS implementation of this build.
func BLAS() blas.Float32 { return netlib.Implementation{} }

// SetThreads limits CPU math to n threads: OpenBLAS's pool and the Go
// scheduler both.
func SetThreads(n int) {
	if n > 0 {
		C.openblas_set_num_threads(C.int(n))
		runtime.GOMAXPROCS(n)
	}
}
