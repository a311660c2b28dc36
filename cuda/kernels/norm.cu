// BatchNorm kernels over N×C×S float32 batches: S values per channel per
// sample (H·W for BatchNorm2d, 1 for BatchNorm1d on N×C). Channel o of
// sample b is x[(b·c + o)·s + q], q < s.
//
// Training statistics take three launches: bn_partials sums x and x² over
// fixed chunks of each channel in double, bn_stats adds the chunks in
// order and derives the mean, 1/sqrt(var + eps) and the running statistics
// as engine/nn's BatchNorm does (same double formulas, rounded once to
// float), and bn_apply normalises. Backward is bn_partials again (sums of
// the gradient and of gradient × normalised input), bn_grad (dγ, dβ and the
// two per-channel means dx needs) and bn_backward (dx). Synchronised
// across ranks, bn_totals first rounds each channel's two sums to float
// (with the count after them) for the caller to all-reduce, and bn_stats
// and bn_grad's means read those totals instead. No atomics: the
// results are deterministic. Products and sums whose rounding the CPU
// fixes are written with __f*_rn/__d*_rn so nvcc does not fuse them into
// FMAs; a product of two floats is exact in double, so contracting
// s += (double)a * b changes nothing. Every index fits in int: the Go side
// refuses buffers of 2^31 elements or more. Compiled by
// scripts/cuda/gen-kernels.sh; launched from cuda/norm.go.

#define NORM_BLOCK 256
#define NORM_PER_THREAD 8

// Launch with blockDim NORM_BLOCK and grid (ceil(n·s / (NORM_BLOCK·
// NORM_PER_THREAD)), c): block (k, o) covers NORM_BLOCK·NORM_PER_THREAD
// consecutive values of channel o's n·s and writes two sums to
// part[(k·c + o)·2 + {0, 1}]. With dy null they are Σx and Σx². Otherwise
// they are Σg and Σg·x̂, where g is dy, zeroed where the ReLU output y is
// not positive when y is not null, and x̂ = (x - mean)·invstd in float, as
// engine/nn rounds it.
extern "C" __global__ void cohort_bn_partials(const float* __restrict__ x, const float* __restrict__ dy,
                                              const float* __restrict__ y, const float* __restrict__ mean,
                                              const float* __restrict__ invstd, double* __restrict__ part,
                                              int n, int c, int s)
{
    __shared__ double r1[NORM_BLOCK];
    __shared__ double r2[NORM_BLOCK];
    int cnt = n * s, o = blockIdx.y;
    int base = blockIdx.x * (NORM_BLOCK * NORM_PER_THREAD);
    float m = 0.f, inv = 0.f;
    if (dy != 0) {
        m = mean[o];
        inv = invstd[o];
    }
    double s1 = 0.0, s2 = 0.0;
    for (int t = 0; t < NORM_PER_THREAD; t++) {
        int j = base + t * NORM_BLOCK + threadIdx.x;
        if (j < cnt) {
            int b = j / s, q = j - b * s;
            int at = (b * c + o) * s + q;
            float v = x[at];
            if (dy == 0) {
                s1 += v;
                s2 += (double)v * v;
            } else {
                float g = dy[at];
                if (y != 0 && !(y[at] > 0.f)) {
                    g = 0.f;
                }
                s1 += g;
                s2 += (double)g * __fmul_rn(__fsub_rn(v, m), inv);
            }
        }
    }
    r1[threadIdx.x] = s1;
    r2[threadIdx.x] = s2;
    __syncthreads();
    for (int h = NORM_BLOCK / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) {
            r1[threadIdx.x] += r1[threadIdx.x + h];
            r2[threadIdx.x] += r2[threadIdx.x + h];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        size_t at = ((size_t)blockIdx.x * c + o) * 2;
        part[at] = r1[0];
        part[at + 1] = r2[0];
    }
}

// chunkSums adds channel ch's chunk sums of bn_partials in chunk order.
__device__ static void chunkSums(const double* __restrict__ part, int chunks, int c, int ch, double* s1, double* s2)
{
    double a = 0.0, b = 0.0;
    for (int k = 0; k < chunks; k++) {
        a += part[((size_t)k * c + ch) * 2];
        b += part[((size_t)k * c + ch) * 2 + 1];
    }
    *s1 = a;
    *s2 = b;
}

// One thread per channel: totals[ch] and totals[c + ch] are channel ch's
// two sums (bn_partials' chunks added in order) rounded to float, and
// totals[2c] is count, as engine/nn's BatchNorm hands them to its
// cross-rank reducer.
extern "C" __global__ void cohort_bn_totals(const double* __restrict__ part, int chunks, int c, double count,
                                            float* __restrict__ totals)
{
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        double s1, s2;
        chunkSums(part, chunks, c, ch, &s1, &s2);
        totals[ch] = (float)s1;
        totals[c + ch] = (float)s2;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        totals[2 * c] = (float)count;
    }
}

