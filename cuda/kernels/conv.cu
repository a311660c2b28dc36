// Convolution, max-pool and global average pool kernels over N×C×H×W
// float32 batches.
//
// A convolution is one GEMM per layer per batch on "channel-major" (CNHW)
// matrices: im2col writes the batch's patches as a patch×(N·OH·OW) matrix,
// the GEMM W·cols gives the output as Out×(N·OH·OW), and an epilogue
// moves it to NCHW adding the bias. Backward moves dL/dy back to CNHW
// (summing the bias gradient on the way), two GEMMs give dW and the patch
// gradient, and col2im gathers the latter into dL/dx.
//
// Every window-shaped kernel takes the geometry in the same order: n, c,
// h, w (input), k, s, p (kernel side, stride, padding), oh, ow (output).
// Gathers are written per destination element, in the order the CPU layers
// (engine/nn) add the same terms, so no atomics are needed, results are
// deterministic, and col2im and the pool backward equal the CPU's bit for
// bit on equal inputs. Every index fits in int: the Go side refuses
// buffers of 2^31 elements or more. Compiled by scripts/cuda/gen-kernels.sh;
// launched from cuda/conv.go.

// cols[r][j], r = (ci·k + ki)·k + kj and j = (b·oh + oy)·ow + ox, is input
// (b, ci, oy·s - p + ki, ox·s - p + kj), or 0 in the padding.
extern "C" __global__ void cohort_im2col(const float* __restrict__ x, float* __restrict__ cols,
                                         int n, int c, int h, int w, int k, int s, int p, int oh, int ow)
{
    int plane = oh * ow, cnt = n * plane, total = c * k * k * cnt;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int r = i / cnt, j = i - r * cnt;
        int b = j / plane, q = j - b * plane;
        int oy = q / ow, ox = q - oy * ow;
        int ci = r / (k * k), kk = r - ci * k * k;
        int ki = kk / k, kj = kk - ki * k;
        int y = oy * s - p + ki, xx = ox * s - p + kj;
        cols[i] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((b * c + ci) * h + y) * w + xx] : 0.f;
    }
}

// im2col's adjoint as a gather: dx(b, ci, y, x) is the sum of the patch
// gradient entries read from it, in increasing (ki, kj) as engine/nn's
// col2im adds them. Every dx element is written.
extern "C" __global__ void cohort_col2im(const float* __restrict__ cols, float* __restrict__ dx,
                                         int n, int c, int h, int w, int k, int s, int p, int oh, int ow)
{
    int plane = oh * ow, cnt = n * plane, total = n * c * h * w;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int xx = i % w, t = i / w;
        int y = t % h;
        t /= h;
        int ci = t % c, b = t / c;
        const float* base = cols + (size_t)ci * k * k * cnt + b * plane;
        float acc = 0.f;
        for (int ki = 0; ki < k; ki++) {
            int ty = y + p - ki; // oy·s for the output row that reads y through ki
            if (ty < 0 || ty % s != 0 || ty / s >= oh) {
                continue;
            }
            int oy = ty / s;
            for (int kj = 0; kj < k; kj++) {
                int tx = xx + p - kj;
                if (tx < 0 || tx % s != 0 || tx / s >= ow) {
                    continue;
                }
                acc += base[(size_t)(ki * k + kj) * cnt + oy * ow + tx / s];
            }
        }
        dx[i] = acc;
    }
}

// y(b, o, q) = act(cnhw[o][b·plane + q] + bias[o]) for the convolution's
// output; bias may be null, and the ReLU, (v < 0) ? 0 : v, passes NaN.
extern "C" __global__ void cohort_cnhw_to_nchw(const float* __restrict__ cnhw, const float* __restrict__ bias,
                                               float* __restrict__ y, int n, int ch, int plane, int relu)
{
    int cnt = n * plane, total = ch * cnt;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int o = i / cnt, j = i - o * cnt;
        int b = j / plane, q = j - b * plane;
        float v = cnhw[i];
        if (bias != 0) {
            v += bias[o];
        }
        y[(b * ch + o) * plane + q] = (relu && v < 0.f) ? 0.f : v;
    }
}

#define GRAD_BLOCK 256
#define GRAD_PER_THREAD 8

