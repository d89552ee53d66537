/* unpack.h - device unpack of GPUDirect-TCPX receives (DESIGN.md §3, §6).
 *
 * A GPUDirect-TCPX plugin receives into a device bounce buffer, in pages
 * placed wherever it had room, and describes each receive by a list of
 * fragments in host memory mapped to the device (the ncclNet device-offload
 * handle of type UNPACK). The receiver gathers them into the destination:
 *     for i in [0, cnt[slot]):  copy mem[slot][i].len bytes
 *         from bounce_buf + mem[slot][i].src_off  to  dst + mem[slot][i].dst_off
 * where `slot` is the receive's queue slot (the k-th irecv of a comm uses
 * slot k % 16).
 *
 * The types below reproduce NCCL's layout byte for byte (NVIDIA/nccl
 * src/device/network/unpack/unpack_defs.h: union loadMeta, struct
 * netUnpackMeta, struct unpackNetDeviceHandle) under our own names; the
 * static assertions pin it.
 *
 * Plain C with no CUDA types. tcpx_unpack_check is inline here (host only,
 * no CUDA needed, available in every build); the GPU functions live in
 * unpack.cu (CUDA builds only; a build without CUDA needs stubs returning
 * TCPX_ERR_UNSUPPORTED in gpu_none.c). */
#ifndef TCPX_GPU_UNPACK_H
#define TCPX_GPU_UNPACK_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"
#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#define TCPX_UNPACK_ALIGN16 alignas(16)
#define TCPX_UNPACK_ALIGNOF(t) alignof(t)
#else
#define TCPX_UNPACK_ALIGN16 _Alignas(16)
#define TCPX_UNPACK_ALIGNOF(t) _Alignof(t)
#endif

#include "util/error.h"   /* tcpx_set_error (C linkage) */

/* Queue slots per receive comm (NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH). */
#define TCPX_UNPACK_SLOTS 16
/* Fragments per slot: NET_UNPACK_MAX_SLICE_PAGES = 4 MiB slice / 4 KiB page * 2
 * ("* 2 for slack"). */
#define TCPX_UNPACK_PAGE_SIZE 4096
#define TCPX_UNPACK_MAX_PAGES (4194304 / TCPX_UNPACK_PAGE_SIZE * 2)   /* 2048 */
/* The largest receive a device-unpack transport is given: NCCL's 4 MiB
 * slice, for which the fragment lists are sized. */
#define TCPX_UNPACK_MAX_CHUNK ((size_t)4194304)

/* One fragment (NCCL's union loadMeta): 16 bytes, 16-byte aligned. */
typedef union tcpx_unpack_frag {
    TCPX_UNPACK_ALIGN16 uint64_t r64[2];
    struct {
        uint32_t src_off;   /* byte offset in the bounce buffer */
        uint32_t len;       /* bytes */
        uint64_t dst_off;   /* byte offset in the destination */
    };
} tcpx_unpack_frag;

/* Per-comm fragment lists (NCCL's struct netUnpackMeta). */
typedef struct tcpx_unpack_meta {
    tcpx_unpack_frag mem[TCPX_UNPACK_SLOTS][TCPX_UNPACK_MAX_PAGES];
    uint64_t cnt[TCPX_UNPACK_SLOTS];
} tcpx_unpack_meta;

/* The device handle a plugin hands back (NCCL's struct unpackNetDeviceHandle):
 * meta is host memory mapped to the device, bounce_buf device memory. */
typedef struct tcpx_unpack_handle {
    tcpx_unpack_meta *meta;
    void *bounce_buf;
    uint64_t head;
} tcpx_unpack_handle;

static_assert(sizeof(tcpx_unpack_frag) == 16, "fragment descriptor is 16 bytes");
static_assert(TCPX_UNPACK_ALIGNOF(tcpx_unpack_frag) == 16, "fragment descriptor is 16-byte aligned");
static_assert(offsetof(tcpx_unpack_frag, len) == 4 && offsetof(tcpx_unpack_frag, dst_off) == 8,
              "fragment fields as NCCL's loadMeta");
static_assert(TCPX_UNPACK_MAX_PAGES == 2048, "NET_UNPACK_MAX_SLICE_PAGES");
static_assert(offsetof(tcpx_unpack_meta, cnt) == (size_t)16 * 2048 * 16, "netUnpackMeta.cnt offset");
static_assert(sizeof(tcpx_unpack_meta) == (size_t)16 * 2048 * 16 + 16 * 8, "netUnpackMeta size");
static_assert(sizeof(tcpx_unpack_handle) == 24 && offsetof(tcpx_unpack_handle, bounce_buf) == 8 &&
                  offsetof(tcpx_unpack_handle, head) == 16,
              "unpackNetDeviceHandle layout");

