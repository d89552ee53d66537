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
 * A warp copies one fragment with warp_copy (warp_copy.cuh). */
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/error.h"
}

#include "gpu/warp_copy.cuh"

using tcpx_wc::warp_copy;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxFragsPerBlock = 256;       /* descriptors in shared memory (4 KiB) */
constexpr int kBlocksPerSm = 4;
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
