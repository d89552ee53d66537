/* staging.c - bounce slots per data comm, for chunks that cannot move in
 * place (channel.c decides per chunk): host memory (pinned in a GPU session,
 * with a copy stream, an event and a copy list per slot), or device memory
 * for receives over a device-unpack transport (copied by rx_unpack.c's
 * stream); and the small synchronous copies of inline messages.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "util/error.h"
#include "util/log.h"

int stage_direct_ok(const tcpx_session *s, tcpx_mem_kind kind, int is_send)
{
    if (s->unpack) return is_send || kind == TCPX_MEM_CUDA; /* receives land in GPU memory only */
    return kind != TCPX_MEM_CUDA || !s->stage_gpu;
}

void stage_destroy(tcpx_session *s, void *comm, tcpx_stage *st)
{
    if (!st) return;
    /* Copies queued on this stream may still read or write the slots. */
    if (st->stream) tcpx_gpu_stream_sync(st->stream);
    if (st->mh && comm) s->net->dereg_mr(s->net, comm, st->mh);
    for (int i = 0; st->ev && i < st->nslots; i++) tcpx_gpu_event_destroy(st->ev[i]);
    for (int i = 0; st->cp && i < st->nslots; i++) tcpx_gpu_copier_destroy(st->cp[i]);
    free(st->ev);
    free(st->cp);
    tcpx_gpu_free(s->gpu, st->mirror);
    if (st->on_device) tcpx_gpu_free(s->gpu, st->arena_raw);
    else if (s->gpu) tcpx_gpu_host_free(s->gpu, st->arena);
    else free(st->arena);
    tcpx_gpu_stream_destroy(st->stream);
    free(st);
}

/* Entries of a slot's copy list: one per block a chunk may touch, plus the
 * pieces long blocks are split into. */
static unsigned copier_cap(const tcpx_session *s)
{
    return TCPX_PACK_MAX_SEGS + (unsigned)(s->cfg.chunk_bytes / TCPX_GPU_COPY_ENTRY_MAX) + 2;
}

tcpx_status stage_create(tcpx_session *s, void *comm, int is_send, tcpx_stage **out)
{
    tcpx_stage *st = calloc(1, sizeof *st);
    if (!st) return tcpx_set_error(TCPX_ERR_NOMEM, "staging pool allocation failed");
    st->nslots = s->cfg.staging_slots;
    st->slot_bytes = s->cfg.chunk_bytes;
    st->on_device = s->unpack && !is_send; /* the unpack stream and events do its copies */
    size_t bytes = (size_t)st->nslots * st->slot_bytes;
    tcpx_status rc = TCPX_OK;
    if (s->gpu) {
        st->cp = calloc((size_t)st->nslots, sizeof *st->cp);
        if (!st->cp) rc = tcpx_set_error(TCPX_ERR_NOMEM, "staging copy lists allocation failed");
        for (int i = 0; !rc && i < st->nslots; i++) rc = tcpx_gpu_copier_create(s->gpu, copier_cap(s), &st->cp[i]);
    }
    if (rc) {
    } else if (st->on_device) {
        rc = urx_dev_alloc(s, bytes, &st->arena, &st->arena_raw);
    } else if (s->gpu) {
        st->ev = calloc((size_t)st->nslots, sizeof *st->ev);
        rc = st->ev ? TCPX_OK : tcpx_set_error(TCPX_ERR_NOMEM, "staging events allocation failed");
        if (!rc) rc = tcpx_gpu_stream_create(s->gpu, &st->stream);
        if (!rc) rc = tcpx_gpu_host_alloc(s->gpu, bytes, (void **)&st->arena);
        for (int i = 0; !rc && i < st->nslots; i++) rc = tcpx_gpu_event_create(s->gpu, &st->ev[i]);
    } else {
        st->arena = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
        if (!st->arena) rc = tcpx_set_error(TCPX_ERR_NOMEM, "staging slots: cannot allocate %zu bytes", bytes);
    }
    if (!rc)
        rc = (tcpx_status)s->net->reg_mr(s->net, comm, st->arena, bytes,
                                         st->on_device ? TCPX_NET_PTR_CUDA : TCPX_NET_PTR_HOST, &st->mh);
    if (rc) {
        stage_destroy(s, comm, st);
        return rc;
    }
    *out = st;
    return TCPX_OK;
}

uint8_t *stage_mirror(tcpx_session *s, tcpx_stage *st, int slot)
{
    if (!s->gpu || st->on_device) return NULL;
    if (!st->mirror && tcpx_gpu_malloc(s->gpu, (size_t)st->nslots * st->slot_bytes, (void **)&st->mirror)) {
        TCPX_WARN("session %s: no device memory for staging mirrors (%s); packed GPU chunks cross PCIe by kernel",
                  s->cfg.name, tcpx_last_error());
        return NULL;
    }
    return st->mirror + (size_t)slot * st->slot_bytes;
}

int stage_acquire(tcpx_stage *st)
{
    if (st->used == st->nslots) return -1;
    st->used++;
    return (int)(st->next++ % (unsigned)st->nslots);
}

void stage_release(tcpx_stage *st) { st->used--; }

/* Small synchronous copy between a host buffer and memory of region r
 * (inline messages). GPU memory goes through the session's pinned buffer
 * (the driver would stage a copy from pageable memory through its own). */
tcpx_status region_copy(tcpx_session *s, const tcpx_region *r, void *dst, const void *src, size_t n)
{
    if (r->kind != TCPX_MEM_CUDA) {
        if (n) memcpy(dst, src, n);
        return TCPX_OK;
    }
    if (!n) return TCPX_OK;
    if (n > TCPX_INLINE_MAX ||
        (!s->inline_pinned && tcpx_gpu_host_alloc(s->gpu, TCPX_INLINE_MAX, (void **)&s->inline_pinned)))
        return tcpx_gpu_memcpy(s->gpu, dst, src, n); /* cudaMemcpyDefault works out the direction */
    const uint8_t *lo = r->ptr, *d = dst;
    if (d >= lo && d < lo + r->size) { /* into the GPU */
        memcpy(s->inline_pinned, src, n);
        return tcpx_gpu_memcpy(s->gpu, dst, s->inline_pinned, n);
    }
    tcpx_status st = tcpx_gpu_memcpy(s->gpu, s->inline_pinned, src, n);
    if (!st) memcpy(dst, s->inline_pinned, n);
    return st;
}

tcpx_status op_copy(tcpx_session *s, const tcpx_op *op, void *dst, const void *src, size_t n)
{
    return region_copy(s, op->r, dst, src, n);
}
