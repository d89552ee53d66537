/* gpu.h - the CUDA support layer: devices, pointer checks, pinned host
 * memory, streams, events, copies and the test-data kernels.
 *
 * Plain C with no CUDA types, so that core files include it without CUDA
 * headers. Two implementations: gpu_cuda.c (CUDA runtime, linked statically;
 * built when nvcc is found) and gpu_none.c (no CUDA at build time: every call
 * returns TCPX_ERR_UNSUPPORTED with a sentence saying so).
 *
 * Run time: on a machine without a GPU or driver, tcpx_gpu_device_count()
 * and tcpx_gpu_open() return TCPX_ERR_UNSUPPORTED with the reason in
 * tcpx_last_error(); nothing else needs to be called then.
 *
 * Rules every function follows:
 *   - every CUDA call is checked; a failure returns TCPX_ERR_CUDA with
 *     "cudaXxx failed: <cudaGetErrorString> (<cudaErrorName>)";
 *   - the object's device is made current before any work, since the calling
 *     thread may differ from the one that opened it, and the caller's current
 *     device is restored before return (a library must not move it);
 *   - thread-safe: objects are immutable after creation; CUDA serialises the
 *     rest. A stream or event must not be destroyed while another thread uses it;
 *   - no device-wide synchronisation, and no implicit ordering with the
 *     legacy default stream, except in tcpx_gpu_free/tcpx_gpu_stream_destroy
 *     (cudaFree may synchronise the device; marked "tools/tests").
 */
#ifndef TCPX_GPU_H
#define TCPX_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has CUDA support (gpu_cuda.c), 0 otherwise. */
int tcpx_gpu_built(void);

/* Number of usable CUDA devices (> 0 on success). TCPX_ERR_UNSUPPORTED with
 * a sentence when the build has no CUDA, there is no (or too old a) driver,
 * or no device is visible. */
tcpx_status tcpx_gpu_device_count(int *n);

/* Driver and runtime versions as CUDA encodes them (1000*major + 10*minor);
 * driver is 0 when no driver is installed. For tcpx-info. */
tcpx_status tcpx_gpu_versions(int *driver, int *runtime);

/* One line about a device for tcpx-info, e.g.
 * "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB, PCI 0000:04:00.0". */
tcpx_status tcpx_gpu_describe(int device, char *buf, size_t cap);

/* ----------------------------------------------------------------- device */

typedef struct tcpx_gpu tcpx_gpu;   /* one CUDA device in use by a session */

/* Open device `device` (initialises its primary context).
 * Errors: TCPX_ERR_UNSUPPORTED (as tcpx_gpu_device_count), TCPX_ERR_INVALID
 * (no such device), TCPX_ERR_CUDA, TCPX_ERR_NOMEM. */
tcpx_status tcpx_gpu_open(int device, tcpx_gpu **out);
void tcpx_gpu_close(tcpx_gpu *g);      /* NULL is ignored */
int tcpx_gpu_device(const tcpx_gpu *g);

/* Check that [ptr, ptr+size) is CUDA device (or managed) memory of g's device
 * and lies inside one allocation (size 0 checks ptr alone).
 * Errors: TCPX_ERR_INVALID "not CUDA device memory" (host, pinned host or
 * unknown pointer), TCPX_ERR_INVALID naming both devices (memory of another
 * device), TCPX_ERR_INVALID (range runs past the end of the allocation),
 * TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_check_ptr(tcpx_gpu *g, const void *ptr, size_t size);

/* The CUDA device whose memory ptr is (device or managed memory).
 * Errors: TCPX_ERR_INVALID (not CUDA device memory), TCPX_ERR_UNSUPPORTED
 * (no CUDA), TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_pointer_device(const void *ptr, int *device);

/* The CUDA allocation that contains ptr: its base and size
 * (cuMemGetAddressRange). Errors: TCPX_ERR_INVALID (not inside one),
 * TCPX_ERR_UNSUPPORTED (the driver lacks the call), TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_alloc_range(tcpx_gpu *g, const void *ptr, void **base, size_t *size);

/* The host address of `dev`, a device-side pointer into pinned host memory
 * mapped to the device (what a plugin hands out for host-mapped tables).
 * Errors: TCPX_ERR_INVALID (not mapped pinned host memory), TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_host_view(tcpx_gpu *g, const void *dev, void **host);

/* The device's PCI function in sysfs, resolved
 * (/sys/devices/pci0000:00/.../0000:04:00.0), to compare with NICs'.
 * Errors: TCPX_ERR_UNSUPPORTED (not in sysfs), TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_pci_path(const tcpx_gpu *g, char *buf, size_t cap);

/* Make g's device current on the calling thread; *prev is what to restore
 * with tcpx_gpu_leave (-1: nothing changed). */
tcpx_status tcpx_gpu_enter(tcpx_gpu *g, int *prev);
void tcpx_gpu_leave(int prev);

