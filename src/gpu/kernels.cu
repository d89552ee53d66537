/* kernels.cu - test-data kernels: fill device memory with the reproducible
 * sequence of gpu.h and compare device memory against it.
 *
 * Layout of a buffer of n bytes at any address: `head` bytes up to the first
 * 16-byte aligned address, `nvec` 16-byte vectors, then a tail of < 16 bytes.
 * The vectors are handled by a grid-stride loop (several per thread, 16-byte
 * loads and stores); head and tail bytes by the first threads of the grid.
 * A vector starting at buffer offset o spans words o/8 .. o/8+2; when
 * o % 8 == 0 (the buffer's address is 8-byte aligned) it is exactly two words. */
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/gpu.h"
#include "util/error.h"
}

namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;          /* vectors loaded before any is checked */
constexpr int kMinPerThread = 4;    /* vectors per thread before adding blocks */
constexpr int kBlocksPerSm = 8;

struct Layout {
    size_t n;          /* bytes */
    size_t head;       /* bytes before the first 16-byte aligned address */
    size_t nvec;       /* 16-byte vectors after the head */
    size_t tail_start; /* offset of the tail (n - tail_start < 16 bytes) */
    unsigned shift;    /* 8 * (head % 8): bit offset of a vector inside its first word */
};

Layout layout_of(const void *p, size_t n)
{
    Layout L;
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    L.n = n;
    L.head = (16 - (a & 15)) & 15;
    if (L.head > n) L.head = n;
    L.nvec = (n - L.head) / 16;
    L.tail_start = L.head + 16 * L.nvec;
    L.shift = (unsigned)(L.head & 7) * 8;
    return L;
}

__device__ __forceinline__ uint64_t funnel(uint64_t lo, uint64_t hi, unsigned sh)
{
    return (lo >> sh) | (hi << (64 - sh));   /* sh in 8..56 */
}

/* The 16 expected bytes at buffer offset o (o % 8 == shift / 8). */
template <bool kAligned8>
__device__ __forceinline__ ulonglong2 expect16(uint64_t key, uint64_t o, unsigned shift)
{
    uint64_t q = o >> 3;
    uint64_t w0 = tcpx_random_word(key, q), w1 = tcpx_random_word(key, q + 1);
    if (kAligned8) return make_ulonglong2(w0, w1);
    uint64_t w2 = tcpx_random_word(key, q + 2);
    return make_ulonglong2(funnel(w0, w1, shift), funnel(w1, w2, shift));
}

__device__ __forceinline__ uint8_t expect_byte(uint64_t key, uint64_t o)
{
    return (uint8_t)(tcpx_random_word(key, o >> 3) >> ((o & 7) * 8));
}

template <bool kAligned8>
__global__ void __launch_bounds__(kThreads) fill_kernel(uint8_t *dst, Layout L, uint64_t key)
{
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    ulonglong2 *v = reinterpret_cast<ulonglong2 *>(dst + L.head);
    for (size_t k = tid; k < L.nvec; k += stride)
        v[k] = expect16<kAligned8>(key, L.head + 16 * k, L.shift);
    if (tid < L.head) dst[tid] = expect_byte(key, tid);
    if (tid < L.n - L.tail_start) dst[L.tail_start + tid] = expect_byte(key, L.tail_start + tid);
}

/* What byte o of a checked buffer must hold: le64(stamp) over [0, h) and
 * over [n - h, n) (the tail's where they overlap), the sequence elsewhere
 * (h == 0: the sequence everywhere). */
__device__ __forceinline__ uint8_t expect_at(uint64_t key, uint64_t o, size_t n, size_t h, uint64_t stamp)
{
    if (o >= n - h) return (uint8_t)(stamp >> (8 * (o - (n - h))));
    if (o < h) return (uint8_t)(stamp >> (8 * o));
    return expect_byte(key, o);
}

