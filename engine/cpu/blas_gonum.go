//go:build !openblas

package cpu

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLASName names the BLAS this binary was built with.
const BLASName = "gonum (pure Go)"

// BLAS returns the float32 BLAS implementation of this build.
func BLAS() blas.Float32 { return gonum.Implementation{} }

// SetThreads limits CPU math to n threads. Pure-Go gonum parallelises
// with goroutines, so GOMAXPROCS is the knob.
func SetThreads(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