/* Pinned (page-locked) host memory, usable from every device and mapped
 * into their address space (cudaHostAllocPortable | cudaHostAllocMapped;
 * with unified addressing kernels use the host pointer). Allocate at setup
 * time: pinning is slow. */
tcpx_status tcpx_gpu_host_alloc(tcpx_gpu *g, size_t size, void **ptr);
void tcpx_gpu_host_free(tcpx_gpu *g, void *ptr);   /* NULL is ignored */

/* ---------------------------------------------------------------- streams */

typedef struct tcpx_gpu_stream tcpx_gpu_stream;

/* A stream that does not synchronise with the legacy default stream
 * (cudaStreamNonBlocking). */
tcpx_status tcpx_gpu_stream_create(tcpx_gpu *g, tcpx_gpu_stream **out);
/* Destroy; work already queued still completes. NULL is ignored. */
void tcpx_gpu_stream_destroy(tcpx_gpu_stream *s);
int tcpx_gpu_stream_device(const tcpx_gpu_stream *s);
/* The cudaStream_t, as void *, for kernels launched from src/gpu/. */
void *tcpx_gpu_stream_native(const tcpx_gpu_stream *s);
/* Block until this stream's work is done (this stream only). */
tcpx_status tcpx_gpu_stream_sync(tcpx_gpu_stream *s);
/* Queue fn(arg) to run on a CUDA thread once the work queued so far on s is
 * done (cudaLaunchHostFunc): a wake-up, never a CUDA call. */
tcpx_status tcpx_gpu_stream_notify(tcpx_gpu_stream *s, void (*fn)(void *), void *arg);

/* ----------------------------------------------------------------- events */

typedef struct tcpx_gpu_event tcpx_gpu_event;

tcpx_status tcpx_gpu_event_create(tcpx_gpu *g, tcpx_gpu_event **out);   /* cudaEventDisableTiming */
void tcpx_gpu_event_destroy(tcpx_gpu_event *e);                          /* NULL is ignored */
/* Record the event after the work queued so far on s (same device). */
tcpx_status tcpx_gpu_event_record(tcpx_gpu_event *e, tcpx_gpu_stream *s);
/* TCPX_OK when the recorded work is done (or nothing was recorded),
 * TCPX_IN_PROGRESS while it runs, TCPX_ERR_CUDA when it failed. */
tcpx_status tcpx_gpu_event_query(tcpx_gpu_event *e);

/* ------------------------------------------------------------------ copies */

/* Queue a copy of n bytes on s; either side may be host (pinned for a truly
 * asynchronous copy) or device memory (cudaMemcpyDefault). n == 0 is a no-op. */
tcpx_status tcpx_gpu_memcpy_async(tcpx_gpu_stream *s, void *dst, const void *src, size_t n);

/* Synchronous copy (cudaMemcpyDefault) on g's private non-blocking stream:
 * returns when this copy is done, waiting for nothing else (no legacy default
 * stream ordering). Cheap enough for small copies; for bulk data use
 * tcpx_gpu_memcpy_async and an event. */
tcpx_status tcpx_gpu_memcpy(tcpx_gpu *g, void *dst, const void *src, size_t n);

/* Device memory of g's device. Tools/tests: cudaFree synchronises the device. */
tcpx_status tcpx_gpu_malloc(tcpx_gpu *g, size_t size, void **ptr);
void tcpx_gpu_free(tcpx_gpu *g, void *ptr);   /* NULL is ignored */
/* Set n bytes of device memory to `byte`; returns when done (g's private
 * stream, as tcpx_gpu_memcpy). */
tcpx_status tcpx_gpu_memset(tcpx_gpu *g, void *ptr, int byte, size_t n);
/* Queue the same on s. */
tcpx_status tcpx_gpu_memset_async(tcpx_gpu_stream *s, void *ptr, int byte, size_t n);

/* ------------------------------------------------------------ copy lists */

/* One copy of a copy list (32 bytes; pad keeps entries 32-byte aligned). */
typedef struct tcpx_gpu_copy {
    uint64_t dst, src, len, pad;
} tcpx_gpu_copy;

typedef struct tcpx_gpu_copier tcpx_gpu_copier;

/* A list of copies run by one kernel launch (copy.cu): between device memory
 * and pinned host memory, in any direction and alignment. Long copies are
 * split into entries of at most TCPX_GPU_COPY_ENTRY_MAX bytes, so a list of
 * `cap` entries holds at least cap - total/TCPX_GPU_COPY_ENTRY_MAX copies.
 * The entries live in pinned host memory that the kernel reads. */
