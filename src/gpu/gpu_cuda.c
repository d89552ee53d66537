/* gpu_cuda.c - the CUDA support layer on the CUDA runtime API (linked
 * statically: libcudart_static loads the driver with dlopen at first use,
 * so the library loads and runs its host paths on machines without one). */
#define _GNU_SOURCE               /* realpath, PATH_MAX */
#include <cuda.h>                 /* CUresult, CUdeviceptr: types only, no libcuda link */
#include <cuda_runtime_api.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"
#include "util/error.h"
#include "util/log.h"

struct tcpx_gpu {
    int device;
    /* Private non-blocking stream of the synchronous calls (memcpy, memset):
     * they wait for their own work only, never for the legacy default stream
     * and with it every blocking stream of the application. */
    cudaStream_t sync;
};

struct tcpx_gpu_stream {
    int device;
    cudaStream_t stream;
    /* Result slot of tcpx_gpu_compare_random (tools/tests), made on first
     * use: a device word and a pinned host word to read it back into. */
    pthread_mutex_t cmp_mu;
    unsigned long long *cmp_dev;
    unsigned long long *cmp_host;
};

struct tcpx_gpu_event {
    int device;
    cudaEvent_t event;
};

int tcpx_gpu_built(void) { return 1; }

/* ------------------------------------------------------------ helpers */

tcpx_status tcpx_gpu__fail(const char *call, int err)
{
    cudaError_t e = (cudaError_t)err;
    /* Reset the thread's non-sticky last error so that it cannot be taken
     * for the failure of a later launch. */
    (void)cudaGetLastError();
    return tcpx_set_error(TCPX_ERR_CUDA, "%s failed: %s (%s)", call, cudaGetErrorString(e),
                          cudaGetErrorName(e));
}

#define CK(name, call)                                        \
    do {                                                      \
        cudaError_t ck_e_ = (call);                           \
        if (ck_e_ != cudaSuccess) st = tcpx_gpu__fail(name, ck_e_); \
    } while (0)

tcpx_status tcpx_gpu__enter(int device, int *prev)
{
    int cur = -1;
    *prev = -1;
    cudaError_t e = cudaGetDevice(&cur);
    if (e != cudaSuccess) return tcpx_gpu__fail("cudaGetDevice", e);
    if (cur == device) return TCPX_OK;   /* the common case: nothing to restore */
    e = cudaSetDevice(device);
    if (e != cudaSuccess) return tcpx_gpu__fail("cudaSetDevice", e);
    *prev = cur;
    return TCPX_OK;
}

void tcpx_gpu__leave(int prev)
{
    if (prev < 0) return;
    cudaError_t e = cudaSetDevice(prev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        TCPX_WARN("gpu: could not restore the calling thread's CUDA device %d: %s", prev, cudaGetErrorString(e));
    }
}

/* Run `body` (a statement using `st`) with `dev` current. */
#define ON_DEVICE(dev, body)                                  \
    do {                                                      \
        int od_prev_;                                         \
        st = tcpx_gpu__enter((dev), &od_prev_);               \
        if (st) return st;                                    \
        body;                                                 \
        tcpx_gpu__leave(od_prev_);                            \
    } while (0)

tcpx_status tcpx_gpu_enter(tcpx_gpu *g, int *prev) { return tcpx_gpu__enter(g->device, prev); }
void tcpx_gpu_leave(int prev) { tcpx_gpu__leave(prev); }

/* ------------------------------------------------------------ devices */

tcpx_status tcpx_gpu_device_count(int *n)
{
    *n = 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        int drv = 0;
        (void)cudaDriverGetVersion(&drv);
        if (e == cudaErrorInsufficientDriver && drv == 0)
            return tcpx_set_error(TCPX_ERR_UNSUPPORTED,
                                  "no NVIDIA driver is installed (libcuda.so.1 could not be "
                                  "loaded), so GPU memory cannot be used");
        if (e == cudaErrorInsufficientDriver)
            return tcpx_set_error(TCPX_ERR_UNSUPPORTED,
                                  "the NVIDIA driver supports CUDA %d.%d, older than the CUDA %d.%d "
                                  "runtime this library was built with",
                                  drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000,
                                  CUDART_VERSION % 1000 / 10);
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED, "no usable CUDA device (cudaGetDeviceCount: %s (%s))",
                              cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (count <= 0)
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED, "the NVIDIA driver reports no CUDA device");
    *n = count;
    return TCPX_OK;
}

