// Elementwise kernels: bias add with optional ReLU (fused after a GEMM),
// the ReLU gradient, the bias gradient (a column sum), and the sum of a
// residual block's branches.
// Every index fits in int: the Go side refuses buffers of 2^31 elements or
// more. Compiled by scripts/cuda/gen-kernels.sh; launched from cuda/kernels.go.

// y[r][c] = act(y[r][c] + b[c]) over a rows×cols row-major matrix. The
// ReLU is written (v < 0) ? 0 : v so that a NaN passes through, as in PyTorch.
extern "C" __global__ void cohort_bias_act(float* __restrict__ y, const float* __restrict__ b,
                                           int rows, int cols, int relu)
{
    int n = rows * cols;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = y[i] + b[i % cols];
        y[i] = (relu && v < 0.f) ? 0.f : v;
    }
}

// dx = dy where the ReLU's output y was positive, else 0; dx may be dy.
extern "C" __global__ void cohort_relu_backward(float* dx, const float* dy, const float* __restrict__ y, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        dx[i] = y[i] > 0.f ? dy[i] : 0.f;
    }
}

// db[c] (+)= sum over r of dy[r][c]. Launch with blockDim (32, 32) and one
// block per 32 columns: lanes read consecutive columns of a row (coalesced),
// the 32 rows of threads split the rows, and a fixed-order reduction in
// shared memory keeps the result deterministic.
extern "C" __global__ void cohort_col_sum(float* __restrict__ db, const float* __restrict__ dy,
                                          int rows, int cols, int accumulate)
{
    __shared__ float part[32][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = 0.f;
    if (c < cols) {
        for (int r = threadIdx.y; r < rows; r += 32) {
            s += dy[r * cols + c];
        }
    }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float t = 0.f;
        for (int k = 0; k < 32; k++) {
            t += part[k][threadIdx.x];
        }
        db[c] = accumulate ? db[c] + t : t;
    }
}

// y = a + b, then ReLU when relu is set: the end of a residual block, and
// (without the ReLU) the sum of its branches' input gradients. y may be a
// or b.
extern "C" __global__ void cohort_add_act(float* y, const float* a, const float* b, int n, int relu)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = a[i] + b[i];
        y[i] = (relu && v < 0.f) ? 0.f : v;
    }
}
