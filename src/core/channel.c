/* channel.c - one data comm: chunks queued in control-message order, posted
 * while the sliding window has room, retired strictly in posting order.
 * Progress returns a status (the sentence in tcpx_last_error) and appends
 * the ops of retired chunks to a list; the caller credits them and fails
 * the peer on an error. Nothing here knows peers or op kinds.
 *
 * A chunk moves in place when its bytes are contiguous in one registration
 * the transport can take in that direction, or when they are pieces of host
 * memory and the transport takes vectored messages (isendv/irecvv);
 * otherwise through a bounce slot (staging.c), gathered before the send and
 * scattered after the receive (pack.c). A refused write's chunks
 * (op->drain) land in a slot and stay there.
 *
 * With a data digest (c->ddgst), each chunk is followed on the comm by a
 * 4-byte message, the CRC-32C of its bytes, computed where the bytes leave
 * (the slot, or the memory sent in place) and checked where they land
 * before the chunk counts; a mismatch marks the op (op->ddgst_msg), which
 * fails once its chunks are in (op.c). GPU memory then always goes through
 * the host slots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "util/bytes.h"
#include "util/error.h"

#define CHAN_INITIAL_CAP 64

tcpx_status chan_init(tcpx_chan *c, void *comm)
{
    memset(c, 0, sizeof *c);
    c->comm = comm;
    c->ring = calloc(CHAN_INITIAL_CAP, sizeof *c->ring);
    if (!c->ring) return tcpx_set_error(TCPX_ERR_NOMEM, "channel ring allocation failed");
    c->cap = CHAN_INITIAL_CAP;
    return TCPX_OK;
}

/* Close the comm and free the channel. Registrations go first, the comm is
 * closed next (the transport then stops touching every buffer), and the
 * staging slots are freed last. */
void chan_close(tcpx_session *s, tcpx_chan *c, int is_send)
{
    tcpx_net *n = s->net;
    if (c->comm) {
        urx_stop(s, c->comm, c->urx);
        if (c->dig_mh) n->dereg_mr(n, c->comm, c->dig_mh);
        if (c->stage && c->stage->mh) n->dereg_mr(n, c->comm, c->stage->mh);
        if (c->stage) c->stage->mh = NULL;
        mem_drop_comm(s, c->comm);
        if (is_send) n->close_send(n, c->comm);
        else n->close_recv(n, c->comm);
    }
    urx_free(s, c->urx);
    stage_destroy(s, NULL, c->stage);
    free(c->dig);
    free(c->iov);
    free(c->ring);
    memset(c, 0, sizeof *c);
}

static tcpx_status chan_push(tcpx_chan *c, const tcpx_chunk *ch)
{
    if (c->tail - c->head == c->cap) {
        size_t ncap = c->cap * 2;
        tcpx_chunk *r = calloc(ncap, sizeof *r);
        if (!r) return tcpx_set_error(TCPX_ERR_NOMEM, "channel ring growth failed");
        for (size_t i = c->head; i < c->tail; i++) r[i % ncap] = c->ring[i % c->cap];
        free(c->ring);
        c->ring = r;
        c->cap = ncap;
    }
    c->ring[c->tail % c->cap] = *ch;
    c->tail++;
    return TCPX_OK;
}

static int all_host(const tcpx_op *op, const tcpx_chunk *ch)
{
    size_t seg = ch->seg, o = ch->seg_off;
    for (size_t left = ch->len; left; seg++, o = 0) {
        const tcpx_seg *g = &op->segs[seg];
        if (g->r->kind == TCPX_MEM_CUDA) return 0;
        left -= g->len - o < left ? g->len - o : left;
    }
    return 1;
}

