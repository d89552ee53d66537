/* rx_unpack.c - receives over a device-unpack transport (GPUDirect-TCPX).
 *
 * Such a transport never writes a receive's bytes where the receive was
 * posted: the payload lands in pages of the plugin's GPU bounce buffer and
 * test() hands back a fragment list in the comm's host-mapped metadata (the
 * k-th irecv of a comm uses queue slot k % 16). Bytes the NIC could not
 * place in device memory are copied by the plugin straight into the posted
 * buffer, so the gather must target the same buffer that was posted. The
 * order for every receive is then:
 *
 *   test() done -> check the list on the host -> unpack kernel (bounce ->
 *   posted buffer) [-> copy out to host memory] -> event -> irecv_consumed
 *   (posting order; the plugin recycles the pages there).
 *
 * The plugin cannot receive into host memory at all, so receives whose
 * destination is host memory (control frames, hellos, host-memory chunks)
 * are posted into a GPU landing area of the comm and copied out after the
 * unpack. The device handle the plugin gives accept() is a device pointer to
 * {meta, bounce_buf, head}; meta is a device pointer into pinned host memory.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

struct tcpx_urx {
    tcpx_unpack_meta *meta;        /* host view of the plugin's fragment lists */
    tcpx_unpack_meta *meta_dev;    /* the same memory, device view (kernel argument) */
    const uint8_t *bounce;         /* device */
    size_t bounce_size;            /* bytes from bounce to the end of its allocation */
    uint64_t nposted;              /* irecvs posted on the comm so far */
    tcpx_gpu_stream *stream;
    tcpx_gpu_event *ev[TCPX_UNPACK_SLOTS];
    uint8_t *land;                 /* GPU landing area (receives into host memory) */
    void *land_raw;                /* its allocation */
    size_t land_bytes;
    void *land_mh;                 /* land registered on the comm */
};

void urx_free(tcpx_session *s, tcpx_urx *u)
{
    if (!u) return;
    for (int i = 0; i < TCPX_UNPACK_SLOTS; i++) tcpx_gpu_event_destroy(u->ev[i]);
    tcpx_gpu_stream_destroy(u->stream);
    tcpx_gpu_free(s->gpu, u->land_raw);
    free(u);
}

tcpx_status urx_dev_alloc(tcpx_session *s, size_t size, uint8_t **aligned, void **raw)
{
    *aligned = NULL;
    tcpx_status st = tcpx_gpu_malloc(s->gpu, size + TCPX_UNPACK_PAGE_SIZE, raw);
    if (!st) {
        uintptr_t a = ((uintptr_t)*raw + TCPX_UNPACK_PAGE_SIZE - 1) & ~(uintptr_t)(TCPX_UNPACK_PAGE_SIZE - 1);
        *aligned = (uint8_t *)a;
    }
    return st;
}

void urx_stop(tcpx_session *s, void *comm, tcpx_urx *u)
{
    if (!u) return;
    /* Kernels queued on the stream read the plugin's pages and lists, which
     * go away with the comm. */
    if (u->stream && tcpx_gpu_stream_sync(u->stream))
        TCPX_WARN("unpack stream: %s", tcpx_last_error());
    if (u->land_mh) s->net->dereg_mr(s->net, comm, u->land_mh);
    u->land_mh = NULL;
}

/* Read the plugin's device handle of a freshly accepted comm. */
static tcpx_status read_handle(tcpx_session *s, void *comm, tcpx_urx *u)
{
    void *dh = s->net->device_handle(s->net, comm);
    if (!dh)
        return tcpx_set_error(TCPX_ERR_TRANSPORT, "transport %s offers device unpack but gave no device handle",
                              s->net->name);
    tcpx_unpack_handle h;
    tcpx_status st = tcpx_gpu_memcpy(s->gpu, &h, dh, sizeof h); /* device memory in GPUDirect-TCPX */
    if (st) return st;
    if (!h.meta || !h.bounce_buf)
        return tcpx_set_error(TCPX_ERR_TRANSPORT, "transport %s: device handle without %s", s->net->name,
                              !h.meta ? "fragment lists" : "bounce buffer");
    void *host = NULL, *base = NULL;
    size_t len = 0;
    if ((st = tcpx_gpu_host_view(s->gpu, h.meta, &host)))
        return tcpx_set_error(st, "transport %s: fragment lists: %s", s->net->name, tcpx_last_error());
    if ((st = tcpx_gpu_alloc_range(s->gpu, h.bounce_buf, &base, &len)))
        return tcpx_set_error(st, "transport %s: bounce buffer: %s", s->net->name, tcpx_last_error());
    u->meta = host;
    u->meta_dev = h.meta;
    u->bounce = h.bounce_buf;
    u->bounce_size = (size_t)((uint8_t *)base + len - (uint8_t *)h.bounce_buf);
    return TCPX_OK;
}

