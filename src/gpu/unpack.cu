/* unpack.cu - the GPUDirect-TCPX unpack kernel: gather a fragment list from
 * the bounce buffer into the destination (unpack.h, DESIGN.md §3 and §6).
 *
 * One launch per receive. Block b owns fragments [b*fpb, (b+1)*fpb): its
 * first threads load those descriptors at once (one 16-byte load each, from
 * the host-mapped list directly: no copy of the list before the launch) into
 * shared memory; then warp w of W copies fragments w, w+W, ... of the block.
 * The grid grows with the fragment count: about four blocks per SM, a block
 * having one warp per fragment up to 8 warps (so 256 pages spread over 256
 * one-warp blocks on an H100, 2048 pages over 512 blocks of 4 warps).
 *
 * A warp copies one fragment as: head bytes up to the first 16-byte aligned
 * destination address, 16-byte vectors, tail bytes (< 16). The vectors use
 * plain 16-byte loads when the source is then aligned too (the usual case:
 * page-aligned bounce offsets, aligned destination), else aligned 16-byte
 * loads of the source with the bytes shifted into place (funnel shifts), so
 * that stores are always 16-byte. Several vectors are loaded per lane before
 * any is stored. Head and tail bytes are single byte copies by separate lanes
 * (at most 15 each, never volatile). */
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/error.h"
}

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxFragsPerBlock = 256;       /* descriptors in shared memory (4 KiB) */
constexpr int kBlocksPerSm = 4;
constexpr int kUnrollAligned = 8;             /* 8 x 16 B x 32 lanes = one 4 KiB page per pass */
constexpr int kUnrollShifted = 4;

__device__ __forceinline__ uint64_t shr128(uint64_t lo, uint64_t hi, unsigned sh)
{
    /* Bytes sh/8 .. sh/8+7 of hi:lo (little-endian); sh in 0..56. */
    return sh ? (lo >> sh) | (hi << (64 - sh)) : lo;
}

/* 16 bytes starting r bytes (1..15) into the 32 bytes a:b. */
__device__ __forceinline__ ulonglong2 shift16(ulonglong2 a, ulonglong2 b, unsigned r)
{
    unsigned sh = (r & 7) * 8;
    uint64_t w0 = r < 8 ? a.x : a.y;
    uint64_t w1 = r < 8 ? a.y : b.x;
    uint64_t w2 = r < 8 ? b.x : b.y;
    return make_ulonglong2(shr128(w0, w1, sh), shr128(w1, w2, sh));
}

/* Copy len bytes src -> dst with the 32 lanes of a warp. */
__device__ __forceinline__ void warp_copy(uint8_t *dst, const uint8_t *src, uint64_t len, unsigned lane)
{
    uint64_t head = (16 - ((uintptr_t)dst & 15)) & 15;
    if (head > len) head = len;
    if (lane < head) dst[lane] = src[lane];
    dst += head;
    src += head;
    len -= head;

    uint64_t nvec = len >> 4;
    uint64_t tail = len & 15;
    ulonglong2 *d = reinterpret_cast<ulonglong2 *>(dst);
    unsigned r = (unsigned)((uintptr_t)src & 15);
    if (r == 0) {
        const ulonglong2 *s = reinterpret_cast<const ulonglong2 *>(src);
        for (uint64_t k0 = lane; k0 < nvec; k0 += 32 * kUnrollAligned) {
            ulonglong2 v[kUnrollAligned];
#pragma unroll
            for (int u = 0; u < kUnrollAligned; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) v[u] = s[k];
            }
#pragma unroll
            for (int u = 0; u < kUnrollAligned; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) d[k] = v[u];
            }
        }
    } else {
        /* Vector k takes source bytes [16k, 16k+16) = bytes r.. of aligned
         * blocks k and k+1 of s. Block k+1 always holds a byte that is copied
         * (r >= 1), so no load touches memory outside the fragment's blocks. */
        const ulonglong2 *s = reinterpret_cast<const ulonglong2 *>(src - r);
        for (uint64_t k0 = lane; k0 < nvec; k0 += 32 * kUnrollShifted) {
            ulonglong2 a[kUnrollShifted], b[kUnrollShifted];
#pragma unroll
            for (int u = 0; u < kUnrollShifted; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) {
                    a[u] = s[k];
                    b[u] = s[k + 1];
                }
            }
#pragma unroll
            for (int u = 0; u < kUnrollShifted; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) d[k] = shift16(a[u], b[u], r);
            }
        }
    }

    uint64_t t = nvec << 4;
    if (lane < tail) dst[t + lane] = src[t + lane];
}

