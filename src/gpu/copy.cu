/* copy.cu - the copy-list kernel: many copies in one launch (gpu.h,
 * tcpx_gpu_copier), for chunks that pack many small blocks.
 *
 * The list lives in pinned host memory mapped to the device and is read
 * there by the kernel (one 32-byte read per warp, no copy of the list
 * before the launch). tcpx_gpu_copier_run splits long copies into entries
 * of at most kMaxEntryBytes so that one warp per entry keeps the grid busy;
 * warp w copies entry w with warp_copy. Source and destination may be
 * device memory or pinned host memory (UVA), in any alignment. */
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/gpu.h"
#include "util/error.h"
}

#include "gpu/warp_copy.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__global__ void __launch_bounds__(kThreads) copy_list_kernel(const tcpx_gpu_copy *list, unsigned n)
{
    unsigned w = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (w >= n) return;
    tcpx_gpu_copy e = list[w];
    tcpx_wc::warp_copy(reinterpret_cast<uint8_t *>(e.dst), reinterpret_cast<const uint8_t *>(e.src), e.len, lane);
}

} // namespace

extern "C" tcpx_status tcpx_gpu__launch_copy_list(tcpx_gpu_stream *s, const tcpx_gpu_copy *list, unsigned n)
{
    if (n == 0) return TCPX_OK;
    unsigned blocks = (n + kWarps - 1) / kWarps;
    void *args[] = {&list, &n};
    cudaError_t e = cudaLaunchKernel((const void *)copy_list_kernel, dim3(blocks), dim3(kThreads), args, 0,
                                     static_cast<cudaStream_t>(tcpx_gpu_stream_native(s)));
    return e == cudaSuccess ? TCPX_OK : tcpx_gpu__fail("cudaLaunchKernel(copy list)", e);
}
