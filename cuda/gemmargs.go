package cuda

// colMajorGemm is the arguments of one column-major (cuBLAS) Sgemm call
// that computes a row-major product. Its first operand is the row-major B
// and its second the row-major A.
type colMajorGemm struct {
	// TransFirst and TransSecond are cuBLAS's transa and transb.
	TransFirst, TransSecond bool
	// M, N and K are cuBLAS's m, n and k.
	M, N, K int
	// LdFirst, LdSecond and LdC are the leading dimensions of the first
	// operand, the second operand and C.
	LdFirst, LdSecond, LdC int
}

// gemmArgs maps row-major C (m×n) = op(A) (m×k) · op(B) (k×n), A stored
// k×m when transA and m×k otherwise, B stored n×k when transB and k×n
// otherwise, onto cuBLAS: a row-major matrix read column-major is its
// transpose, so the call computes Cᵀ = op(B)ᵀ·op(A)ᵀ, with each leading
// dimension the stored row length. It is separate from Queue.Gemm so that
// a test without a GPU can check it against a column-major reference.
func gemmArgs(transA, transB bool, m, n, k int) colMajorGemm {
	g := colMajorGemm{TransFirst: transB, TransSecond: transA, M: n, N: m, K: k, LdFirst: n, LdSecond: k, LdC: n}
	if transB {
		g.LdFirst = k
	}
	if transA {
		g.LdSecond = m
	}
	return g
}