template <bool kAligned8>
__global__ void __launch_bounds__(kThreads)
    compare_kernel(const uint8_t *src, Layout L, uint64_t key, size_t h, uint64_t stamp,
                   unsigned long long *first_bad)
{
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    const ulonglong2 *v = reinterpret_cast<const ulonglong2 *>(src + L.head);
    for (size_t k0 = tid; k0 < L.nvec; k0 += stride * kUnroll) {
        ulonglong2 x[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            size_t k = k0 + u * stride;
            x[u] = k < L.nvec ? v[k] : make_ulonglong2(0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            size_t k = k0 + u * stride;
            if (k >= L.nvec) break;
            uint64_t o = L.head + 16 * k;
            if (h && (o < h || o + 16 > L.n - h)) { /* a vector with stamp bytes: byte by byte */
                for (int b = 0; b < 16; b++) {
                    uint8_t got = (uint8_t)((b < 8 ? x[u].x : x[u].y) >> (8 * (b & 7)));
                    if (got != expect_at(key, o + b, L.n, h, stamp)) {
                        atomicMin(first_bad, (unsigned long long)(o + b));
                        break;
                    }
                }
                continue;
            }
            ulonglong2 e = expect16<kAligned8>(key, o, L.shift);
            uint64_t d0 = x[u].x ^ e.x, d1 = x[u].y ^ e.y;
            if (d0 | d1) {
                uint64_t at = d0 ? o + ((unsigned)(__ffsll((long long)d0) - 1) >> 3)
                                 : o + 8 + ((unsigned)(__ffsll((long long)d1) - 1) >> 3);
                atomicMin(first_bad, (unsigned long long)at);
            }
        }
    }
    if (tid < L.head && src[tid] != expect_at(key, tid, L.n, h, stamp))
        atomicMin(first_bad, (unsigned long long)tid);
    if (tid < L.n - L.tail_start) {
        size_t o = L.tail_start + tid;
        if (src[o] != expect_at(key, o, L.n, h, stamp)) atomicMin(first_bad, (unsigned long long)o);
    }
}

tcpx_status grid_for(const Layout &L, int device, unsigned *blocks)
{
    int sms = 0;
    cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (e != cudaSuccess) return tcpx_gpu__fail("cudaDeviceGetAttribute", e);
    size_t per_block = (size_t)kThreads * kMinPerThread;
    size_t want = (L.nvec + per_block - 1) / per_block;
    size_t cap = (size_t)(sms > 0 ? sms : 1) * kBlocksPerSm;
    *blocks = (unsigned)(want < 1 ? 1 : want > cap ? cap : want);
    return TCPX_OK;
}

} // namespace

extern "C" tcpx_status tcpx_gpu_fill_random(tcpx_gpu_stream *s, void *dst, size_t n, uint64_t seed)
{
    if (n == 0) return TCPX_OK;
    if (!dst) return tcpx_set_error(TCPX_ERR_INVALID, "fill_random: NULL destination");
    int dev = tcpx_gpu_stream_device(s), prev;
    tcpx_status st = tcpx_gpu__enter(dev, &prev);
    if (st) return st;
    Layout L = layout_of(dst, n);
    uint64_t key = tcpx_random_key(seed);
    uint8_t *p = static_cast<uint8_t *>(dst);
    unsigned blocks = 1;
    if (!(st = grid_for(L, dev, &blocks))) {
        void *args[] = {&p, &L, &key};
        const void *fn = L.shift ? (const void *)fill_kernel<false> : (const void *)fill_kernel<true>;
        cudaError_t e = cudaLaunchKernel(fn, dim3(blocks), dim3(kThreads), args, 0,
                                         static_cast<cudaStream_t>(tcpx_gpu_stream_native(s)));
        if (e != cudaSuccess) st = tcpx_gpu__fail("cudaLaunchKernel(fill_random)", e);
    }
    tcpx_gpu__leave(prev);
    return st;
}

extern "C" tcpx_status tcpx_gpu__launch_compare(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key,
                                                size_t h, uint64_t stamp, void *d_first_bad)
{
    /* The caller made the stream's device current and set *d_first_bad to ~0. */
    Layout L = layout_of(src, n);
    const uint8_t *p = static_cast<const uint8_t *>(src);
    unsigned long long *bad = static_cast<unsigned long long *>(d_first_bad);
    unsigned blocks = 1;
    tcpx_status st = grid_for(L, tcpx_gpu_stream_device(s), &blocks);
    if (st) return st;
    void *args[] = {&p, &L, &key, &h, &stamp, &bad};
    const void *fn = L.shift ? (const void *)compare_kernel<false> : (const void *)compare_kernel<true>;
    cudaError_t e = cudaLaunchKernel(fn, dim3(blocks), dim3(kThreads), args, 0,
                                     static_cast<cudaStream_t>(tcpx_gpu_stream_native(s)));
    if (e != cudaSuccess) return tcpx_gpu__fail("cudaLaunchKernel(compare_random)", e);
    return TCPX_OK;
}
