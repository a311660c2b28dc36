package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// colMajorSgemm is the reference BLAS Sgemm (column-major, with leading
// dimensions), including the argument checks cuBLAS answers with
// CUBLAS_STATUS_INVALID_VALUE. Out-of-range reads or writes panic through
// Go's bounds checks, since a, b and c hold exactly what the caller stored.
func colMajorSgemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) error {
	rowsA, rowsB := m, k // rows of the stored (column-major) operands
	if ta {
		rowsA = k
	}
	if tb {
		rowsB = n
	}
	switch {
	case m < 0 || n < 0 || k < 0:
		return fmt.Errorf("negative size %d×%d×%d", m, n, k)
	case lda < max(1, rowsA):
		return fmt.Errorf("lda %d < %d", lda, max(1, rowsA))
	case ldb < max(1, rowsB):
		return fmt.Errorf("ldb %d < %d", ldb, max(1, rowsB))
	case ldc < max(1, m):
		return fmt.Errorf("ldc %d < %d", ldc, max(1, m))
	}
	opA := func(i, p int) float64 {
		if ta {
			return a[i*lda+p] // A is k×m: element (p, i)
		}
		return a[p*lda+i] // A is m×k: element (i, p)
	}
	opB := func(p, j int) float64 {
		if tb {
			return b[p*ldb+j] // B is n×k: element (j, p)
		}
		return b[j*ldb+p] // B is k×n: element (p, j)
	}
	for j := range n {
		for i := range m {
			var s float64
			for p := range k {
				s += opA(i, p) * opB(p, j)
			}
			c[j*ldc+i] = alpha*s + beta*c[j*ldc+i]
		}
	}
	return nil
}

// smallInts are exact in float64 sums, so results compare with ==.
func smallInts(r *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(r.IntN(9) - 4)
	}
	return out
}

// TestGemmArgs runs the arguments Queue.Gemm passes to cuBLAS through the
// column-major reference and compares with the row-major product, for all
// transpose combinations and the shapes a Linear layer uses.
func TestGemmArgs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, s := range [][3]int{{1, 1, 1}, {2, 3, 4}, {5, 1, 3}, {1, 7, 2}, {6, 4, 1}, {37, 10, 23}} {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, b, c := smallInts(r, m*k), smallInts(r, k*n), smallInts(r, m*n)
				want := make([]float64, m*n)
				for i := range m {
					for j := range n {
						var sum float64
						for p := range k {
							av, bv := a[i*k+p], b[p*n+j] // row-major, as stored when not transposed
							if ta {
								av = a[p*m+i] // stored k×m
							}
							if tb {
								bv = b[j*k+p] // stored n×k
							}
							sum += av * bv
						}
						want[i*n+j] = 2*sum + 3*c[i*n+j]
					}
				}
				g := gemmArgs(ta, tb, m, n, k)
				got := append([]float64(nil), c...)
				if err := colMajorSgemm(g.TransFirst, g.TransSecond, g.M, g.N, g.K, 2, b, g.LdFirst, a, g.LdSecond, 3, got, g.LdC); err != nil {
					t.Fatalf("%dx%dx%d tA=%v tB=%v: cuBLAS would refuse %+v: %v", m, n, k, ta, tb, g, err)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%dx%dx%d tA=%v tB=%v: C[%d] = %v, want %v (args %+v)", m, n, k, ta, tb, i, got[i], want[i], g)
					}
				}
			}
		}
	}
}

// TestGemmArgsLinear checks the three products of a Linear layer with W
// stored [out, in] (engine/nn.Linear), as engine/gpu calls them.
func TestGemmArgsLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	const batch, in, out = 5, 4, 3
	x, w, dy := smallInts(r, batch*in), smallInts(r, out*in), smallInts(r, batch*out)
	run := func(ta, tb bool, m, n, k int, a, b []float64) []float64 {
		g := gemmArgs(ta, tb, m, n, k)
		c := make([]float64, m*n)
		if err := colMajorSgemm(g.TransFirst, g.TransSecond, g.M, g.N, g.K, 1, b, g.LdFirst, a, g.LdSecond, 0, c, g.LdC); err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(what string, got []float64, want func(i, j int) float64, rows, cols int) {
		for i := range rows {
			for j := range cols {
				if got[i*cols+j] != want(i, j) {
					t.Errorf("%s[%d][%d] = %v, want %v", what, i, j, got[i*cols+j], want(i, j))
				}
			}
		}
	}
	dot := func(n int, f func(p int) float64) float64 {
		var s float64
		for p := range n {
			s += f(p)
		}
		return s
	}
	// Y = X·Wᵀ: Y[b][o] = Σ_i X[b][i]·W[o][i].
	check("Y", run(false, true, batch, out, in, x, w), func(b, o int) float64 {
		return dot(in, func(i int) float64 { return x[b*in+i] * w[o*in+i] })
	}, batch, out)
	// dW = dYᵀ·X: dW[o][i] = Σ_b dY[b][o]·X[b][i].
	check("dW", run(true, false, out, in, batch, dy, x), func(o, i int) float64 {
		return dot(batch, func(b int) float64 { return dy[b*out+o] * x[b*in+i] })
	}, out, in)
	// dX = dY·W: dX[b][i] = Σ_o dY[b][o]·W[o][i].
	check("dX", run(false, false, batch, in, out, dy, w), func(b, i int) float64 {
		return dot(out, func(o int) float64 { return dy[b*out+o] * w[o*in+i] })
	}, batch, in)
}
