/* devmem_emu_mem.c - the emulator's two memory backends.
 *
 * CUDA (built with DEVMEM_EMU_CUDA, a device present, DEVMEM_EMU_HOST unset
 * or 0): the bounce pool and the device handle are cudaMalloc memory of the
 * device that was current when the pool was made; fragment lists are
 * cudaHostAlloc(Mapped|Portable) memory; staging buffers are pinned so that
 * copies into the pool are asynchronous. Copies and memsets run on the
 * per-thread default stream of the pool's device: it never waits for the
 * caller's non-blocking streams, and each call waits for its own work
 * before returning. The calling thread's current device is restored.
 *
 * Host: plain heap memory and memcpy/memset, for running the protocol
 * without a GPU.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmem_emu.h"

/* ---- host ---- */

static int host_bind(void) { return TCPX_NCCL_SUCCESS; }

static int host_alloc(size_t n, void **p)
{
    /* Page-aligned, as device allocations are. */
    *p = NULL;
    if (posix_memalign(p, EMU_PAGE, n ? n : 1)) {
        *p = NULL;
        EMU_WARN("NET/DevmemEmu: cannot allocate %zu bytes of host memory", n);
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    return TCPX_NCCL_SUCCESS;
}

static void host_free(void *p) { free(p); }

static int host_mapped_alloc(size_t n, void **host, void **dev)
{
    int rc = host_alloc(n, host);
    *dev = *host;
    return rc;
}

static int host_put(void *dst, const void *src, size_t n)
{
    if (n) memcpy(dst, src, n);
    return TCPX_NCCL_SUCCESS;
}

static int host_fill(void *dst, int byte, size_t n)
{
    memset(dst, byte, n);
    return TCPX_NCCL_SUCCESS;
}

static int host_wait(void) { return TCPX_NCCL_SUCCESS; }

/* Host mode takes any pointer for a CUDA registration (test-only). */
static int host_is_device(const void *p) { return 1; }

static const emu_mem host_mem = {
    .name = "host",
    .cuda = 0,
    .bind = host_bind,
    .dev_alloc = host_alloc,
    .dev_free = host_free,
    .pinned_alloc = host_alloc,
    .pinned_free = host_free,
    .mapped_alloc = host_mapped_alloc,
    .mapped_free = host_free,
    .put = host_put,
    .fill = host_fill,
    .wait = host_wait,
    .get = host_put,
    .is_device = host_is_device,
};

const emu_mem *emu_mem_ops = &host_mem;

/* ---- CUDA ---- */

#ifdef DEVMEM_EMU_CUDA
#include <cuda_runtime_api.h>

static int g_dev = -1;             /* the pool's device (set by bind) */

static int cuda_fail(const char *call, cudaError_t e)
{
    (void)cudaGetLastError(); /* clear a non-sticky error */
    EMU_WARN("NET/DevmemEmu: %s failed: %s (%s)", call, cudaGetErrorString(e), cudaGetErrorName(e));
    return TCPX_NCCL_UNHANDLED_CUDA_ERROR;
}

/* Make `dev` current; *prev is what to restore (-1: nothing). */
static int enter(int dev, int *prev)
{
    int cur = -1;
    *prev = -1;
    cudaError_t e = cudaGetDevice(&cur);
    if (e != cudaSuccess) return cuda_fail("cudaGetDevice", e);
    if (dev < 0 || cur == dev) return TCPX_NCCL_SUCCESS;
    if ((e = cudaSetDevice(dev)) != cudaSuccess) return cuda_fail("cudaSetDevice", e);
    *prev = cur;
    return TCPX_NCCL_SUCCESS;
}

static void leave(int prev)
{
    if (prev >= 0) (void)cudaSetDevice(prev);
}

static int cuda_bind(void)
{
    cudaError_t e = cudaGetDevice(&g_dev);
    return e == cudaSuccess ? TCPX_NCCL_SUCCESS : cuda_fail("cudaGetDevice", e);
}

static int cuda_dev_alloc(size_t n, void **p)
{
    int prev, rc = enter(g_dev, &prev);
    *p = NULL;
    if (rc) return rc;
    cudaError_t e = cudaMalloc(p, n ? n : 1);
    if (e != cudaSuccess) {
        *p = NULL;
        rc = cuda_fail("cudaMalloc", e);
    }
    leave(prev);
    return rc;
}

static void cuda_dev_free(void *p)
{
    int prev;
    if (!p || enter(g_dev, &prev)) return;
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) cuda_fail("cudaFree", e);
    leave(prev);
}