tcpx_status enqueue_chunks(tcpx_session *s, tcpx_op *op, tcpx_chan *chans, int nchans, size_t chunk, uint16_t first,
                           int is_send)
{
    size_t seg = 0, seg_off = 0, n = 0;
    for (size_t off = 0; off < op->size; n++) {
        tcpx_chunk ch = {.op = op, .off = off, .seg = seg, .seg_off = seg_off, .slot = -1, .uslot = -1};
        ch.len = pack_cut(op, &seg, &seg_off, chunk);
        if (!op->drain) {
            tcpx_region *r;
            uint8_t *p = pack_contiguous(op, ch.seg, ch.seg_off, ch.len, &r);
            /* (a digest is computed by the host: GPU memory goes through a slot) */
            if (p && stage_direct_ok(s, r->kind, is_send) && !(op->p->ddgst && r->kind == TCPX_MEM_CUDA)) {
                ch.direct = p;
                ch.dregion = r;
            } else if (!p && (is_send ? s->net->isendv : s->net->irecvv) && all_host(op, &ch)) {
                ch.vec = 1; /* several host pieces, moved in place by the transport */
            }
        }
        tcpx_status st = chan_push(&chans[(first + n) % (size_t)nchans], &ch);
        if (st) return st;
        off += ch.len;
    }
    op->nchunks = n;
    op->chunks_done = 0;
    return TCPX_OK;
}

static tcpx_status retired_add(tcpx_retired *out, tcpx_op *op)
{
    if (out->n == out->cap) {
        size_t ncap = out->cap ? out->cap * 2 : 64;
        tcpx_op **v = realloc(out->ops, ncap * sizeof *v);
        if (!v) return tcpx_set_error(TCPX_ERR_NOMEM, "retired-chunk list growth failed");
        out->ops = v;
        out->cap = ncap;
    }
    out->ops[out->n++] = op;
    return TCPX_OK;
}

static tcpx_status fail_gpu(void)
{
    return tcpx_set_error(TCPX_ERR_CUDA, "staging copy: %s", tcpx_last_error());
}

/* Where a chunk was posted: in place, or its slot. */
static uint8_t *posted_buf(tcpx_chan *c, tcpx_chunk *ch)
{
    return ch->direct ? ch->direct : stage_slot(c->stage, ch->slot);
}

/* A finished receive over a device-unpack transport: gather it into the
 * buffer it was posted with, then out of the slot into the op's pieces,
 * all on the unpack stream, whose slot event retire waits for. */
static tcpx_status finish_unpack(tcpx_session *s, tcpx_chan *c, tcpx_chunk *ch)
{
    tcpx_status st = TCPX_OK;
    int queued = 0;
    if (!ch->op->drain) {
        st = urx_unpack(c->urx, ch->uslot, posted_buf(c, ch), ch->len);
        if (!st && !ch->direct)
            st = pack_copy(ch, 0, stage_slot(c->stage, ch->slot), 1, NULL, urx_stream(c->urx), c->stage->cp[ch->slot],
                           &queued);
    }
    if (!st) st = urx_mark(c->urx, ch->uslot);
    if (!st) st = tcpx_gpu_stream_notify(urx_stream(c->urx), s->wake, s); /* wake whoever waits for it */
    if (st) tcpx_set_error(st, "device unpack of a %zu-byte chunk: %s", ch->len, tcpx_last_error());
    return st;
}

/* GPU copies of ch's slot are queued: its event marks their end, and a host
 * function after them wakes the session (a copy wakes nobody otherwise). */
static tcpx_status mark_slot(tcpx_session *s, tcpx_stage *st, tcpx_chunk *ch)
{
    tcpx_status rc = tcpx_gpu_event_record(st->ev[ch->slot], st->stream);
    if (!rc) rc = tcpx_gpu_stream_notify(st->stream, s->wake, s);
    if (!rc) ch->gpu_wait = 1;
    return rc;
}

/* A finished receive through a host slot: its pieces out of the slot (GPU
 * copies waited for at retire). */
static tcpx_status finish_scatter(tcpx_session *s, tcpx_chan *c, tcpx_chunk *ch)
{
    if (ch->op->drain) return TCPX_OK;
    tcpx_stage *st = c->stage;
    int queued = 0;
    tcpx_status rc = pack_copy(ch, 0, stage_slot(st, ch->slot), 0, st->cp ? stage_mirror(s, st, ch->slot) : NULL,
                               st->stream, st->cp ? st->cp[ch->slot] : NULL, &queued);
    if (!rc && queued) rc = mark_slot(s, st, ch);
    return rc ? fail_gpu() : TCPX_OK;
}

