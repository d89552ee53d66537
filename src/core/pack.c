/* pack.c - the bytes of one chunk between an op's pieces and a bounce slot:
 * gathered into the slot before a send, scattered out of it after a receive.
 *
 * A chunk covers [off, off+len) of its op's stream, which runs through the
 * op's pieces (segs) in order; tcpx_pack_cut decides where chunks end, the
 * same way at both ends. Pieces of host memory next to a host slot are
 * copied at once (memcpy). Pieces the GPU must copy (GPU memory, or host
 * memory next to a device slot) are queued on the given stream: one or two
 * as plain async copies (the copy engines do long runs best), more as one
 * copy-list kernel launch, never one synchronous copy per block. Many GPU
 * pieces next to a host slot meet in the slot's device mirror, so that only
 * copy engines cross PCIe.
 */
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "util/error.h"

size_t pack_cut(const tcpx_op *op, size_t *seg, size_t *seg_off, size_t chunk)
{
    size_t len = 0;
    int touched = 0;
    while (*seg < op->nsegs && len < chunk && touched < TCPX_PACK_MAX_SEGS) {
        size_t avail = op->segs[*seg].len - *seg_off;
        size_t take = avail < chunk - len ? avail : chunk - len;
        len += take;
        touched++;
        if (take == avail) {
            (*seg)++;
            *seg_off = 0;
        } else {
            *seg_off += take;
        }
    }
    return len;
}

uint8_t *pack_contiguous(const tcpx_op *op, size_t seg, size_t seg_off, size_t len, tcpx_region **r)
{
    const tcpx_seg *g = &op->segs[seg];
    uint8_t *start = g->ptr + seg_off, *next = start;
    *r = g->r;
    for (size_t left = len; left; seg++, seg_off = 0) {
        g = &op->segs[seg];
        if (g->r != *r || g->ptr + seg_off != next) return NULL;
        size_t take = g->len - seg_off < left ? g->len - seg_off : left;
        next += take;
        left -= take;
    }
    return start;
}

int pack_iov(const tcpx_chunk *ch, tcpx_net_iov *iov, int cap)
{
    const tcpx_op *op = ch->op;
    size_t seg = ch->seg, o = ch->seg_off;
    int n = 0;
    for (size_t left = ch->len; left; seg++, o = 0) {
        const tcpx_seg *g = &op->segs[seg];
        if (!g->r || g->r->kind == TCPX_MEM_CUDA || n == cap) return 0;
        size_t take = g->len - o < left ? g->len - o : left;
        iov[n++] = (tcpx_net_iov){g->ptr + o, take};
        left -= take;
    }
    return n;
}

typedef struct gpu_piece {
    uint8_t *dst;
    const uint8_t *src;
    size_t n;
} gpu_piece;

/* Every piece of the chunk is GPU memory, and there are more than two. */
static int many_gpu_pieces(const tcpx_chunk *ch)
{
    const tcpx_op *op = ch->op;
    size_t seg = ch->seg, o = ch->seg_off, n = 0;
    for (size_t left = ch->len; left; seg++, o = 0, n++) {
        const tcpx_seg *g = &op->segs[seg];
        if (g->r->kind != TCPX_MEM_CUDA) return 0;
        left -= g->len - o < left ? g->len - o : left;
    }
    return n > 2;
}

/* GPU pieces and a host slot with a device mirror: the pieces meet in the
 * mirror (one kernel, device memory only) and cross PCIe as one copy of
 * the whole chunk on a copy engine, as a single message does. */
static tcpx_status copy_via_mirror(const tcpx_chunk *ch, int gather, uint8_t *slot, uint8_t *mirror,
                                   struct tcpx_gpu_stream *stream, struct tcpx_gpu_copier *cp)
{
    const tcpx_op *op = ch->op;
    size_t seg = ch->seg, o = ch->seg_off, pos = 0;
    tcpx_gpu_copier_reset(cp);
    tcpx_status st = gather ? TCPX_OK : tcpx_gpu_memcpy_async(stream, mirror, slot, ch->len);
    for (size_t left = ch->len; left && !st; seg++, o = 0) {
        const tcpx_seg *g = &op->segs[seg];
        size_t n = g->len - o < left ? g->len - o : left;
        st = gather ? tcpx_gpu_copier_add(cp, mirror + pos, g->ptr + o, n) : tcpx_gpu_copier_add(cp, g->ptr + o, mirror + pos, n);
        pos += n;
        left -= n;
    }
    if (!st) st = tcpx_gpu_copier_run(cp, stream);
    if (!st && gather) st = tcpx_gpu_memcpy_async(stream, slot, mirror, ch->len);
    return st;
}

tcpx_status pack_copy(const tcpx_chunk *ch, int gather, uint8_t *slot, int slot_on_device, uint8_t *mirror,
                      struct tcpx_gpu_stream *stream, struct tcpx_gpu_copier *cp, int *queued)
{
    const tcpx_op *op = ch->op;
    size_t seg = ch->seg, o = ch->seg_off, left = ch->len, pos = 0;
    gpu_piece few[2];
    unsigned ngpu = 0;
    tcpx_status st = TCPX_OK;
    *queued = 0;
    if (mirror && cp && !slot_on_device && many_gpu_pieces(ch)) {
        *queued = 1;
        st = copy_via_mirror(ch, gather, slot, mirror, stream, cp);
        if (st) return tcpx_set_error(st, "%s of a %zu-byte chunk: %s", gather ? "gather" : "scatter", ch->len,
                                      tcpx_last_error());
        return TCPX_OK;
    }
    if (cp) tcpx_gpu_copier_reset(cp);
    while (left && !st) {
        const tcpx_seg *g = &op->segs[seg];
        size_t n = g->len - o < left ? g->len - o : left;
        uint8_t *mem = g->ptr + o, *sl = slot + pos;
        uint8_t *dst = gather ? sl : mem;
        const uint8_t *src = gather ? mem : sl;
        if (g->r->kind != TCPX_MEM_CUDA && !slot_on_device) {
            memcpy(dst, src, n);
        } else if (g->r->kind != TCPX_MEM_CUDA) {
            st = tcpx_gpu_memcpy_async(stream, dst, src, n); /* pageable host memory: a copy engine's job */
            *queued = 1;
        } else {
            if (ngpu < 2) few[ngpu] = (gpu_piece){dst, src, n};
            if (ngpu == 2 && !(st = tcpx_gpu_copier_add(cp, few[0].dst, few[0].src, few[0].n)))
                st = tcpx_gpu_copier_add(cp, few[1].dst, few[1].src, few[1].n);
            if (ngpu >= 2 && !st) st = tcpx_gpu_copier_add(cp, dst, src, n);
            ngpu++;
        }
        left -= n;
        pos += n;
        seg++;
        o = 0;
    }
    if (!st && ngpu > 2) st = tcpx_gpu_copier_run(cp, stream);
    for (unsigned i = 0; !st && ngpu <= 2 && i < ngpu; i++) st = tcpx_gpu_memcpy_async(stream, few[i].dst, few[i].src, few[i].n);
    if (ngpu) *queued = 1;
    if (st) return tcpx_set_error(st, "%s of a %zu-byte chunk: %s", gather ? "gather" : "scatter", ch->len,
                                  tcpx_last_error());
    return TCPX_OK;
}
