// Host execution of Cohort's kernels for scripts/cuda/emu-test.sh, which
// copies cuda/kernels/NAME.cu here as k_NAME.h. CUDA's built-ins are
// emulated: kernels without barriers run thread after thread; kernels
// with __syncthreads or warp shuffles run one OS thread per CUDA thread of
// a block (from a pool kept between launches), block after block, so
// barriers and shuffles behave as on a GPU.
// A new kernel needs a line in emu_launch and in kernelNames.
#include <algorithm>
#include <barrier>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct D3 {
    unsigned x = 1, y = 1, z = 1;
};
static thread_local D3 threadIdx, blockIdx;
static D3 blockDim, gridDim;
static std::barrier<>* blockBarrier;            // __syncthreads of the running block
static std::vector<std::unique_ptr<std::barrier<>>> warpBarriers;
static std::vector<float> warpExchange;         // one slot per thread, for shuffles

#define __global__
#define __device__
#define __shared__ static
#define __syncthreads() blockBarrier->arrive_and_wait()
using std::max;
using std::min;

static float __shfl_xor_sync(unsigned, float v, int lane) {
    unsigned t = threadIdx.y * blockDim.x + threadIdx.x, w = t / 32;
    warpExchange[t] = v;
    warpBarriers[w]->arrive_and_wait();
    float r = warpExchange[w * 32 + ((t % 32) ^ lane)];
    warpBarriers[w]->arrive_and_wait();
    return r;
}
// Rounded operations: volatile stops the compiler from fusing them.
static float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
static float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static double __dadd_rn(double a, double b) { volatile double r = a + b; return r; }
static double __dsub_rn(double a, double b) { volatile double r = a - b; return r; }
static double __dmul_rn(double a, double b) { volatile double r = a * b; return r; }

#include "k_conv.h"
#include "k_elementwise.h"
#include "k_loss.h"
#include "k_sgd.h"
#include "k_norm.h"

// Pool keeps the OS threads of kernels with barriers alive between
// launches: starting up to 1024 threads per launch (under AddressSanitizer)
// cost more than the kernels. run(n, f) calls f(0) … f(n-1) on n of them
// at once and returns when all are done.
class Pool {
    std::mutex mu;
    std::condition_variable start, done;
    std::vector<std::thread> threads;
    const std::function<void(int)>* job = nullptr;
    unsigned long generation = 0;
    int active = 0, remaining = 0;

    void loop(int id) {
        unsigned long seen = 0;
        std::unique_lock<std::mutex> lk(mu);
        for (;;) {
            start.wait(lk, [&] { return generation != seen; });
            seen = generation;
            if (id >= active) continue;
            const std::function<void(int)>* f = job;
            lk.unlock();
            (*f)(id);
            lk.lock();
            if (--remaining == 0) done.notify_one();
        }
    }

public:
    void run(int n, const std::function<void(int)>& f) {
        std::unique_lock<std::mutex> lk(mu);
        while ((int)threads.size() < n) {
            int id = (int)threads.size();
            threads.emplace_back([this, id] { loop(id); });
        }
        job = &f;
        active = remaining = n;
        generation++;
        start.notify_all();
        done.wait(lk, [&] { return remaining == 0; });
    }
};

// workers is never destroyed: its threads wait for work until the process
// exits.
static Pool& workers() {
    static Pool* p = new Pool;
    return *p;
}