__global__ void __launch_bounds__(kThreads)
    unpack_kernel(const ulonglong2 *frags, unsigned count, unsigned fpb, const uint8_t *bounce, uint8_t *dst,
                  uint64_t dst_size)
{
    __shared__ ulonglong2 desc[kMaxFragsPerBlock];
    unsigned first = blockIdx.x * fpb;
    unsigned n = count - first < fpb ? count - first : fpb;
    for (unsigned i = threadIdx.x; i < n; i += blockDim.x) desc[i] = frags[first + i];
    __syncthreads();

    unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (unsigned i = warp; i < n; i += warps) {
        ulonglong2 f = desc[i];
        uint64_t src_off = (uint32_t)f.x, len = f.x >> 32, dst_off = f.y;
        if (len > dst_size || dst_off > dst_size - len) continue;   /* tcpx_unpack_check reports these */
        warp_copy(dst + dst_off, bounce + src_off, len, lane);
    }
}

} // namespace

extern "C" tcpx_status tcpx_gpu_unpack(tcpx_gpu_stream *s, const tcpx_unpack_frag *frags, uint64_t count,
                                       const void *bounce, void *dst, size_t dst_size)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "unpack: NULL stream");
    if (count > TCPX_UNPACK_MAX_PAGES)
        return tcpx_set_error(TCPX_ERR_INVALID, "unpack: %llu fragments, more than the %d a slot holds",
                              (unsigned long long)count, TCPX_UNPACK_MAX_PAGES);
    if (count == 0) return TCPX_OK;
    if (!frags || !bounce || !dst)
        return tcpx_set_error(TCPX_ERR_INVALID, "unpack: NULL %s",
                              !frags ? "fragment list" : !bounce ? "bounce buffer" : "destination");
    if ((uintptr_t)frags & 15)
        return tcpx_set_error(TCPX_ERR_INVALID, "unpack: fragment list %p is not 16-byte aligned", (const void *)frags);

    int dev = tcpx_gpu_stream_device(s), prev;
    tcpx_status st = tcpx_gpu__enter(dev, &prev);
    if (st) return st;
    int sms = 0;
    cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) {
        st = tcpx_gpu__fail("cudaDeviceGetAttribute", e);
    } else {
        /* About kBlocksPerSm blocks per SM, each with up to kWarps warps and
         * up to kMaxFragsPerBlock fragments: a short list still spreads over
         * the SMs (blocks of one warp and one fragment), a long one loads
         * several descriptors per block at once. */
        unsigned n = (unsigned)count;
        unsigned target = (unsigned)(sms > 0 ? sms : 1) * kBlocksPerSm;
        unsigned fpb = (n + target - 1) / target;
        if (fpb > kMaxFragsPerBlock) fpb = kMaxFragsPerBlock;
        unsigned blocks = (n + fpb - 1) / fpb;
        unsigned threads = 32 * (fpb < (unsigned)kWarps ? fpb : (unsigned)kWarps);
        const ulonglong2 *f = reinterpret_cast<const ulonglong2 *>(frags);
        const uint8_t *b = static_cast<const uint8_t *>(bounce);
        uint8_t *d = static_cast<uint8_t *>(dst);
        uint64_t size = dst_size;
        void *args[] = {&f, &n, &fpb, &b, &d, &size};
        e = cudaLaunchKernel((const void *)unpack_kernel, dim3(blocks), dim3(threads), args, 0,
                             static_cast<cudaStream_t>(tcpx_gpu_stream_native(s)));
        if (e != cudaSuccess) st = tcpx_gpu__fail("cudaLaunchKernel(unpack)", e);
    }
    tcpx_gpu__leave(prev);
    return st;
}

extern "C" tcpx_status tcpx_gpu_host_device_ptr(tcpx_gpu *g, void *host, void **dev)
{
    if (!dev) return tcpx_set_error(TCPX_ERR_INVALID, "host_device_ptr: NULL result");
    *dev = NULL;
    if (!g || !host) return tcpx_set_error(TCPX_ERR_INVALID, "host_device_ptr: NULL %s", !g ? "device" : "pointer");
    int prev;
    tcpx_status st = tcpx_gpu__enter(tcpx_gpu_device(g), &prev);
    if (st) return st;
    void *p = NULL;
    cudaError_t e = cudaHostGetDevicePointer(&p, host, 0);
    if (e != cudaSuccess)
        st = tcpx_gpu__fail("cudaHostGetDevicePointer", e);
    else
        *dev = p;
    tcpx_gpu__leave(prev);
    return st;
}