#ifndef TCPX_GPU_COPY_ENTRY_MAX
#define TCPX_GPU_COPY_ENTRY_MAX (64u * 1024u)
#endif
tcpx_status tcpx_gpu_copier_create(tcpx_gpu *g, unsigned cap, tcpx_gpu_copier **out);
void tcpx_gpu_copier_destroy(tcpx_gpu_copier *c);   /* NULL is ignored */
void tcpx_gpu_copier_reset(tcpx_gpu_copier *c);     /* empty the list */
/* Add a copy of n bytes (n == 0 adds nothing). TCPX_ERR_INVALID when it
 * does not fit. */
tcpx_status tcpx_gpu_copier_add(tcpx_gpu_copier *c, void *dst, const void *src, size_t n);
/* Queue the copies added since the last reset on s. The device reads the
 * entries when the kernel runs: reset or add again only after work queued
 * after this on s has completed (an event). */
tcpx_status tcpx_gpu_copier_run(tcpx_gpu_copier *c, tcpx_gpu_stream *s);

/* -------------------------------------------------------- test-data kernels
 *
 * Reproducible test data: byte j of a buffer filled with seed S is byte
 * (j % 8) (little-endian) of tcpx_random_word(tcpx_random_key(S), j / 8).
 * The sequence depends on the offset inside the buffer only, never on its
 * address, so host and device, aligned or not, produce identical bytes. */

#ifdef __CUDACC__
#define TCPX_HOST_DEVICE __host__ __device__
#else
#define TCPX_HOST_DEVICE
#endif

static inline TCPX_HOST_DEVICE uint64_t tcpx_random_mix(uint64_t z)
{
    /* splitmix64's finaliser (Stafford variant 13). */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Key of a seed: nearby seeds give unrelated sequences. */
static inline TCPX_HOST_DEVICE uint64_t tcpx_random_key(uint64_t seed)
{
    return tcpx_random_mix(seed ^ 0x6A09E667F3BCC909ull);
}

/* Word i of the sequence of `key`: the (i+1)-th splitmix64 output. */
static inline TCPX_HOST_DEVICE uint64_t tcpx_random_word(uint64_t key, uint64_t i)
{
    return tcpx_random_mix(key + (i + 1) * 0x9E3779B97F4A7C15ull);
}

/* Queue: fill [dst, dst+n) of device memory (any alignment, any n) with the
 * sequence of `seed`. n == 0 is a no-op. */
tcpx_status tcpx_gpu_fill_random(tcpx_gpu_stream *s, void *dst, size_t n, uint64_t seed);

/* Compare [src, src+n) of device memory with the sequence of `seed`: waits
 * for the work queued on s, then for the comparison (this stream only), and
 * stores the index of the first differing byte in *first_bad, or UINT64_MAX
 * when all n bytes match. Tools/tests: the first call on a stream allocates
 * its result slot (device + pinned word), freed by tcpx_gpu_stream_destroy. */
tcpx_status tcpx_gpu_compare_random(tcpx_gpu_stream *s, const void *src, size_t n,
                                    uint64_t seed, uint64_t *first_bad);

/* The same for a stamped test message (tools/bench's layout): bytes [0, h)
 * and [n - h, n) must hold le64(stamp) (the tail's where both cover a byte;
 * h <= 8, h <= n), every other byte j byte j % 8 of tcpx_random_word(key,
 * j / 8) (note: key, not a seed). One kernel, one result read. */
tcpx_status tcpx_gpu_check_stamped(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h,
                                   uint64_t stamp, uint64_t *first_bad);

/* Host versions (fill_host.c; always built, no CUDA needed). */
void tcpx_fill_random_host(void *dst, size_t n, uint64_t seed);
/* Index of the first byte of [src, src+n) that differs, or UINT64_MAX. */
uint64_t tcpx_compare_random_host(const void *src, size_t n, uint64_t seed);

/* ------------------------------------------------ internal to src/gpu only */

/* Make `device` current on this thread; *prev receives the device to restore
 * afterwards, or -1 when it already was current. */
tcpx_status tcpx_gpu__enter(int device, int *prev);
/* Restore the device saved by tcpx_gpu__enter (nothing when prev < 0). */
void tcpx_gpu__leave(int prev);
/* Record a failed CUDA call (err is a cudaError_t) and return TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu__fail(const char *call, int err);
/* Queue the copy-list kernel (copy.cu) over list (device-readable). Device
 * must be current. */
tcpx_status tcpx_gpu__launch_copy_list(tcpx_gpu_stream *s, const tcpx_gpu_copy *list, unsigned n);
/* Queue the comparison kernel (kernels.cu): atomicMin of the index of every
 * byte that differs from the sequence of key (from le64(stamp) in the first
 * and last h bytes; h = 0: none) into the device word d_first_bad. Device
 * must be current. */
tcpx_status tcpx_gpu__launch_compare(tcpx_gpu_stream *s, const void *src, size_t n, uint64_t key, size_t h,
                                     uint64_t stamp, void *d_first_bad);

#ifdef __cplusplus
}
#endif

#endif /* TCPX_GPU_H */