/* CRC-32C of a chunk's bytes where they were posted: its slot, the memory
 * it moved in place, or its host pieces. */
static uint32_t chunk_digest(tcpx_chan *c, tcpx_chunk *ch)
{
    if (!ch->vec) return tcpx_crc32c(posted_buf(c, ch), ch->len);
    int niov = pack_iov(ch, c->iov, TCPX_PACK_MAX_SEGS);
    uint32_t crc = 0;
    for (int i = 0; i < niov; i++) crc = tcpx_crc32c_update(crc, c->iov[i].base, c->iov[i].len);
    return crc;
}

/* A received chunk against the digest that followed it: a mismatch marks
 * its op (the first one is named), which fails once all its chunks are in. */
static tcpx_status check_digest(tcpx_chan *c, tcpx_chunk *ch)
{
    tcpx_op *op = ch->op;
    if (op->drain || op->ddgst_msg) return TCPX_OK;
    uint32_t got = chunk_digest(c, ch), sent = c->dig[ch->dslot];
    if (got == sent) return TCPX_OK;
    char msg[300];
    snprintf(msg, sizeof msg,
             "data digest mismatch: chunk at bytes [%zu, +%zu) of %s %llu from %s (sent 0x%08x, computed 0x%08x): "
             "corrupted in transit",
             ch->off, ch->len, op_kind_name(op), (unsigned long long)(op->target ? op->remote_id : op->id),
             op->p->name, sent, got);
    op->ddgst_msg = strdup(msg);
    return op->ddgst_msg ? TCPX_OK : tcpx_set_error(TCPX_ERR_NOMEM, "data digest: out of memory");
}

/* Test one request of a chunk; *done set when it finished. */
static tcpx_status test_req(tcpx_net *n, void **req, int *done, size_t *size)
{
    if (n->test(n, *req, done, size)) {
        *req = NULL;
        return tcpx_set_error(TCPX_ERR_PEER, "data stream: %s", tcpx_last_error());
    }
    return TCPX_OK;
}

/* Transport completions, in order (a chunk with a digest is through once
 * its digest message is too). */
static tcpx_status test_posted(tcpx_session *s, tcpx_chan *c, int is_send)
{
    tcpx_net *n = s->net;
    for (size_t i = c->head; i < c->posted; i++) {
        tcpx_chunk *ch = &c->ring[i % c->cap];
        if (ch->done) continue;
        int done = 0;
        size_t size = 0;
        tcpx_status st;
        if (!ch->cdone) {
            if ((st = test_req(n, &ch->req, &done, &size))) return st;
            if (!done) break; /* requests of one comm complete in order */
            ch->cdone = 1;
            if (!is_send && size != ch->len)
                return tcpx_set_error(TCPX_ERR_PROTOCOL, "data stream: chunk of %zu bytes where %zu were announced",
                                      size, ch->len);
        }
        if (c->ddgst) {
            if (ch->dpend) break;
            if ((st = test_req(n, &ch->dreq, &done, &size))) return st;
            if (!done) break;
            if (!is_send && size != 4)
                return tcpx_set_error(TCPX_ERR_PROTOCOL, "data stream: a data digest of %zu bytes", size);
        }
        ch->done = 1;
        if (is_send) continue;
        if (c->ddgst && (st = check_digest(c, ch))) return st;
        st = c->urx ? finish_unpack(s, c, ch) : ch->slot >= 0 ? finish_scatter(s, c, ch) : TCPX_OK;
        /* (vectored and in-place chunks are where they belong already) */
        if (st) return st;
    }
    return TCPX_OK;
}