tcpx_status tcpx_gpu_versions(int *driver, int *runtime)
{
    tcpx_status st = TCPX_OK;
    *driver = 0;
    *runtime = 0;
    CK("cudaRuntimeGetVersion", cudaRuntimeGetVersion(runtime));
    if (!st) CK("cudaDriverGetVersion", cudaDriverGetVersion(driver));
    return st;
}

static tcpx_status check_device(int device)
{
    int n;
    tcpx_status st = tcpx_gpu_device_count(&n);
    if (st) return st;
    if (device < 0 || device >= n)
        return tcpx_set_error(TCPX_ERR_INVALID, "CUDA device %d does not exist (%d device%s visible)",
                              device, n, n == 1 ? " is" : "s are");
    return TCPX_OK;
}

tcpx_status tcpx_gpu_describe(int device, char *buf, size_t cap)
{
    if (!buf || cap == 0) return tcpx_set_error(TCPX_ERR_INVALID, "gpu describe: no buffer");
    buf[0] = '\0';
    tcpx_status st = check_device(device);
    if (st) return st;
    struct cudaDeviceProp p;
    CK("cudaGetDeviceProperties", cudaGetDeviceProperties(&p, device));
    if (st) return st;
    snprintf(buf, cap, "%s, sm_%d%d, %d SMs, %.1f GiB, PCI %04x:%02x:%02x.0", p.name, p.major, p.minor,
             p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             (unsigned)p.pciDomainID, (unsigned)p.pciBusID, (unsigned)p.pciDeviceID);
    return TCPX_OK;
}

tcpx_status tcpx_gpu_pci_path(const tcpx_gpu *g, char *buf, size_t cap)
{
    if (!buf || cap == 0) return tcpx_set_error(TCPX_ERR_INVALID, "gpu pci path: no buffer");
    buf[0] = '\0';
    char bus[32];
    cudaError_t e = cudaDeviceGetPCIBusId(bus, (int)sizeof bus, g->device);
    if (e != cudaSuccess) return tcpx_gpu__fail("cudaDeviceGetPCIBusId", e);
    for (char *c = bus; *c; c++)
        if (*c >= 'A' && *c <= 'F') *c = (char)(*c - 'A' + 'a'); /* sysfs spells hex in lower case */
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/sys/bus/pci/devices/%s", bus);
    if (!realpath(link, real)) return tcpx_set_error(TCPX_ERR_UNSUPPORTED, "%s: no such PCI device in sysfs", link);
    if (strlen(real) >= cap) return tcpx_set_error(TCPX_ERR_INVALID, "gpu pci path: buffer too small");
    memcpy(buf, real, strlen(real) + 1);
    return TCPX_OK;
}

tcpx_status tcpx_gpu_open(int device, tcpx_gpu **out)
{
    *out = NULL;
    tcpx_status st = check_device(device);
    if (st) return st;
    tcpx_gpu *g = calloc(1, sizeof *g);
    if (!g) return tcpx_set_error(TCPX_ERR_NOMEM, "gpu handle allocation failed");
    g->device = device;
    /* cudaSetDevice initialises the primary context (CUDA >= 12); cudaFree(0)
     * makes sure of it on every runtime, so that errors surface here. */
    int prev;
    if (!(st = tcpx_gpu__enter(device, &prev))) {
        CK("cudaFree", cudaFree(NULL));
        if (!st) CK("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&g->sync, cudaStreamNonBlocking));
        tcpx_gpu__leave(prev);
    }
    if (st) {
        free(g);
        return st;
    }
    *out = g;
    return TCPX_OK;
}

void tcpx_gpu_close(tcpx_gpu *g)
{
    if (!g) return;
    tcpx_status st = TCPX_OK;
    int prev;
    if (!tcpx_gpu__enter(g->device, &prev)) {
        CK("cudaStreamDestroy", cudaStreamDestroy(g->sync));
        tcpx_gpu__leave(prev);
    } else {
        st = TCPX_ERR_CUDA;
    }
    if (st) TCPX_WARN("gpu: %s", tcpx_last_error());
    free(g);
}

int tcpx_gpu_device(const tcpx_gpu *g) { return g->device; }

/* ------------------------------------------------------ pointer checks */

/* cuMemGetAddressRange from the driver, reached through cudart so that we
 * never link libcuda.so; NULL when the driver does not provide it. */
typedef CUresult (*get_range_fn)(CUdeviceptr *base, size_t *size, CUdeviceptr ptr);
static pthread_once_t g_range_once = PTHREAD_ONCE_INIT;
static get_range_fn g_get_range;

static void resolve_get_range(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    /* 12000: the ABI of cuMemGetAddressRange (_v2) as of CUDA 12.0. */
    cudaError_t e = cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &q);
    if (e == cudaSuccess && q == cudaDriverEntryPointSuccess && fn) {
        g_get_range = (get_range_fn)fn;
    } else {
        (void)cudaGetLastError();
        TCPX_WARN("gpu: cuMemGetAddressRange is not available from the driver; the extent of "
                  "registered CUDA memory is not checked");
    }
}

