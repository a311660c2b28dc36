package cuda

// Options tune a Device when it is opened.
type Options struct {
	// TF32 lets cuBLAS round float32 GEMM inputs to TF32 and use tensor
	// cores (≈8× the FP32 rate on an H200, ≈1e-3 relative error). Off, GEMMs
	// are true FP32, as PyTorch's default for matmul.
	TF32 bool
}