/* Validate a fragment list on the host before launching its unpack (the
 * plugin's list is host memory: read it through the host pointer of meta).
 *   - count <= TCPX_UNPACK_MAX_PAGES, else TCPX_ERR_PROTOCOL;
 *   - host_frags non-NULL when count > 0, else TCPX_ERR_INVALID;
 *   - every fragment: src_off + len <= bounce_size and dst_off + len <=
 *     dst_size (no overflow), else TCPX_ERR_PROTOCOL naming the fragment's
 *     index and values.
 * Zero-length fragments are accepted (they copy nothing; the offsets of a
 * zero-length fragment must still be within the buffers). Overlapping
 * destination ranges are not detected (they cannot write out of bounds;
 * which bytes win is then undefined). */
static inline tcpx_status tcpx_unpack_check(const tcpx_unpack_frag *host_frags, uint64_t count,
                                            size_t bounce_size, size_t dst_size)
{
    if (count > TCPX_UNPACK_MAX_PAGES)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "unpack: %llu fragments, more than the %d a slot holds",
                              (unsigned long long)count, TCPX_UNPACK_MAX_PAGES);
    if (count > 0 && !host_frags) return tcpx_set_error(TCPX_ERR_INVALID, "unpack: NULL fragment list");
    for (uint64_t i = 0; i < count; i++) {
        uint64_t src_off = host_frags[i].src_off, len = host_frags[i].len, dst_off = host_frags[i].dst_off;
        if (src_off + len > (uint64_t)bounce_size)   /* both < 2^32: no overflow */
            return tcpx_set_error(TCPX_ERR_PROTOCOL,
                                  "unpack: fragment %llu of %llu (src_off %llu, len %llu) runs past the "
                                  "%zu-byte bounce buffer",
                                  (unsigned long long)i, (unsigned long long)count, (unsigned long long)src_off,
                                  (unsigned long long)len, bounce_size);
        if (len > (uint64_t)dst_size || dst_off > (uint64_t)dst_size - len)
            return tcpx_set_error(TCPX_ERR_PROTOCOL,
                                  "unpack: fragment %llu of %llu (dst_off %llu, len %llu) runs past the "
                                  "%zu-byte destination",
                                  (unsigned long long)i, (unsigned long long)count, (unsigned long long)dst_off,
                                  (unsigned long long)len, dst_size);
    }
    return TCPX_OK;
}

/* Queue ONE kernel on s gathering `count` fragments:
 *     bounce + frags[i].src_off  ->  dst + frags[i].dst_off  (frags[i].len bytes)
 * frags is a device-accessible pointer to the list (e.g. &meta->mem[slot][0]
 * through the device pointer of the host-mapped meta, or a device copy), 16-byte
 * aligned; it is read by the kernel only (no copy before the launch), so it
 * must stay unchanged until the work queued on s is done. bounce and dst are
 * device memory of s's device; any alignment of dst and of the offsets works
 * (16-byte loads and stores where source and destination allow them, shifted
 * 16-byte copies where only the source is aligned).
 *
 * Host checks only (nothing in device memory is read): count <=
 * TCPX_UNPACK_MAX_PAGES, non-NULL pointers, frags aligned; else
 * TCPX_ERR_INVALID. count == 0 queues nothing. In the kernel, a fragment
 * with dst_off + len > dst_size is skipped (never written out of bounds) and
 * not reported: validate the list with tcpx_unpack_check first. src bounds
 * are not known to the kernel. Errors: TCPX_ERR_INVALID, TCPX_ERR_CUDA. */
tcpx_status tcpx_gpu_unpack(tcpx_gpu_stream *s, const tcpx_unpack_frag *frags, uint64_t count,
                            const void *bounce, void *dst, size_t dst_size);

/* The device address of pinned host memory (cudaHostGetDevicePointer, with
 * g's device current), for the kernel to read a host-mapped fragment list.
 * Memory from tcpx_gpu_host_alloc qualifies (on 64-bit hosts every pinned
 * allocation is mapped and the address is usually the host address itself).
 * Errors: TCPX_ERR_INVALID (NULL), TCPX_ERR_CUDA (not pinned/mapped memory). */
tcpx_status tcpx_gpu_host_device_ptr(tcpx_gpu *g, void *host, void **dev);

#ifdef __cplusplus
}
#endif

#endif /* TCPX_GPU_UNPACK_H */
