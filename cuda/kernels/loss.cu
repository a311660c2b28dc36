// Softmax cross-entropy, fused forward and backward, and its batch reduction.
// Compiled by scripts/cuda/gen-kernels.sh; launched from cuda/kernels.go.

#define FULL_MASK 0xffffffffu

// One warp per row of a rows×cols logits matrix: loss[r] = log Σ exp(x - m)
// - (x[label] - m) with m the row max, correct[r] = 1 when no logit is
// strictly above the label's (ties count for the sample, as Cohort's
// accuracy meter does), and, when dlogits is not null, dlogits =
// softmax·scale - onehot·scale. The exponentials are summed in float, where
// the CPU engine sums them in float64, and nvcc may fuse the last multiply
// and subtract: results agree with the CPU to rounding, not bit for bit.
extern "C" __global__ void cohort_softmax_xent(const float* __restrict__ logits, const int* __restrict__ labels,
                                               float* __restrict__ dlogits, float* __restrict__ loss,
                                               int* __restrict__ correct, int rows, int cols, float scale)
{
    int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (row >= rows) {
        return; // the whole warp leaves together: row is uniform in a warp
    }
    const float* x = logits + (size_t)row * cols;
    float m = -INFINITY;
    for (int j = lane; j < cols; j += 32) {
        m = fmaxf(m, x[j]);
    }
    for (int o = 16; o > 0; o >>= 1) {
        m = fmaxf(m, __shfl_xor_sync(FULL_MASK, m, o));
    }
    float s = 0.f;
    for (int j = lane; j < cols; j += 32) {
        s += expf(x[j] - m);
    }
    for (int o = 16; o > 0; o >>= 1) {
        s += __shfl_xor_sync(FULL_MASK, s, o);
    }
    int y = labels[row];
    if (dlogits != 0) {
        float inv = 1.f / s;
        float* d = dlogits + (size_t)row * cols;
        for (int j = lane; j < cols; j += 32) {
            float g = expf(x[j] - m) * inv * scale;
            d[j] = j == y ? g - scale : g;
        }
    }
    if (lane == 0) {
        loss[row] = logf(s) - (x[y] - m);
        correct[row] = x[y] >= m;
    }
}

// One block (power-of-two blockDim, at most 1024) sums loss and correct over
// the batch in double and fixed order: stats[0] = mean loss of this batch,
// stats[1] += loss sum, stats[2] += correct count (doubles count exactly to
// 2^53), so a trainer can read a whole phase's meters with one copy.
extern "C" __global__ void cohort_loss_reduce(const float* __restrict__ loss, const int* __restrict__ correct,
                                              int rows, double* __restrict__ stats)
{
    __shared__ double sl[1024];
    __shared__ double sc[1024];
    double a = 0.0, c = 0.0;
    for (int i = threadIdx.x; i < rows; i += blockDim.x) {
        a += loss[i];
        c += correct[i];
    }
    sl[threadIdx.x] = a;
    sc[threadIdx.x] = c;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) {
            sl[threadIdx.x] += sl[threadIdx.x + h];
            sc[threadIdx.x] += sc[threadIdx.x + h];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        stats[0] = sl[0] / rows;
        stats[1] += sl[0];
        stats[2] += sc[0];
    }
}