/* Retire finished chunks in order (a receive once its copies are done). */
static tcpx_status retire(tcpx_session *s, tcpx_chan *c, int is_send, tcpx_retired *out)
{
    tcpx_net *n = s->net;
    while (c->head < c->posted && c->ring[c->head % c->cap].done) {
        tcpx_chunk *ch = &c->ring[c->head % c->cap];
        if (!is_send && (c->urx || ch->gpu_wait)) {
            tcpx_status q = c->urx ? urx_query(c->urx, ch->uslot) : tcpx_gpu_event_query(c->stage->ev[ch->slot]);
            if (q == TCPX_IN_PROGRESS) break;
            if (q) return fail_gpu();
        }
        if (!is_send && (n->irecv_consumed(n, c->comm, ch->req) ||
                         (c->ddgst && n->irecv_consumed(n, c->comm, ch->dreq))))
            return tcpx_set_error(TCPX_ERR_TRANSPORT, "data stream: %s", tcpx_last_error());
        if (ch->slot >= 0) stage_release(c->stage);
        c->head++;
        tcpx_status st = retired_add(out, ch->op);
        if (st) return st;
    }
    return TCPX_OK;
}

/* Give a chunk that moves through a bounce slot its slot (creating the pool
 * on first use). 0 = no slot free now. */
static int take_slot(tcpx_session *s, tcpx_chan *c, tcpx_chunk *ch, int is_send, tcpx_status *st)
{
    if (ch->slot >= 0) return 1;
    if (!c->stage && (*st = stage_create(s, c->comm, is_send, &c->stage))) return 0;
    ch->slot = stage_acquire(c->stage);
    return ch->slot >= 0;
}

/* Sending: gather queued chunks that need a slot into free slots, in ring
 * order (host pieces at once, GPU pieces queued with the slot's event). */
static tcpx_status stage_sends(tcpx_session *s, tcpx_chan *c)
{
    if (c->staged < c->posted) c->staged = c->posted;
    while (c->staged < c->tail) {
        tcpx_chunk *ch = &c->ring[c->staged % c->cap];
        if (!ch->direct && !ch->vec) {
            tcpx_status st = TCPX_OK;
            if (!take_slot(s, c, ch, 1, &st)) {
                if (st) return fail_gpu();
                break;
            }
            tcpx_stage *sg = c->stage;
            int queued = 0;
            st = pack_copy(ch, 1, stage_slot(sg, ch->slot), 0, sg->cp ? stage_mirror(s, sg, ch->slot) : NULL,
                           sg->stream, sg->cp ? sg->cp[ch->slot] : NULL, &queued);
            if (!st && queued) st = mark_slot(s, sg, ch);
            if (st) return fail_gpu();
        }
        c->staged++;
    }
    return TCPX_OK;
}

/* The digest message after the last posted chunk ch: its CRC (computed by
 * the sender when the chunk was posted) out, or the receive for it posted.
 * ch->dpend stays set while the transport has no room for it. */
static tcpx_status post_digest(tcpx_session *s, tcpx_chan *c, tcpx_chunk *ch, int is_send)
{
    tcpx_net *n = s->net;
    void *buf = &c->dig[ch->dslot];
    if (is_send ? n->isend(n, c->comm, buf, 4, 0, c->dig_mh, &ch->dreq)
                : n->irecv(n, c->comm, buf, 4, 0, c->dig_mh, &ch->dreq))
        return tcpx_set_error(TCPX_ERR_PEER, "data stream: %s", tcpx_last_error());
    if (ch->dreq) ch->dpend = 0;
    return TCPX_OK;
}

/* The channel's digest slots, registered with its comm, on first use. */
static tcpx_status digest_init(tcpx_session *s, tcpx_chan *c)
{
    if (c->dig) return TCPX_OK;
    size_t bytes = (size_t)s->window * sizeof *c->dig;
    if (!(c->dig = calloc((size_t)s->window, sizeof *c->dig)))
        return tcpx_set_error(TCPX_ERR_NOMEM, "data digest slots: out of memory");
    if (s->net->reg_mr(s->net, c->comm, c->dig, bytes, TCPX_NET_PTR_HOST, &c->dig_mh))
        return tcpx_set_error(TCPX_ERR_TRANSPORT, "data digest slots: %s", tcpx_last_error());
    return TCPX_OK;
}