// run executes f over a gx×gy grid of bx×by blocks.
static void run(int gx, int gy, int bx, int by, bool barriers, const std::function<void()>& f) {
    gridDim = D3{(unsigned)gx, (unsigned)gy, 1};
    blockDim = D3{(unsigned)bx, (unsigned)by, 1};
    if (!barriers) {
        for (int y = 0; y < gy; y++)
            for (int x = 0; x < gx; x++)
                for (int ty = 0; ty < by; ty++)
                    for (int tx = 0; tx < bx; tx++) {
                        blockIdx = D3{(unsigned)x, (unsigned)y, 1};
                        threadIdx = D3{(unsigned)tx, (unsigned)ty, 1};
                        f();
                    }
        return;
    }
    int nt = bx * by;
    std::barrier<> block(nt), between(nt);
    blockBarrier = &block;
    warpBarriers.clear();
    for (int w = 0; w < (nt + 31) / 32; w++) warpBarriers.push_back(std::make_unique<std::barrier<>>(std::min(32, nt - 32 * w)));
    warpExchange.assign(nt, 0.f);
    workers().run(nt, [&](int t) {
        threadIdx = D3{(unsigned)(t % bx), (unsigned)(t / bx), 1};
        for (int y = 0; y < gy; y++)
            for (int x = 0; x < gx; x++) {
                blockIdx = D3{(unsigned)x, (unsigned)y, 1};
                f();
                between.arrive_and_wait(); // shared memory is the next block's
            }
    });
}

// Each argument sits in its own 8-byte slot, low bytes first.
template <class T> static T arg(void** p, int i) {
    T v;
    std::memcpy(&v, p[i], sizeof v);
    return v;
}
#define PTR(i, T) ((T*)(uintptr_t)arg<uint64_t>(p, i))
#define INT(i) arg<int>(p, i)
#define F32(i) arg<float>(p, i)
#define F64(i) arg<double>(p, i)

static const char* kernelNames[] = {
    "cohort_bias_act", "cohort_relu_backward", "cohort_col_sum", "cohort_softmax_xent", "cohort_loss_reduce", "cohort_sgd",
    "cohort_add_act", "cohort_im2col", "cohort_col2im", "cohort_cnhw_to_nchw", "cohort_nchw_to_cnhw_grad", "cohort_maxpool",
    "cohort_maxpool_backward", "cohort_global_avgpool", "cohort_global_avgpool_backward", "cohort_bn_partials", "cohort_bn_stats", "cohort_bn_totals",
    "cohort_bn_apply", "cohort_bn_grad", "cohort_bn_backward"};

extern "C" int emu_has(const char* name) {
    for (auto n : kernelNames)
        if (std::strcmp(n, name) == 0) return 1;
    return 0;
}