tcpx_status urx_open(tcpx_session *s, void *comm, size_t land_bytes, tcpx_urx **out)
{
    *out = NULL;
    tcpx_urx *u = calloc(1, sizeof *u);
    if (!u) return tcpx_set_error(TCPX_ERR_NOMEM, "unpack state allocation failed");
    u->land_bytes = land_bytes;
    tcpx_status st = read_handle(s, comm, u);
    if (!st) st = tcpx_gpu_stream_create(s->gpu, &u->stream);
    for (int i = 0; !st && i < TCPX_UNPACK_SLOTS; i++) st = tcpx_gpu_event_create(s->gpu, &u->ev[i]);
    if (!st) st = urx_dev_alloc(s, land_bytes, &u->land, &u->land_raw);
    /* Frames end at the first zero byte when the transport reports the
     * posted capacity as the size: landing slots start zeroed. */
    if (!st) st = tcpx_gpu_memset(s->gpu, u->land, 0, land_bytes);
    if (!st) st = (tcpx_status)s->net->reg_mr(s->net, comm, u->land, land_bytes, TCPX_NET_PTR_CUDA, &u->land_mh);
    if (st) {
        urx_stop(s, comm, u);
        urx_free(s, u);
        return st;
    }
    *out = u;
    return TCPX_OK;
}

int urx_take_slot(tcpx_urx *u) { return (int)(u->nposted++ % TCPX_UNPACK_SLOTS); }

int recv_post_host(tcpx_session *s, void *comm, tcpx_urx *u, size_t land_off, uint8_t *host_buf, size_t cap,
                   void *host_mh, void **req, int *uslot)
{
    tcpx_net *n = s->net;
    int rc = u ? n->irecv(n, comm, u->land + land_off, cap, 0, u->land_mh, req)
               : n->irecv(n, comm, host_buf, cap, 0, host_mh, req);
    if (!rc && u && *req) *uslot = urx_take_slot(u);
    return rc;
}

/* Queue the checked gather of slot's list into dst, then the copy out. */
static tcpx_status queue_gather(tcpx_urx *u, int slot, uint8_t *dst, size_t len, void *host_out)
{
    uint64_t cnt = u->meta->cnt[slot];
    tcpx_status st = tcpx_unpack_check(u->meta->mem[slot], cnt, u->bounce_size, len);
    if (!st) st = tcpx_gpu_unpack(u->stream, u->meta_dev->mem[slot], cnt, u->bounce, dst, len);
    if (!st && host_out) st = tcpx_gpu_memcpy_async(u->stream, host_out, dst, len);
    return st;
}

tcpx_status urx_unpack(tcpx_urx *u, int slot, uint8_t *dst, size_t len)
{
    return queue_gather(u, slot, dst, len, NULL);
}

tcpx_status urx_mark(tcpx_urx *u, int slot) { return tcpx_gpu_event_record(u->ev[slot], u->stream); }

struct tcpx_gpu_stream *urx_stream(tcpx_urx *u) { return u->stream; }

tcpx_status urx_query(tcpx_urx *u, int slot) { return tcpx_gpu_event_query(u->ev[slot]); }

tcpx_status urx_pull(tcpx_session *s, tcpx_urx *u, int slot, size_t land_off, size_t len, void *host_out)
{
    uint8_t *land = u->land + land_off;
    tcpx_status st = queue_gather(u, slot, land, len, host_out);
    /* Zero the landing slot for its next receive (see urx_open). */
    if (!st) st = tcpx_gpu_memset_async(u->stream, land, 0, len);
    if (!st) st = tcpx_gpu_event_record(u->ev[slot], u->stream);
    if (st) return st;
    uint64_t deadline = tcpx_deadline_ms(s->cfg.peer_timeout_ms);
    while ((st = urx_query(u, slot)) == TCPX_IN_PROGRESS) {
        if (tcpx_now_ns() > deadline)
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "device unpack of a %zu-byte control receive did not finish "
                                  "within %d ms", len, s->cfg.peer_timeout_ms);
        sched_yield();
    }
    return st;
}