/* Just before a chunk goes to the transport: its digest slot and, on the
 * sender, its digest (a GPU chunk's staged bytes are in place only once
 * its copy event has fired, which is checked before this). */
static void digest_prepare(tcpx_session *s, tcpx_chan *c, tcpx_chunk *ch, int is_send)
{
    ch->dslot = (int)(c->posted % (size_t)s->window);
    if (c->ddgst && is_send) c->dig[ch->dslot] = chunk_digest(c, ch);
}

/* Post chunks to the transport while the window has room (with digests a
 * chunk takes two requests: half the window). */
static tcpx_status post_chunks(tcpx_session *s, tcpx_chan *c, int is_send)
{
    tcpx_net *n = s->net;
    size_t limit = is_send ? c->staged : c->tail;
    size_t window = c->ddgst && s->window > 1 ? (size_t)s->window / 2 : (size_t)s->window;
    tcpx_status st = c->ddgst ? digest_init(s, c) : TCPX_OK;
    if (st) return st;
    if (c->posted > c->head) { /* nothing passes a digest still to be posted */
        tcpx_chunk *last = &c->ring[(c->posted - 1) % c->cap];
        if (last->dpend && ((st = post_digest(s, c, last, is_send)) || last->dpend)) return st;
    }
    while (c->posted < limit && c->posted - c->head < window) {
        tcpx_chunk *ch = &c->ring[c->posted % c->cap];
        if (ch->vec) {
            if (!c->iov && !(c->iov = malloc(TCPX_PACK_MAX_SEGS * sizeof *c->iov)))
                return tcpx_set_error(TCPX_ERR_NOMEM, "data stream: iovec scratch allocation failed");
            digest_prepare(s, c, ch, is_send);
            int niov = pack_iov(ch, c->iov, TCPX_PACK_MAX_SEGS);
            if (is_send ? n->isendv(n, c->comm, c->iov, niov, &ch->req) : n->irecvv(n, c->comm, c->iov, niov, &ch->req))
                return tcpx_set_error(TCPX_ERR_PEER, "data stream: %s", tcpx_last_error());
        } else {
            void *buf = ch->direct, *mh;
            if (!ch->direct) {
                if (is_send && ch->gpu_wait) {
                    st = tcpx_gpu_event_query(c->stage->ev[ch->slot]);
                    if (st == TCPX_IN_PROGRESS) break;
                    if (st) return fail_gpu();
                } else if (!is_send && !take_slot(s, c, ch, 0, &st)) {
                    if (st) return fail_gpu();
                    break;
                }
                buf = stage_slot(c->stage, ch->slot);
                mh = c->stage->mh;
            } else {
                mh = mem_mr(s, ch->dregion, c->comm, &st);
            }
            if (st) return tcpx_set_error(st, "data stream: %s", tcpx_last_error());
            digest_prepare(s, c, ch, is_send);
            /* A stream that refuses a post is broken (a plugin sees the peer
             * gone there as often as in test): the peer failed, as in test_posted. */
            if (is_send ? n->isend(n, c->comm, buf, ch->len, 0, mh, &ch->req)
                        : n->irecv(n, c->comm, buf, ch->len, 0, mh, &ch->req))
                return tcpx_set_error(TCPX_ERR_PEER, "data stream: %s", tcpx_last_error());
        }
        if (!ch->req) break;
        if (c->urx) ch->uslot = urx_take_slot(c->urx);
        c->posted++;
        if (c->ddgst) {
            ch->dpend = 1;
            if ((st = post_digest(s, c, ch, is_send)) || ch->dpend) return st;
        }
    }
    return TCPX_OK;
}

tcpx_status chan_progress(tcpx_session *s, tcpx_chan *c, int is_send, tcpx_retired *out)
{
    tcpx_status st = test_posted(s, c, is_send);
    if (!st) st = retire(s, c, is_send, out);
    if (!st && is_send) st = stage_sends(s, c);
    if (!st) st = post_chunks(s, c, is_send);
    return st;
}