/* The allocation holding ptr, with a device current and g_get_range
 * resolved (non-NULL). */
static tcpx_status alloc_range_current(const void *ptr, void **base, size_t *size)
{
    CUdeviceptr b = 0;
    size_t len = 0;
    CUresult r = g_get_range(&b, &len, (CUdeviceptr)(uintptr_t)ptr);
    if (r != CUDA_SUCCESS)
        return tcpx_set_error(TCPX_ERR_INVALID, "%p is not inside a CUDA allocation (cuMemGetAddressRange error %d)",
                              ptr, (int)r);
    *base = (void *)(uintptr_t)b;
    *size = len;
    return TCPX_OK;
}

tcpx_status tcpx_gpu_pointer_device(const void *ptr, int *device)
{
    int n = 0;
    tcpx_status st = tcpx_gpu_device_count(&n);
    if (st) return st;
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, ptr);
    if (e == cudaErrorInvalidValue) {
        (void)cudaGetLastError();
        a.type = cudaMemoryTypeUnregistered;
    } else if (e != cudaSuccess) {
        return tcpx_gpu__fail("cudaPointerGetAttributes", e);
    }
    if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
        return tcpx_set_error(TCPX_ERR_INVALID, "%p is not CUDA device memory (memory type %d)", ptr, (int)a.type);
    *device = a.device;
    return TCPX_OK;
}

tcpx_status tcpx_gpu_check_ptr(tcpx_gpu *g, const void *ptr, size_t size)
{
    if (!ptr) return tcpx_set_error(TCPX_ERR_INVALID, "NULL is not CUDA device memory");
    if ((uintptr_t)ptr + size < (uintptr_t)ptr)
        return tcpx_set_error(TCPX_ERR_INVALID, "range %p + %zu wraps around the address space", ptr, size);
    tcpx_status st = TCPX_OK;
    struct cudaPointerAttributes a;
    int prev;
    if ((st = tcpx_gpu__enter(g->device, &prev))) return st;
    cudaError_t e = cudaPointerGetAttributes(&a, ptr);
    if (e == cudaErrorInvalidValue) {
        /* Runtimes before 11.0 answer so for plain host memory. */
        (void)cudaGetLastError();
        a.type = cudaMemoryTypeUnregistered;
    } else if (e != cudaSuccess) {
        st = tcpx_gpu__fail("cudaPointerGetAttributes", e);
        goto out;
    }
    if (a.type == cudaMemoryTypeUnregistered) {
        st = tcpx_set_error(TCPX_ERR_INVALID, "%p is not CUDA device memory (host memory unknown to CUDA)", ptr);
        goto out;
    }
    if (a.type == cudaMemoryTypeHost) {
        st = tcpx_set_error(TCPX_ERR_INVALID,
                            "%p is not CUDA device memory (pinned host memory; register it as host memory)",
                            ptr);
        goto out;
    }
    if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) {
        st = tcpx_set_error(TCPX_ERR_INVALID, "%p is not CUDA device memory (memory type %d)", ptr, (int)a.type);
        goto out;
    }
    if (a.device != g->device) {
        st = tcpx_set_error(TCPX_ERR_INVALID,
                            "%p is memory of CUDA device %d, but this session uses CUDA device %d", ptr,
                            a.device, g->device);
        goto out;
    }
    pthread_once(&g_range_once, resolve_get_range);
    if (g_get_range) {
        void *base = NULL;
        size_t len = 0;
        if ((st = alloc_range_current(ptr, &base, &len))) goto out;
        uintptr_t end = (uintptr_t)base + len, p = (uintptr_t)ptr;
        if (p < (uintptr_t)base || size > end - p) {
            st = tcpx_set_error(TCPX_ERR_INVALID,
                                "[%p, +%zu) runs past the end of its CUDA allocation [%p, +%zu)", ptr, size, base, len);
            goto out;
        }
    }
