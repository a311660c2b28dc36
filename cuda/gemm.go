//go:build cuda

package cuda

import "fmt"

// Gemm enqueues C = alpha·op(A)·op(B) + beta·C for row-major float32
// matrices: C is m×n, op(A) is m×k and op(B) is k×n, where op transposes
// when transA (transB) is set, so A is stored k×m and B n×k then. With
// PyTorch's Linear layout (W is out×in) a layer is
//
//	forward  Y  = X·Wᵀ    Gemm(false, true,  batch, out, in,    1, X,  W, 0, Y)
//	weights  dW = dYᵀ·X   Gemm(true,  false, out,   in,  batch, 1, dY, X, β, dW)
//	input    dX = dY·W    Gemm(false, false, batch, in,  out,   1, dY, W, 0, dX)
//
// cuBLAS is column-major; gemmArgs maps the call onto it (Cᵀ = op(B)ᵀ·op(A)ᵀ,
// operands swapped, no data moved).
func (q *Queue) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) {
	if !q.checkMatrix("Gemm A", m, k, a) || !q.checkMatrix("Gemm B", k, n, b) || !q.checkMatrix("Gemm C", m, n, c) {
		return
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// cuBLAS would scale C by beta; nothing here needs that case.
		q.fail(fmt.Errorf("%w: Gemm with k = 0", ErrArgument))
		return
	}
	g := gemmArgs(transA, transB, m, n, k)
	q.fail(q.blas.sgemm(g.TransFirst, g.TransSecond, g.M, g.N, g.K, alpha, b.ptr, g.LdFirst, a.ptr, g.LdSecond, beta, c.ptr, g.LdC))
}