// One thread per channel. In training (train != 0): the chunk sums of
// bn_partials, added in chunk order, give the mean and the biased
// variance over count values (with totals, not null: the summed totals of
// all ranks and their count, as bn_totals lays them out); mean and invstd
// get them (as floats), the running mean and variance move towards them
// by momentum (the variance unbiased: × count/(count - 1)) and tracked,
// num_batches_tracked, gains one. In evaluation the running statistics
// are copied into mean and invstd and nothing is updated. The formulas
// are engine/nn's, in double.
extern "C" __global__ void cohort_bn_stats(const double* __restrict__ part, int chunks, int c, double count,
                                           float* __restrict__ mean, float* __restrict__ invstd,
                                           float* __restrict__ rmean, float* __restrict__ rvar,
                                           float* __restrict__ tracked, double momentum, double eps, int train,
                                           const float* __restrict__ totals)
{
    if (totals != 0) {
        count = (double)totals[2 * c];
    }
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        if (!train) {
            mean[ch] = rmean[ch];
            invstd[ch] = (float)(1.0 / sqrt(__dadd_rn((double)rvar[ch], eps)));
            continue;
        }
        double s1, s2;
        if (totals != 0) {
            s1 = (double)totals[ch];
            s2 = (double)totals[c + ch];
        } else {
            chunkSums(part, chunks, c, ch, &s1, &s2);
        }
        double mu = s1 / count;
        double v = __dsub_rn(s2 / count, __dmul_rn(mu, mu));
        v = v < 0.0 ? 0.0 : v; // Go's max(v, 0): a NaN stays
        mean[ch] = (float)mu;
        invstd[ch] = (float)(1.0 / sqrt(__dadd_rn(v, eps)));
        double keep = 1.0 - momentum;
        rmean[ch] = (float)__dadd_rn(__dmul_rn(keep, (double)rmean[ch]), __dmul_rn(momentum, mu));
        rvar[ch] = (float)__dadd_rn(__dmul_rn(keep, (double)rvar[ch]), __dmul_rn(__dmul_rn(momentum, v), count) / (count - 1.0));
    }
    if (train && blockIdx.x == 0 && threadIdx.x == 0) {
        tracked[0] += 1.f;
    }
}

// y = x·scale + shift per channel, scale = γ·invstd and shift = β -
// mean·scale rounded as engine/nn rounds them, then ReLU when relu is set
// ((v < 0) ? 0 : v passes NaN).
extern "C" __global__ void cohort_bn_apply(const float* __restrict__ x, float* __restrict__ y,
                                           const float* __restrict__ mean, const float* __restrict__ invstd,
                                           const float* __restrict__ gamma, const float* __restrict__ beta,
                                           int n, int c, int s, int relu)
{
    int total = n * c * s;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ch = (i / s) % c;
        float scale = __fmul_rn(gamma[ch], invstd[ch]);
        float shift = __fsub_rn(beta[ch], __fmul_rn(mean[ch], scale));
        float v = __fadd_rn(__fmul_rn(x[i], scale), shift);
        y[i] = (relu && v < 0.f) ? 0.f : v;
    }
}

// One thread per channel: the chunk sums of bn_partials (backward), added
// in chunk order, set dβ = Σg and dγ = Σg·x̂ (added to them with
// accumulate: this rank's own, as engine/nn's), and coef[ch] = Σg / count,
// coef[c + ch] = Σg·x̂ / count, from the summed totals of all ranks and
// their count instead when totals is not null.
extern "C" __global__ void cohort_bn_grad(const double* __restrict__ part, int chunks, int c, double count,
                                          float* __restrict__ dgamma, float* __restrict__ dbeta,
                                          float* __restrict__ coef, int accumulate, const float* __restrict__ totals)
{
    if (totals != 0) {
        count = (double)totals[2 * c];
    }
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        double s1, s2;
        chunkSums(part, chunks, c, ch, &s1, &s2);
        float g1 = (float)s1, g2 = (float)s2;
        dbeta[ch] = accumulate ? dbeta[ch] + g1 : g1;
        dgamma[ch] = accumulate ? dgamma[ch] + g2 : g2;
        if (totals != 0) {
            s1 = (double)totals[ch];
            s2 = (double)totals[c + ch];
        }
        coef[ch] = (float)(s1 / count);
        coef[c + ch] = (float)(s2 / count);
    }
}

// dx = γ·invstd·(g - mean(g) - x̂·mean(g·x̂)) with g and x̂ as in
// bn_partials and the means from bn_grad's coef: the input gradient of a
// training forward, rounded as engine/nn rounds it.
extern "C" __global__ void cohort_bn_backward(const float* __restrict__ x, const float* __restrict__ dy,
                                              const float* __restrict__ y, const float* __restrict__ mean,
                                              const float* __restrict__ invstd, const float* __restrict__ gamma,
                                              const float* __restrict__ coef, float* __restrict__ dx,
                                              int n, int c, int s)
{
    int total = n * c * s;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ch = (i / s) % c;
        float g = dy[i];
        if (y != 0 && !(y[i] > 0.f)) {
            g = 0.f;
        }
        float inv = invstd[ch];
        float k = __fmul_rn(gamma[ch], inv);
        float xh = __fmul_rn(__fsub_rn(x[i], mean[ch]), inv);
        dx[i] = __fmul_rn(k, __fsub_rn(__fsub_rn(g, coef[ch]), __fmul_rn(xh, coef[c + ch])));
    }
}