out:
    tcpx_gpu__leave(prev);
    return st;
}

/* The CUDA allocation holding ptr (device memory of any device). */
tcpx_status tcpx_gpu_alloc_range(tcpx_gpu *g, const void *ptr, void **base, size_t *size)
{
    *base = NULL;
    *size = 0;
    pthread_once(&g_range_once, resolve_get_range);
    if (!g_get_range)
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED, "cuMemGetAddressRange is not available from the driver");
    int prev;
    tcpx_status st = tcpx_gpu__enter(g->device, &prev);
    if (st) return st;
    st = alloc_range_current(ptr, base, size);
    tcpx_gpu__leave(prev);
    return st;
}

tcpx_status tcpx_gpu_host_view(tcpx_gpu *g, const void *dev, void **host)
{
    *host = NULL;
    if (!dev) return tcpx_set_error(TCPX_ERR_INVALID, "host_view: NULL pointer");
    int prev;
    tcpx_status st = tcpx_gpu__enter(g->device, &prev);
    if (st) return st;
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, dev);
    if (e != cudaSuccess)
        st = tcpx_gpu__fail("cudaPointerGetAttributes", e);
    else if (a.type != cudaMemoryTypeHost || !a.hostPointer)
        st = tcpx_set_error(TCPX_ERR_INVALID, "%p is not pinned host memory mapped to the device (memory type %d)",
                            dev, (int)a.type);
    else
        *host = a.hostPointer;
    tcpx_gpu__leave(prev);
    return st;
}

/* ------------------------------------------------------ host memory */

tcpx_status tcpx_gpu_host_alloc(tcpx_gpu *g, size_t size, void **ptr)
{
    *ptr = NULL;
    if (size == 0) return tcpx_set_error(TCPX_ERR_INVALID, "pinned allocation of 0 bytes");
    tcpx_status st = TCPX_OK;
    ON_DEVICE(g->device, CK("cudaHostAlloc", cudaHostAlloc(ptr, size, cudaHostAllocPortable | cudaHostAllocMapped)));
    if (st) *ptr = NULL;
    return st;
}

void tcpx_gpu_host_free(tcpx_gpu *g, void *ptr)
{
    if (!ptr) return;
    tcpx_status st = TCPX_OK;
    int prev;
    if (tcpx_gpu__enter(g->device, &prev)) {
        TCPX_WARN("gpu: %s", tcpx_last_error());
        return;
    }
    CK("cudaFreeHost", cudaFreeHost(ptr));
    if (st) TCPX_WARN("gpu: %s", tcpx_last_error());
    tcpx_gpu__leave(prev);
}

/* ------------------------------------------------------ streams */