// cnhw[o][b·plane + q] = dy(b, o, q), zeroed where the ReLU output y is
// not positive when y is not null. When part is not null, each block also
// writes the sum of the values it moved to part[blockIdx.x][o], for a
// column sum to finish the bias gradient. Launch with blockDim GRAD_BLOCK
// and grid (ceil(n·plane / (GRAD_BLOCK·GRAD_PER_THREAD)), ch): a block
// covers GRAD_BLOCK·GRAD_PER_THREAD consecutive entries of one row.
extern "C" __global__ void cohort_nchw_to_cnhw_grad(const float* __restrict__ dy, const float* __restrict__ y,
                                                    float* __restrict__ cnhw, float* __restrict__ part,
                                                    int n, int ch, int plane)
{
    __shared__ float red[GRAD_BLOCK];
    int cnt = n * plane, o = blockIdx.y;
    int base = blockIdx.x * (GRAD_BLOCK * GRAD_PER_THREAD);
    float sum = 0.f;
    for (int t = 0; t < GRAD_PER_THREAD; t++) {
        int j = base + t * GRAD_BLOCK + threadIdx.x;
        if (j < cnt) {
            int b = j / plane, q = j - b * plane;
            int src = (b * ch + o) * plane + q;
            float g = dy[src];
            if (y != 0 && !(y[src] > 0.f)) {
                g = 0.f;
            }
            cnhw[o * cnt + j] = g;
            sum += g;
        }
    }
    if (part == 0) {
        return; // uniform over the block: no thread waits at a barrier below
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int h = GRAD_BLOCK / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) {
            red[threadIdx.x] += red[threadIdx.x + h];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        part[blockIdx.x * ch + o] = red[0];
    }
}

// Max pool over planes = n·c planes: y is each window's maximum (then
// ReLU'd when relu is set) and arg its offset within the input plane.
// Padding never wins. As engine/nn's MaxPool2d: ties keep the first
// position in row-major order, and a NaN wins (the last NaN of the window).
extern "C" __global__ void cohort_maxpool(const float* __restrict__ x, float* __restrict__ y, int* __restrict__ arg,
                                          int planes, int h, int w, int k, int s, int p, int oh, int ow, int relu)
{
    int total = planes * oh * ow;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ox = i % ow, t = i / ow;
        int oy = t % oh, pl = t / oh;
        int y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h);
        int x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w);
        const float* src = x + (size_t)pl * h * w;
        float best = -INFINITY;
        int at = y0 * w + x0;
        for (int r = y0; r < y1; r++) {
            for (int cc = x0; cc < x1; cc++) {
                int idx = r * w + cc;
                float v = src[idx];
                bool nan = v != v;
                if ((v > best) != nan) {
                    at = idx;
                }
                if (v > best || nan) {
                    best = v; // a NaN best stays: nothing compares above it
                }
            }
        }
        y[i] = (relu && best < 0.f) ? 0.f : best;
        arg[i] = at;
    }
}

// The max pool's backward as a gather: dx at input offset idx of a plane
// is the sum of dy over the outputs whose window holds idx and whose arg
// is idx (and, with relu, whose output y is positive), in increasing
// output order as engine/nn adds them. Every dx element is written.
extern "C" __global__ void cohort_maxpool_backward(const float* __restrict__ dy, const int* __restrict__ arg,
                                                   const float* __restrict__ y, float* __restrict__ dx,
                                                   int planes, int h, int w, int k, int s, int p, int oh, int ow)
{
    int total = planes * h * w;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int xx = i % w, t = i / w;
        int yy = t % h, pl = t / h;
        int idx = yy * w + xx;
        // Output oy's window covers rows [oy·s - p, oy·s - p + k).
        int ty = yy + p - k + 1, tx = xx + p - k + 1;
        int oy0 = ty <= 0 ? 0 : (ty + s - 1) / s, oy1 = min((yy + p) / s, oh - 1);
        int ox0 = tx <= 0 ? 0 : (tx + s - 1) / s, ox1 = min((xx + p) / s, ow - 1);
        size_t off = (size_t)pl * oh * ow;
        float acc = 0.f;
        for (int oy = oy0; oy <= oy1; oy++) {
            for (int ox = ox0; ox <= ox1; ox++) {
                size_t o = off + oy * ow + ox;
                if (arg[o] == idx && (y == 0 || y[o] > 0.f)) {
                    acc += dy[o];
                }
            }
        }
        dx[i] = acc;
    }
}

// Global average pool over planes = n·c planes of plane values each: y[i]
// is the float sum of plane i, in order, times 1/plane, as engine/nn's
// GlobalAvgPool computes it. One thread per plane: the planes a ResNet
// head pools are small.
extern "C" __global__ void cohort_global_avgpool(const float* __restrict__ x, float* __restrict__ y,
                                                 int planes, int plane)
{
    float inv = 1.f / (float)plane;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < planes; i += gridDim.x * blockDim.x) {
        const float* src = x + (size_t)i * plane;
        float sum = 0.f;
        for (int j = 0; j < plane; j++) {
            sum += src[j];
        }
        y[i] = __fmul_rn(sum, inv);
    }
}

// The global average pool's backward: every value of plane p gets dy[p]/plane
// (dy[p] times 1/plane, as engine/nn rounds it).
extern "C" __global__ void cohort_global_avgpool_backward(const float* __restrict__ dy, float* __restrict__ dx,
                                                          int planes, int plane)
{
    float inv = 1.f / (float)plane;
    int total = planes * plane;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        dx[i] = __fmul_rn(dy[i / plane], inv);
    }
}
