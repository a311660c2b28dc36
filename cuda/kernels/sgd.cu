// SGD over one flat parameter buffer, torch.optim.SGD's rule with dampening
// 0. Every product and sum is rounded on its own (__fmul_rn/__fadd_rn stop
// nvcc from fusing them into FMAs) so that a step matches the CPU engine's
// engine/optim/sgd.go bit for bit on equal inputs.
// Compiled by scripts/cuda/gen-kernels.sh; launched from cuda/kernels.go.

// d = g + wd·w; with a momentum buffer: buf = momentum·buf + d and d = buf
// (or d + momentum·buf for Nesterov); then w -= lr·d. buf starts at zero,
// which gives PyTorch's first step (buf = d) exactly. buf null: no momentum.
extern "C" __global__ void cohort_sgd(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ buf,
                                      int n, float lr, float momentum, float wd, int nesterov)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float wi = w[i];
        float d = __fadd_rn(g[i], __fmul_rn(wd, wi));
        if (buf != 0) {
            float b = __fadd_rn(__fmul_rn(momentum, buf[i]), d);
            buf[i] = b;
            d = nesterov ? __fadd_rn(d, __fmul_rn(momentum, b)) : b;
        }
        w[i] = __fsub_rn(wi, __fmul_rn(lr, d));
    }
}