extern "C" int emu_launch(const char* name, int gx, int gy, int bx, int by, void** p) {
    static std::mutex one; // the launch shape and the pool are shared
    std::lock_guard<std::mutex> lock(one);
    std::string n = name;
    if (n == "cohort_bias_act")
        run(gx, gy, bx, by, false, [&] { cohort_bias_act(PTR(0, float), PTR(1, const float), INT(2), INT(3), INT(4)); });
    else if (n == "cohort_relu_backward")
        run(gx, gy, bx, by, false, [&] { cohort_relu_backward(PTR(0, float), PTR(1, const float), PTR(2, const float), INT(3)); });
    else if (n == "cohort_col_sum")
        run(gx, gy, bx, by, true, [&] { cohort_col_sum(PTR(0, float), PTR(1, const float), INT(2), INT(3), INT(4)); });
    else if (n == "cohort_add_act")
        run(gx, gy, bx, by, false, [&] { cohort_add_act(PTR(0, float), PTR(1, const float), PTR(2, const float), INT(3), INT(4)); });
    else if (n == "cohort_softmax_xent")
        run(gx, gy, bx, by, true, [&] { cohort_softmax_xent(PTR(0, const float), PTR(1, const int), PTR(2, float), PTR(3, float), PTR(4, int), INT(5), INT(6), F32(7)); });
    else if (n == "cohort_loss_reduce")
        run(gx, gy, bx, by, true, [&] { cohort_loss_reduce(PTR(0, const float), PTR(1, const int), INT(2), PTR(3, double)); });
    else if (n == "cohort_sgd")
        run(gx, gy, bx, by, false, [&] { cohort_sgd(PTR(0, float), PTR(1, const float), PTR(2, float), INT(3), F32(4), F32(5), F32(6), INT(7)); });
    else if (n == "cohort_im2col")
        run(gx, gy, bx, by, false, [&] { cohort_im2col(PTR(0, const float), PTR(1, float), INT(2), INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10)); });
    else if (n == "cohort_col2im")
        run(gx, gy, bx, by, false, [&] { cohort_col2im(PTR(0, const float), PTR(1, float), INT(2), INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10)); });
    else if (n == "cohort_cnhw_to_nchw")
        run(gx, gy, bx, by, false, [&] { cohort_cnhw_to_nchw(PTR(0, const float), PTR(1, const float), PTR(2, float), INT(3), INT(4), INT(5), INT(6)); });
    else if (n == "cohort_nchw_to_cnhw_grad")
        run(gx, gy, bx, by, true, [&] { cohort_nchw_to_cnhw_grad(PTR(0, const float), PTR(1, const float), PTR(2, float), PTR(3, float), INT(4), INT(5), INT(6)); });
    else if (n == "cohort_maxpool")
        run(gx, gy, bx, by, false, [&] { cohort_maxpool(PTR(0, const float), PTR(1, float), PTR(2, int), INT(3), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10), INT(11)); });
    else if (n == "cohort_maxpool_backward")
        run(gx, gy, bx, by, false, [&] { cohort_maxpool_backward(PTR(0, const float), PTR(1, const int), PTR(2, const float), PTR(3, float), INT(4), INT(5), INT(6), INT(7), INT(8), INT(9), INT(10), INT(11)); });
    else if (n == "cohort_global_avgpool")
        run(gx, gy, bx, by, false, [&] { cohort_global_avgpool(PTR(0, const float), PTR(1, float), INT(2), INT(3)); });
    else if (n == "cohort_global_avgpool_backward")
        run(gx, gy, bx, by, false, [&] { cohort_global_avgpool_backward(PTR(0, const float), PTR(1, float), INT(2), INT(3)); });
    else if (n == "cohort_bn_partials")
        run(gx, gy, bx, by, true, [&] { cohort_bn_partials(PTR(0, const float), PTR(1, const float), PTR(2, const float), PTR(3, const float), PTR(4, const float), PTR(5, double), INT(6), INT(7), INT(8)); });
    else if (n == "cohort_bn_stats")
        run(gx, gy, bx, by, false, [&] { cohort_bn_stats(PTR(0, const double), INT(1), INT(2), F64(3), PTR(4, float), PTR(5, float), PTR(6, float), PTR(7, float), PTR(8, float), F64(9), F64(10), INT(11), PTR(12, const float)); });
    else if (n == "cohort_bn_totals")
        run(gx, gy, bx, by, false, [&] { cohort_bn_totals(PTR(0, const double), INT(1), INT(2), F64(3), PTR(4, float)); });
    else if (n == "cohort_bn_apply")
        run(gx, gy, bx, by, false, [&] { cohort_bn_apply(PTR(0, const float), PTR(1, float), PTR(2, const float), PTR(3, const float), PTR(4, const float), PTR(5, const float), INT(6), INT(7), INT(8), INT(9)); });
    else if (n == "cohort_bn_grad")
        run(gx, gy, bx, by, false, [&] { cohort_bn_grad(PTR(0, const double), INT(1), INT(2), F64(3), PTR(4, float), PTR(5, float), PTR(6, float), INT(7), PTR(8, const float)); });
    else if (n == "cohort_bn_backward")
        run(gx, gy, bx, by, false, [&] { cohort_bn_backward(PTR(0, const float), PTR(1, const float), PTR(2, const float), PTR(3, const float), PTR(4, const float), PTR(5, const float), PTR(6, const float), PTR(7, float), INT(8), INT(9), INT(10)); });
    else
        return 1;
    return 0;
}

// Page-locked host memory is plain host memory here, allocated to the
// byte so that AddressSanitizer sees overruns. Package cuda calls these
// two driver functions itself (cu does not bind cuMemHostAlloc); the
// empty libcuda.so that emu-test.sh links against leaves them to us.
extern "C" int cuMemHostAlloc(void** p, size_t bytes, unsigned int) {
    *p = malloc(bytes);
    return *p == nullptr ? 2 : 0; // CUDA_ERROR_OUT_OF_MEMORY
}

extern "C" int cuMemFreeHost(void* p) {
    free(p);
    return 0;
}
