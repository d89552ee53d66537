/* gpu_none.c - the GPU layer of a build without CUDA (nvcc was not found, or
 * -DTCPX_CUDA=OFF). Every request for GPU work fails with
 * TCPX_ERR_UNSUPPORTED and one sentence saying why; host paths never call
 * here. No handle can be created, so the functions taking one are never
 * reached with a valid handle. */
#include <stddef.h>

#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/error.h"

#define NO_CUDA "this build of tcpx-p2p has no CUDA support (nvcc was not found at build time)"

static tcpx_status no_cuda(void) { return tcpx_set_error(TCPX_ERR_UNSUPPORTED, NO_CUDA); }

int tcpx_gpu_built(void) { return 0; }

tcpx_status tcpx_gpu_device_count(int *n)
{
    if (n) *n = 0;
    return no_cuda();
}

tcpx_status tcpx_gpu_versions(int *driver, int *runtime)
{
    if (driver) *driver = 0;
    if (runtime) *runtime = 0;
    return no_cuda();
}

tcpx_status tcpx_gpu_describe(int device, char *buf, size_t cap)
{
    if (buf && cap) buf[0] = '\0';
    return no_cuda();
}

tcpx_status tcpx_gpu_open(int device, tcpx_gpu **out)
{
    if (out) *out = NULL;
    return no_cuda();
}

void tcpx_gpu_close(tcpx_gpu *g) {}

int tcpx_gpu_device(const tcpx_gpu *g) { return -1; }

tcpx_status tcpx_gpu_check_ptr(tcpx_gpu *g, const void *ptr, size_t size) { return no_cuda(); }

tcpx_status tcpx_gpu_pci_path(const tcpx_gpu *g, char *buf, size_t cap)
{
    if (buf && cap) buf[0] = '\0';
    return no_cuda();
}

tcpx_status tcpx_gpu_enter(tcpx_gpu *g, int *prev)
{
    *prev = -1;
    return no_cuda();
}

void tcpx_gpu_leave(int prev) {}

tcpx_status tcpx_gpu_alloc_range(tcpx_gpu *g, const void *ptr, void **base, size_t *size)
{
    *base = NULL;
    *size = 0;
    return no_cuda();
}

tcpx_status tcpx_gpu_host_view(tcpx_gpu *g, const void *dev, void **host)
{
    *host = NULL;
    return no_cuda();
}

tcpx_status tcpx_gpu_host_alloc(tcpx_gpu *g, size_t size, void **ptr)
{
    if (ptr) *ptr = NULL;
    return no_cuda();
}

void tcpx_gpu_host_free(tcpx_gpu *g, void *ptr) {}

tcpx_status tcpx_gpu_stream_create(tcpx_gpu *g, tcpx_gpu_stream **out)
{
    if (out) *out = NULL;
    return no_cuda();
}

void tcpx_gpu_stream_destroy(tcpx_gpu_stream *s) {}

int tcpx_gpu_stream_device(const tcpx_gpu_stream *s) { return -1; }

void *tcpx_gpu_stream_native(const tcpx_gpu_stream *s) { return NULL; }

tcpx_status tcpx_gpu_stream_sync(tcpx_gpu_stream *s) { return no_cuda(); }

tcpx_status tcpx_gpu_event_create(tcpx_gpu *g, tcpx_gpu_event **out)
{
    if (out) *out = NULL;
    return no_cuda();
}

void tcpx_gpu_event_destroy(tcpx_gpu_event *e) {}

tcpx_status tcpx_gpu_event_record(tcpx_gpu_event *e, tcpx_gpu_stream *s) { return no_cuda(); }

tcpx_status tcpx_gpu_event_query(tcpx_gpu_event *e) { return no_cuda(); }

tcpx_status tcpx_gpu_memcpy_async(tcpx_gpu_stream *s, void *dst, const void *src, size_t n) { return no_cuda(); }

tcpx_status tcpx_gpu_memcpy(tcpx_gpu *g, void *dst, const void *src, size_t n) { return no_cuda(); }

tcpx_status tcpx_gpu_malloc(tcpx_gpu *g, size_t size, void **ptr)
{
    if (ptr) *ptr = NULL;
    return no_cuda();
}

void tcpx_gpu_free(tcpx_gpu *g, void *ptr) {}

tcpx_status tcpx_gpu_memset(tcpx_gpu *g, void *ptr, int byte, size_t n) { return no_cuda(); }

tcpx_status tcpx_gpu_memset_async(tcpx_gpu_stream *s, void *ptr, int byte, size_t n) { return no_cuda(); }

tcpx_status tcpx_gpu_fill_random(tcpx_gpu_stream *s, void *dst, size_t n, uint64_t seed) { return no_cuda(); }

tcpx_status tcpx_gpu_compare_random(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t seed,
                                    uint64_t *first_bad)
{
    if (first_bad) *first_bad = UINT64_MAX;
    return no_cuda();
}

tcpx_status tcpx_gpu_check_stamped(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h,
                                   uint64_t stamp, uint64_t *first_bad)
{
    if (first_bad) *first_bad = UINT64_MAX;
    return no_cuda();
}

tcpx_status tcpx_gpu__enter(int device, int *prev)
{
    if (prev) *prev = -1;
    return no_cuda();
}

void tcpx_gpu__leave(int prev) {}

tcpx_status tcpx_gpu__fail(const char *call, int err)
{
    return tcpx_set_error(TCPX_ERR_CUDA, "%s failed: %s", call, NO_CUDA);
}

tcpx_status tcpx_gpu__launch_compare(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h,
                                     uint64_t stamp, void *d_first_bad)
{
    return no_cuda();
}

tcpx_status tcpx_gpu_unpack(tcpx_gpu_stream *s, const tcpx_unpack_frag *frags, uint64_t count, const void *bounce,
                            void *dst, size_t dst_size)
{
    return no_cuda();
}

tcpx_status tcpx_gpu_host_device_ptr(tcpx_gpu *g, void *host, void **dev)
{
    if (dev) *dev = NULL;
    return no_cuda();
}

tcpx_status tcpx_gpu__launch_copy_list(tcpx_gpu_stream *s, const tcpx_gpu_copy *list, unsigned n) { return no_cuda(); }

tcpx_status tcpx_gpu_copier_create(tcpx_gpu *g, unsigned cap, tcpx_gpu_copier **out)
{
    *out = NULL;
    return no_cuda();
}

void tcpx_gpu_copier_destroy(tcpx_gpu_copier *c) {}

void tcpx_gpu_copier_reset(tcpx_gpu_copier *c) {}

tcpx_status tcpx_gpu_copier_add(tcpx_gpu_copier *c, void *dst, const void *src, size_t n) { return no_cuda(); }

tcpx_status tcpx_gpu_copier_run(tcpx_gpu_copier *c, tcpx_gpu_stream *s) { return no_cuda(); }

tcpx_status tcpx_gpu_stream_notify(tcpx_gpu_stream *s, void (*fn)(void *), void *arg) { return no_cuda(); }

tcpx_status tcpx_gpu_pointer_device(const void *ptr, int *device) { return no_cuda(); }