static int cuda_pinned_alloc(size_t n, void **p)
{
    cudaError_t e = cudaHostAlloc(p, n ? n : 1, cudaHostAllocPortable);
    if (e == cudaSuccess) return TCPX_NCCL_SUCCESS;
    *p = NULL;
    return cuda_fail("cudaHostAlloc", e);
}

static void cuda_pinned_free(void *p)
{
    if (!p) return;
    cudaError_t e = cudaFreeHost(p);
    if (e != cudaSuccess) cuda_fail("cudaFreeHost", e);
}

static int cuda_mapped_alloc(size_t n, void **host, void **dev)
{
    *host = *dev = NULL;
    int prev, rc = enter(g_dev, &prev);
    if (rc) return rc;
    cudaError_t e = cudaHostAlloc(host, n, cudaHostAllocMapped | cudaHostAllocPortable);
    if (e != cudaSuccess) {
        *host = NULL;
        rc = cuda_fail("cudaHostAlloc(mapped)", e);
    } else if ((e = cudaHostGetDevicePointer(dev, *host, 0)) != cudaSuccess) {
        rc = cuda_fail("cudaHostGetDevicePointer", e);
        (void)cudaFreeHost(*host);
        *host = *dev = NULL;
    }
    leave(prev);
    return rc;
}

static int cuda_put(void *dst, const void *src, size_t n)
{
    if (!n) return TCPX_NCCL_SUCCESS;
    int prev, rc = enter(g_dev, &prev);
    if (rc) return rc;
    cudaError_t e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, cudaStreamPerThread);
    if (e != cudaSuccess) rc = cuda_fail("cudaMemcpyAsync(H2D)", e);
    leave(prev);
    return rc;
}

static int cuda_fill(void *dst, int byte, size_t n)
{
    if (!n) return TCPX_NCCL_SUCCESS;
    int prev, rc = enter(g_dev, &prev);
    if (rc) return rc;
    cudaError_t e = cudaMemsetAsync(dst, byte, n, cudaStreamPerThread);
    if (e != cudaSuccess) rc = cuda_fail("cudaMemsetAsync", e);
    leave(prev);
    return rc;
}

static int cuda_wait(void)
{
    int prev, rc = enter(g_dev, &prev);
    if (rc) return rc;
    cudaError_t e = cudaStreamSynchronize(cudaStreamPerThread);
    if (e != cudaSuccess) rc = cuda_fail("cudaStreamSynchronize", e);
    leave(prev);
    return rc;
}

/* Device -> host on the source's device (send buffers may live on any). */
static int cuda_get(void *dst, const void *src, size_t n)
{
    if (!n) return TCPX_NCCL_SUCCESS;
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, src);
    if (e != cudaSuccess) return cuda_fail("cudaPointerGetAttributes", e);
    int prev, rc = enter(a.type == cudaMemoryTypeDevice ? a.device : -1, &prev);
    if (rc) return rc;
    e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, cudaStreamPerThread);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cudaStreamPerThread);
    if (e != cudaSuccess) rc = cuda_fail("cudaMemcpy(D2H)", e);
    leave(prev);
    return rc;
}

static int cuda_is_device(const void *p)
{
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, p);
    if (e != cudaSuccess) {
        cuda_fail("cudaPointerGetAttributes", e);
        return -1;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static const emu_mem cuda_mem = {
    .name = "cuda",
    .cuda = 1,
    .bind = cuda_bind,
    .dev_alloc = cuda_dev_alloc,
    .dev_free = cuda_dev_free,
    .pinned_alloc = cuda_pinned_alloc,
    .pinned_free = cuda_pinned_free,
    .mapped_alloc = cuda_mapped_alloc,
    .mapped_free = cuda_pinned_free,
    .put = cuda_put,
    .fill = cuda_fill,
    .wait = cuda_wait,
    .get = cuda_get,
    .is_device = cuda_is_device,
};
#endif /* DEVMEM_EMU_CUDA */

void emu_mem_select(char *why, size_t cap)
{
    const char *env = getenv("DEVMEM_EMU_HOST");
    emu_mem_ops = &host_mem;
    if (env && *env && strcmp(env, "0") != 0) {
        snprintf(why, cap, "DEVMEM_EMU_HOST=%s", env);
        return;
    }
#ifdef DEVMEM_EMU_CUDA
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        snprintf(why, cap, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
        return;
    }
    emu_mem_ops = &cuda_mem;
    snprintf(why, cap, "%d CUDA device(s)", n);
#else
    snprintf(why, cap, "built without CUDA");
#endif
}
