// The cuBLAS entry points package cohort/cuda calls, on the host, for
// scripts/cuda/emu-test.sh: device pointers are host pointers. Sgemm is the
// reference column-major definition with cuBLAS's argument checks, summing
// in float in order; with beta = 0 it never reads C, as cuBLAS.
#include <cublas_v2.h>
#include <stdlib.h>

static int handle;

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) { *h = (cublasHandle_t)&handle; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasGetProperty(libraryPropertyType t, int* v) {
    *v = t == MAJOR_VERSION ? 13 : t == MINOR_VERSION ? 1 : 0;
    return CUBLAS_STATUS_SUCCESS;
}

static int atLeast1(int v) { return v > 1 ? v : 1; }

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
    int rowsA = ta == CUBLAS_OP_N ? m : k, rowsB = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < atLeast1(rowsA) || ldb < atLeast1(rowsB) || ldc < atLeast1(m))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            float s = 0.f;
            for (int p = 0; p < k; p++) {
                float a = ta == CUBLAS_OP_N ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = tb == CUBLAS_OP_N ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
            }
            float* c = &C[(size_t)j * ldc + i];
            *c = *beta == 0.f ? *alpha * s : *alpha * s + *beta * *c;
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}