tcpx_status tcpx_gpu_stream_create(tcpx_gpu *g, tcpx_gpu_stream **out)
{
    *out = NULL;
    tcpx_gpu_stream *s = calloc(1, sizeof *s);
    if (!s) return tcpx_set_error(TCPX_ERR_NOMEM, "gpu stream allocation failed");
    s->device = g->device;
    pthread_mutex_init(&s->cmp_mu, NULL);
    tcpx_status st = TCPX_OK;
    int prev;
    if (!(st = tcpx_gpu__enter(g->device, &prev))) {
        CK("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
        tcpx_gpu__leave(prev);
    }
    if (st) {
        pthread_mutex_destroy(&s->cmp_mu);
        free(s);
        return st;
    }
    *out = s;
    return TCPX_OK;
}

void tcpx_gpu_stream_destroy(tcpx_gpu_stream *s)
{
    if (!s) return;
    tcpx_status st = TCPX_OK;
    int prev;
    if (!tcpx_gpu__enter(s->device, &prev)) {
        CK("cudaStreamDestroy", cudaStreamDestroy(s->stream));
        /* Only streams that compared data have these (tools/tests); freeing
         * them waits for the device as cudaFree does. */
        if (s->cmp_dev) CK("cudaFree", cudaFree(s->cmp_dev));
        if (s->cmp_host) CK("cudaFreeHost", cudaFreeHost(s->cmp_host));
        tcpx_gpu__leave(prev);
    } else {
        st = TCPX_ERR_CUDA;
    }
    if (st) TCPX_WARN("gpu: %s", tcpx_last_error());
    pthread_mutex_destroy(&s->cmp_mu);
    free(s);
}

int tcpx_gpu_stream_device(const tcpx_gpu_stream *s) { return s->device; }

void *tcpx_gpu_stream_native(const tcpx_gpu_stream *s) { return (void *)s->stream; }

tcpx_status tcpx_gpu_stream_notify(tcpx_gpu_stream *s, void (*fn)(void *), void *arg)
{
    tcpx_status st = TCPX_OK;
    ON_DEVICE(s->device, CK("cudaLaunchHostFunc", cudaLaunchHostFunc(s->stream, fn, arg)));
    return st;
}

tcpx_status tcpx_gpu_stream_sync(tcpx_gpu_stream *s)
{
    tcpx_status st = TCPX_OK;
    ON_DEVICE(s->device, CK("cudaStreamSynchronize", cudaStreamSynchronize(s->stream)));
    return st;
}

/* The comparison kernel's run for both public calls below. */
static tcpx_status compare_on(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h, uint64_t stamp,
                              uint64_t *first_bad)
{
    *first_bad = UINT64_MAX;
    if (n == 0) return TCPX_OK;
    if (!src) return tcpx_set_error(TCPX_ERR_INVALID, "compare_random: NULL source");
    tcpx_status st = TCPX_OK;
    int prev;
    if ((st = tcpx_gpu__enter(s->device, &prev))) return st;
    pthread_mutex_lock(&s->cmp_mu);   /* one comparison at a time per stream: one result slot */
    if (!s->cmp_dev) {
        void *p = NULL;
        CK("cudaMalloc", cudaMalloc(&p, sizeof *s->cmp_dev));
        if (!st) s->cmp_dev = p;
    }
    if (!st && !s->cmp_host) {
        void *p = NULL;
        CK("cudaHostAlloc", cudaHostAlloc(&p, sizeof *s->cmp_host, cudaHostAllocPortable));
        if (!st) s->cmp_host = p;
    }
    if (!st) CK("cudaMemsetAsync", cudaMemsetAsync(s->cmp_dev, 0xff, sizeof *s->cmp_dev, s->stream));
    if (!st) st = tcpx_gpu__launch_compare(s, src, n, key, h, stamp, s->cmp_dev);
    if (!st)
        CK("cudaMemcpyAsync", cudaMemcpyAsync(s->cmp_host, s->cmp_dev, sizeof *s->cmp_host,
                                              cudaMemcpyDeviceToHost, s->stream));
    if (!st) CK("cudaStreamSynchronize", cudaStreamSynchronize(s->stream));
    if (!st) *first_bad = *s->cmp_host == ~0ull ? UINT64_MAX : (uint64_t)*s->cmp_host;
    pthread_mutex_unlock(&s->cmp_mu);
    tcpx_gpu__leave(prev);
    return st;
}

tcpx_status tcpx_gpu_compare_random(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t seed,
                                    uint64_t *first_bad)
{
    return compare_on(s, src, n, tcpx_random_key(seed), 0, 0, first_bad);
}

tcpx_status tcpx_gpu_check_stamped(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h,
                                   uint64_t stamp, uint64_t *first_bad)
{
    if (h > 8 || h > n) {
        *first_bad = UINT64_MAX;
        return tcpx_set_error(TCPX_ERR_INVALID, "check_stamped: stamps of %zu bytes in %zu", h, n);
    }
    return compare_on(s, src, n, key, h, stamp, first_bad);
}

/* ------------------------------------------------------ events */

tcpx_status tcpx_gpu_event_create(tcpx_gpu *g, tcpx_gpu_event **out)
{
    *out = NULL;
    tcpx_gpu_event *ev = calloc(1, sizeof *ev);
    if (!ev) return tcpx_set_error(TCPX_ERR_NOMEM, "gpu event allocation failed");
    ev->device = g->device;
    tcpx_status st = TCPX_OK;
    int prev;
    if ((st = tcpx_gpu__enter(g->device, &prev))) {
        free(ev);
        return st;
    }
    CK("cudaEventCreateWithFlags", cudaEventCreateWithFlags(&ev->event, cudaEventDisableTiming));
    tcpx_gpu__leave(prev);
    if (st) {
        free(ev);
        return st;
    }
    *out = ev;
    return TCPX_OK;
}

void tcpx_gpu_event_destroy(tcpx_gpu_event *ev)
{
    if (!ev) return;
    tcpx_status st = TCPX_OK;
    int prev;
    if (!tcpx_gpu__enter(ev->device, &prev)) {
        CK("cudaEventDestroy", cudaEventDestroy(ev->event));
        tcpx_gpu__leave(prev);
    } else {
        st = TCPX_ERR_CUDA;
    }
    if (st) TCPX_WARN("gpu: %s", tcpx_last_error());
    free(ev);
}

tcpx_status tcpx_gpu_event_record(tcpx_gpu_event *ev, tcpx_gpu_stream *s)
{
    if (ev->device != s->device)
        return tcpx_set_error(TCPX_ERR_INVALID, "event of CUDA device %d recorded on a stream of device %d",
                              ev->device, s->device);
    tcpx_status st = TCPX_OK;
    ON_DEVICE(s->device, CK("cudaEventRecord", cudaEventRecord(ev->event, s->stream)));
    return st;
}

tcpx_status tcpx_gpu_event_query(tcpx_gpu_event *ev)
{
    tcpx_status st = TCPX_OK;
    int prev;
    if ((st = tcpx_gpu__enter(ev->device, &prev))) return st;
    cudaError_t e = cudaEventQuery(ev->event);
    if (e == cudaErrorNotReady) {
        (void)cudaGetLastError();   /* not an error, but some runtimes record it */
        st = TCPX_IN_PROGRESS;
    } else if (e != cudaSuccess) {
        st = tcpx_gpu__fail("cudaEventQuery", e);
    }
    tcpx_gpu__leave(prev);
    return st;
}

/* ------------------------------------------------------ copies */

tcpx_status tcpx_gpu_memcpy_async(tcpx_gpu_stream *s, void *dst, const void *src, size_t n)
{
    if (n == 0) return TCPX_OK;
    tcpx_status st = TCPX_OK;
    ON_DEVICE(s->device, CK("cudaMemcpyAsync", cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, s->stream)));
    return st;
}

tcpx_status tcpx_gpu_memcpy(tcpx_gpu *g, void *dst, const void *src, size_t n)
{
    if (n == 0) return TCPX_OK;
    tcpx_status st = TCPX_OK;
    int prev;
    if ((st = tcpx_gpu__enter(g->device, &prev))) return st;
    CK("cudaMemcpyAsync", cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, g->sync));
    if (!st) CK("cudaStreamSynchronize", cudaStreamSynchronize(g->sync));
    tcpx_gpu__leave(prev);
    return st;
}

tcpx_status tcpx_gpu_malloc(tcpx_gpu *g, size_t size, void **ptr)
{
    *ptr = NULL;
    if (size == 0) return tcpx_set_error(TCPX_ERR_INVALID, "device allocation of 0 bytes");
    tcpx_status st = TCPX_OK;
    ON_DEVICE(g->device, CK("cudaMalloc", cudaMalloc(ptr, size)));
    if (st) *ptr = NULL;
    return st;
}

void tcpx_gpu_free(tcpx_gpu *g, void *ptr)
{
    if (!ptr) return;
    tcpx_status st = TCPX_OK;
    int prev;
    if (tcpx_gpu__enter(g->device, &prev)) {
        TCPX_WARN("gpu: %s", tcpx_last_error());
        return;
    }
    CK("cudaFree", cudaFree(ptr));
    if (st) TCPX_WARN("gpu: %s", tcpx_last_error());
    tcpx_gpu__leave(prev);
}

tcpx_status tcpx_gpu_memset_async(tcpx_gpu_stream *s, void *ptr, int byte, size_t n)
{
    if (n == 0) return TCPX_OK;
    tcpx_status st = TCPX_OK;
    ON_DEVICE(s->device, CK("cudaMemsetAsync", cudaMemsetAsync(ptr, byte, n, s->stream)));
    return st;
}

tcpx_status tcpx_gpu_memset(tcpx_gpu *g, void *ptr, int byte, size_t n)
{
    if (n == 0) return TCPX_OK;
    tcpx_status st = TCPX_OK;
    int prev;
    if ((st = tcpx_gpu__enter(g->device, &prev))) return st;
    CK("cudaMemsetAsync", cudaMemsetAsync(ptr, byte, n, g->sync));
    if (!st) CK("cudaStreamSynchronize", cudaStreamSynchronize(g->sync));
    tcpx_gpu__leave(prev);
    return st;
}

/* ------------------------------------------------------ copy lists */

struct tcpx_gpu_copier {
    tcpx_gpu *g;
    tcpx_gpu_copy *list;        /* pinned host, cap entries */
    tcpx_gpu_copy *list_dev;    /* the same memory as the device sees it */
    unsigned cap, n;
};

tcpx_status tcpx_gpu_copier_create(tcpx_gpu *g, unsigned cap, tcpx_gpu_copier **out)
{
    *out = NULL;
    if (!cap) return tcpx_set_error(TCPX_ERR_INVALID, "copy list of 0 entries");
    tcpx_gpu_copier *c = calloc(1, sizeof *c);
    if (!c) return tcpx_set_error(TCPX_ERR_NOMEM, "copy list allocation failed");
    c->g = g;
    c->cap = cap;
    tcpx_status st = tcpx_gpu_host_alloc(g, (size_t)cap * sizeof *c->list, (void **)&c->list);
    int prev;
    if (!st && !(st = tcpx_gpu__enter(g->device, &prev))) {
        void *dev = NULL;
        CK("cudaHostGetDevicePointer", cudaHostGetDevicePointer(&dev, c->list, 0));
        c->list_dev = dev;
        tcpx_gpu__leave(prev);
    }
    if (st) {
        tcpx_gpu_copier_destroy(c);
        return st;
    }
    *out = c;
    return TCPX_OK;
}

void tcpx_gpu_copier_destroy(tcpx_gpu_copier *c)
{
    if (!c) return;
    tcpx_gpu_host_free(c->g, c->list);
    free(c);
}

void tcpx_gpu_copier_reset(tcpx_gpu_copier *c) { c->n = 0; }

tcpx_status tcpx_gpu_copier_add(tcpx_gpu_copier *c, void *dst, const void *src, size_t n)
{
    size_t entries = (n + TCPX_GPU_COPY_ENTRY_MAX - 1) / TCPX_GPU_COPY_ENTRY_MAX;
    if (entries > c->cap - c->n)
        return tcpx_set_error(TCPX_ERR_INVALID, "copy list full: %u of %u entries used, %zu more needed", c->n,
                              c->cap, entries);
    for (size_t off = 0; off < n; off += TCPX_GPU_COPY_ENTRY_MAX) {
        size_t len = n - off < TCPX_GPU_COPY_ENTRY_MAX ? n - off : TCPX_GPU_COPY_ENTRY_MAX;
        c->list[c->n++] = (tcpx_gpu_copy){(uint64_t)(uintptr_t)dst + off, (uint64_t)(uintptr_t)src + off, len, 0};
    }
    return TCPX_OK;
}

tcpx_status tcpx_gpu_copier_run(tcpx_gpu_copier *c, tcpx_gpu_stream *s)
{
    int prev;
    tcpx_status st = tcpx_gpu__enter(s->device, &prev);
    if (st) return st;
    st = tcpx_gpu__launch_copy_list(s, c->list_dev, c->n);
    tcpx_gpu__leave(prev);
    return st;
}
