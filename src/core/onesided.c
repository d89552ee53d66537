/* onesided.c - WRITE and READ of block lists (proto.h): the initiator's ops
 * and what the target does for them, with no call from its application.
 *
 * Initiator: a WRITE puts its list on the control stream and its chunks on
 * the data comms at once (a small one: the list and its bytes in one
 * control message, no chunks), and completes on the target's ACK once its
 * own chunks have gone (a NACK is applied then too, as the chunks still read
 * the memory until they have). A READ sends its list and receives the
 * target's chunks after READ_DATA (a small one: the bytes in READ_DATA
 * itself); with a notification it then sends a NOTIF and completes on its
 * ACK.
 * Target: a list arrives in pieces; once whole, every block is checked
 * (mem.c), then a WRITE is received into the blocks (refused: drained into
 * slots, NACK at once) and ACKed when every byte is in place; a READ is
 * answered with READ_DATA and the blocks' bytes (refused: NACK, no data).
 * Target ops are detached ops of the peer, holding the peer and counting in
 * their regions' rbusy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------ initiator */

static void write_settle(tcpx_op *op)
{
    if (op->chunks_done < op->nchunks) return;
    if (op->verdict) op_fail(op, op->verdict, "%s", op->verdict_msg ? op->verdict_msg : "refused");
    else if (op->acked) op_complete(op);
}

static tcpx_status write_acked(tcpx_op *op)
{
    if (op->state != OPS_DATA || op->acked || op->verdict)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "ACK for write %llu in the wrong state", (unsigned long long)op->id);
    op->acked = 1;
    write_settle(op);
    return TCPX_OK;
}

static tcpx_status write_nacked(tcpx_op *op, tcpx_status st, const char *text)
{
    if (op->state != OPS_DATA || op->acked || op->verdict)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "NACK for write %llu in the wrong state", (unsigned long long)op->id);
    char msg[320];
    snprintf(msg, sizeof msg, "peer %s refused the write: %s", op->p->name, text);
    op->verdict = st;
    op->verdict_msg = strdup(msg);
    write_settle(op);
    return TCPX_OK;
}

/* Every byte of a READ is in local memory: done, or first the notification. */
static void read_chunks_done(tcpx_op *op)
{
    if (!op->has_notif) {
        op_complete(op);
        return;
    }
    op_release_regions(op); /* the memory is no longer touched */
    op->state = OPS_NOTIFYING;
    tcpx_msg n = {.type = TCPX_MSG_NOTIF};
    n.u.notif.id = op->id;
    n.payload = op->notif;
    n.payload_len = (uint32_t)op->notif_len;
    if (ctrl_send(op->p, &n)) op_fail(op, TCPX_ERR_PEER, "peer %s: the notification could not be sent", op->p->name);
}

static tcpx_status read_acked(tcpx_op *op)
{
    if (op->state != OPS_NOTIFYING)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "ACK for read %llu in the wrong state", (unsigned long long)op->id);
    op_complete(op);
    return TCPX_OK;
}

static tcpx_status read_nacked(tcpx_op *op, tcpx_status st, const char *text)
{
    if (op->state == OPS_DATA)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "NACK for read %llu while its bytes move", (unsigned long long)op->id);
    op_fail(op, st, "peer %s refused %s: %s", op->p->name, op->state == OPS_NOTIFYING ? "the notification" : "the read",
            text);
    return TCPX_OK;
}

static const tcpx_op_hooks write_hooks = {.chunks_done = write_settle, .acked = write_acked, .nacked = write_nacked};
static const tcpx_op_hooks read_hooks = {.chunks_done = read_chunks_done, .acked = read_acked, .nacked = read_nacked};

/* The header of a WRITE piece of op's list. */
static tcpx_msg write_msg(const tcpx_op *op, uint32_t n, uint32_t first, size_t chunk, uint16_t first_ch,
                          uint16_t flags)
{
    tcpx_msg m = {.type = TCPX_MSG_WRITE};
    m.u.write.id = op->id;
    m.u.write.total = op->size;
    m.u.write.nblocks = n;
    m.u.write.first = first;
    m.u.write.chunk = (uint32_t)chunk;
    m.u.write.first_channel = first_ch;
    m.u.write.flags = flags;
    return m;
}

/* The list's messages: pieces of up to TCPX_BLOCKS_PER_MSG blocks, back to
 * back (a list of no block is one empty piece). */
static tcpx_status send_list(tcpx_op *op, const tcpx_wire_block *blocks, uint32_t n, size_t chunk, uint16_t first_ch)
{
    uint8_t payload[TCPX_BLOCKS_PER_MSG * TCPX_WIRE_BLOCK_SIZE];
    uint32_t first = 0;
    do {
        uint32_t cnt = n - first < TCPX_BLOCKS_PER_MSG ? n - first : TCPX_BLOCKS_PER_MSG;
        for (uint32_t i = 0; i < cnt; i++) tcpx_wire_block_put(payload, i, &blocks[first + i]);
        uint16_t flags = first + cnt == n ? TCPX_LIST_LAST : 0;
        if (first + cnt == n && op->has_notif && op->kind == OP_WRITE) flags |= TCPX_LIST_NOTIF;
        tcpx_msg m = {.type = TCPX_MSG_READ_REQ};
        if (op->kind == OP_WRITE) {
            m = write_msg(op, n, first, chunk, first_ch, flags);
        } else {
            m.u.read_req.id = op->id;
            m.u.read_req.total = op->size;
            m.u.read_req.nblocks = n;
            m.u.read_req.first = first;
            m.u.read_req.flags = flags;
        }
        m.payload = payload;
        m.payload_len = cnt * TCPX_WIRE_BLOCK_SIZE;
        tcpx_status st = ctrl_send(op->p, &m);
        if (st) return st;
        first += cnt;
    } while (first < n);
    return TCPX_OK;
}

/* Room in one control message for the list and its bytes. */
#define INLINE_ROOM (TCPX_CTRL_MSG_MAX - 64)

/* A small WRITE as one message: the list, then its bytes, read from local
 * memory now (so the op's memory is free at once; it completes on the ACK). */
static tcpx_status send_inline(tcpx_op *op, const tcpx_wire_block *blocks, uint32_t n, size_t chunk)
{
    static __thread uint8_t payload[INLINE_ROOM];
    size_t blen = (size_t)n * TCPX_WIRE_BLOCK_SIZE, pos = blen;
    for (uint32_t i = 0; i < n; i++) tcpx_wire_block_put(payload, i, &blocks[i]);
    for (size_t i = 0; i < op->nsegs; i++) {
        tcpx_status st = region_copy(op->p->s, op->segs[i].r, payload + pos, op->segs[i].ptr, op->segs[i].len);
        if (st) return tcpx_set_error(st, "reading the write's memory: %s", tcpx_last_error());
        pos += op->segs[i].len;
    }
    tcpx_msg m = write_msg(op, n, 0, chunk, 0,
                           (uint16_t)(TCPX_LIST_LAST | TCPX_LIST_INLINE | (op->has_notif ? TCPX_LIST_NOTIF : 0)));
    m.payload = payload;
    m.payload_len = (uint32_t)pos;
    return ctrl_send(op->p, &m);
}

tcpx_status onesided_start(tcpx_op *op, const tcpx_wire_block *blocks, uint32_t n)
{
    tcpx_peer *p = op->p;
    tcpx_session *s = p->s;
    op->hooks = op->kind == OP_WRITE ? &write_hooks : &read_hooks;
    ops_add(p, op);
    size_t chunk = min_size(s->cfg.chunk_bytes, p->remote_max_chunk);
    uint16_t first_ch = op->kind == OP_WRITE ? (uint16_t)(p->next_first_channel++ % (unsigned)p->ntx) : 0;
    /* The short path: no data comm, no chunk, one message each way. */
    int inline_write = op->kind == OP_WRITE && op->size <= TCPX_INLINE_MAX &&
                       (size_t)n * TCPX_WIRE_BLOCK_SIZE + op->size <= INLINE_ROOM;
    tcpx_status st = inline_write ? send_inline(op, blocks, n, chunk) : send_list(op, blocks, n, chunk, first_ch);
    if (!st && op->kind == OP_WRITE && op->has_notif) {
        tcpx_msg m = {.type = TCPX_MSG_NOTIF};
        m.u.notif.id = op->id;
        m.u.notif.flags = TCPX_NOTIF_ATTACHED;
        m.payload = op->notif;
        m.payload_len = (uint32_t)op->notif_len;
        st = ctrl_send(p, &m);
    }
    if (!st && op->kind == OP_WRITE) {
        op->state = OPS_DATA;
        if (!inline_write) st = enqueue_chunks(s, op, p->tx, p->ntx, chunk, first_ch, 1);
        if (!st && op->nchunks == 0) write_settle(op);
    } else if (!st) {
        op->state = OPS_REQ_SENT;
    }
    return st;
}

/* An INLINE READ_DATA: the bytes are here; into the op's pieces. */
static tcpx_status read_inline(tcpx_op *op, const tcpx_msg *m)
{
    const uint8_t *src = m->payload;
    op->state = OPS_DATA;
    for (size_t i = 0; i < op->nsegs; i++) {
        tcpx_status st = region_copy(op->p->s, op->segs[i].r, op->segs[i].ptr, src, op->segs[i].len);
        if (st) {
            op_fail(op, st, "storing the read from %s: %s", op->p->name, tcpx_last_error());
            return TCPX_OK; /* this op failed; the connection is fine */
        }
        src += op->segs[i].len;
    }
    read_chunks_done(op);
    return TCPX_OK;
}

tcpx_status onesided_on_read_data(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_op *op = ops_find(p, m->u.read_data.id);
    if (!op || op->kind != OP_READ || op->state != OPS_REQ_SENT || op->size != m->u.read_data.total ||
        m->u.read_data.first_channel >= p->nrx || m->u.read_data.chunk > p->s->cfg.chunk_bytes)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_DATA for read %llu that is not waiting for it",
                              (unsigned long long)m->u.read_data.id);
    if (m->u.read_data.flags & TCPX_READ_INLINE) return read_inline(op, m);
    op->state = OPS_DATA;
    tcpx_status st = enqueue_chunks(p->s, op, p->rx, p->nrx, m->u.read_data.chunk, m->u.read_data.first_channel, 0);
    if (!st && op->nchunks == 0) read_chunks_done(op);
    return st;
}

/* --------------------------------------------------------------- target */

/* A write served here: every byte in place (and its attached notification
 * arrived): delivered and ACKed. A drained one just ends. */
static void write_in_settle(tcpx_op *op)
{
    if (op->chunks_done < op->nchunks || op->notif_wait) return;
    tcpx_peer *p = op->p;
    if (!op->drain) {
        if (op->nq) {
            notify_mark_ready(op->nq);
            op->nq = NULL;
            notify_flush(p);
        }
        if (!op->no_ack) {
            tcpx_msg ack = {.type = TCPX_MSG_ACK};
            ack.u.ack.id = op->remote_id;
            ctrl_send(p, &ack);
        }
    }
    op_complete(op);
}

static void write_in_finish(tcpx_op *op)
{
    if (op->p->notif_op == op) op->p->notif_op = NULL;
    if (op->nq) notify_drop(op->p, op->nq); /* failed before its data was in */
    op->nq = NULL;
}

static void read_in_done(tcpx_op *op) { op_complete(op); }

/* A READ served here has sent its last byte (or failed). */
static void read_in_finish(tcpx_op *op)
{
    if (--op->p->reads_in == 0) notify_reads_done(op->p);
}

static const tcpx_op_hooks write_in_hooks = {.chunks_done = write_in_settle, .finish = write_in_finish};
static const tcpx_op_hooks read_in_hooks = {.chunks_done = read_in_done, .finish = read_in_finish};

/* Take one piece of a list; *whole once the last is in. */
static tcpx_status list_piece(tcpx_peer *p, const tcpx_msg *m, uint64_t id, uint32_t nblocks, uint32_t first,
                              uint16_t flags, int *whole)
{
    const char *name = tcpx_msg_name(m->type);
    if (first == 0) {
        if (p->list.type)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s %llu begins while the list of %llu is arriving", name,
                                  (unsigned long long)id, (unsigned long long)p->list.id);
        p->list.blocks = malloc((nblocks ? nblocks : 1) * sizeof *p->list.blocks);
        if (!p->list.blocks) return tcpx_set_error(TCPX_ERR_NOMEM, "%s: no memory for a list of %u blocks", name, nblocks);
        p->list.type = m->type;
        p->list.id = id;
        p->list.nblocks = nblocks;
        p->list.got = 0;
        p->list.hdr = *m;
        p->list.hdr.payload = NULL;
        p->list.hdr.payload_len = 0;
    } else if (p->list.type != m->type || p->list.id != id || p->list.nblocks != nblocks || p->list.got != first) {
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s %llu: piece at block %u out of order", name,
                              (unsigned long long)id, first);
    }
    /* An INLINE WRITE is one piece: all blocks, then the bytes (the decoder
     * checked the lengths). */
    int inl = (flags & TCPX_LIST_INLINE) != 0;
    uint32_t cnt = inl ? nblocks : m->payload_len / TCPX_WIRE_BLOCK_SIZE;
    for (uint32_t i = 0; i < cnt; i++) p->list.blocks[p->list.got++] = tcpx_msg_block(m, i);
    p->list.inline_data = inl ? m->payload + (size_t)nblocks * TCPX_WIRE_BLOCK_SIZE : NULL;
    *whole = (flags & TCPX_LIST_LAST) != 0;
    return TCPX_OK;
}

static void list_clear(tcpx_peer *p)
{
    free(p->list.blocks);
    p->list.blocks = NULL;
    p->list.inline_data = NULL;
    p->list.type = 0;
}

/* A target op over the whole list: its pieces (zero-length blocks left out)
 * in the checked regions, or, refused (regions NULL), lengths only. */
static tcpx_status target_op(tcpx_peer *p, int kind, uint64_t total, tcpx_region **regions, tcpx_op **out)
{
    tcpx_op *op = calloc(1, sizeof *op);
    size_t n = 0;
    for (uint32_t i = 0; i < p->list.nblocks; i++) n += p->list.blocks[i].len != 0;
    if (op) op->segs = malloc((n ? n : 1) * sizeof *op->segs);
    if (!op || !op->segs) {
        free(op);
        return tcpx_set_error(TCPX_ERR_NOMEM, "no memory to serve a list of %u blocks", p->list.nblocks);
    }
    for (uint32_t i = 0; i < p->list.nblocks; i++) {
        const tcpx_wire_block *b = &p->list.blocks[i];
        if (!b->len) continue;
        tcpx_region *r = regions ? regions[i] : NULL;
        op->segs[op->nsegs++] = (tcpx_seg){r ? r->ptr + b->offset : NULL, (size_t)b->len, r};
    }
    op->id = p->s->next_op_id++;
    op->kind = kind;
    op->target = 1;
    op->p = p;
    op->remote_id = p->list.id;
    op->size = (size_t)total;
    op->drain = regions == NULL;
    op->hooks = kind == OP_WRITE_IN ? &write_in_hooks : &read_in_hooks;
    p->refs++; /* a detached op holds its peer */
    ops_add(p, op);
    if (regions) op_hold_regions(op);
    if (kind == OP_READ_IN) p->reads_in++;
    op->state = OPS_DATA;
    *out = op;
    return TCPX_OK;
}

/* Check every block; NULL with the reason in why when one is refused. */
static tcpx_region **check_blocks(tcpx_peer *p, char *why, size_t cap, tcpx_status *st)
{
    tcpx_region **r = malloc((p->list.nblocks ? p->list.nblocks : 1) * sizeof *r);
    *st = r ? TCPX_OK : tcpx_set_error(TCPX_ERR_NOMEM, "no memory to check a list of %u blocks", p->list.nblocks);
    for (uint32_t i = 0; r && i < p->list.nblocks; i++) {
        if (mem_access(p->s, &p->list.blocks[i], i, &r[i], why, cap)) {
            free(r);
            return NULL;
        }
    }
    return r;
}

/* The sum of the blocks' lengths must be the announced total. */
static tcpx_status check_total(tcpx_peer *p, uint64_t total)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < p->list.nblocks; i++) {
        uint64_t len = p->list.blocks[i].len;
        if (len > UINT64_MAX - sum || (sum += len) > total) break;
    }
    if (sum != total || total > SIZE_MAX)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s %llu: blocks do not add up to the announced %llu bytes",
                              tcpx_msg_name(p->list.type), (unsigned long long)p->list.id, (unsigned long long)total);
    return TCPX_OK;
}

/* last_flags: the flags of the piece that completed the list. */
static tcpx_status serve_write(tcpx_peer *p, uint16_t last_flags)
{
    tcpx_session *s = p->s;
    const tcpx_msg *h = &p->list.hdr;
    if (h->u.write.chunk > s->cfg.chunk_bytes || h->u.write.first_channel >= p->nrx)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "WRITE %llu: chunk %u or first channel %u out of range",
                              (unsigned long long)p->list.id, h->u.write.chunk, h->u.write.first_channel);
    tcpx_status st = check_total(p, h->u.write.total);
    if (st) return st;
    char why[256];
    tcpx_region **regions = check_blocks(p, why, sizeof why, &st);
    if (st) return st;
    tcpx_op *op;
    st = target_op(p, OP_WRITE_IN, h->u.write.total, regions, &op);
    free(regions);
    if (st) return st;
    if (op->drain) {
        TCPX_INFO("peer %s: refused write %llu: %s", p->name, (unsigned long long)op->remote_id, why);
        ctrl_send_nack(p, op->remote_id, TCPX_ERR_ACCESS, why);
    } else if (p->list.inline_data) { /* the bytes came with the list */
        const uint8_t *src = p->list.inline_data;
        for (size_t i = 0; i < op->nsegs && !st; i++) {
            st = region_copy(s, op->segs[i].r, op->segs[i].ptr, src, op->segs[i].len);
            src += op->segs[i].len;
        }
        if (st) { /* a GPU copy failed: the writer hears why, nothing is delivered */
            char text[300];
            snprintf(text, sizeof text, "the target could not store the write: %s", tcpx_last_error());
            TCPX_WARN("peer %s: write %llu: %s", p->name, (unsigned long long)op->remote_id, text);
            ctrl_send_nack(p, op->remote_id, TCPX_ERR_PEER, text);
            op->drain = 1;
            st = TCPX_OK;
        }
    }
    if (last_flags & TCPX_LIST_NOTIF) {
        p->notif_for = op->remote_id;
        p->notif_op = op;
        op->notif_wait = !op->drain;
    }
    if (!p->list.inline_data) st = enqueue_chunks(s, op, p->rx, p->nrx, h->u.write.chunk, h->u.write.first_channel, 0);
    if (!st && op->nchunks == 0) write_in_settle(op);
    return st;
}

/* A small READ: its bytes, copied now (under the session lock, so no
 * deregistration can race them), go back as READ_DATA's payload. */
static tcpx_status read_answer_inline(tcpx_peer *p, uint64_t total, tcpx_region **regions)
{
    static __thread uint8_t buf[TCPX_INLINE_MAX];
    size_t pos = 0;
    for (uint32_t i = 0; i < p->list.nblocks; i++) {
        const tcpx_wire_block *b = &p->list.blocks[i];
        if (!b->len) continue;
        tcpx_status st = region_copy(p->s, regions[i], buf + pos, regions[i]->ptr + b->offset, (size_t)b->len);
        if (st) {
            char text[300];
            snprintf(text, sizeof text, "the target could not read its memory: %s", tcpx_last_error());
            TCPX_WARN("peer %s: read %llu: %s", p->name, (unsigned long long)p->list.id, text);
            ctrl_send_nack(p, p->list.id, TCPX_ERR_PEER, text);
            return TCPX_OK;
        }
        pos += (size_t)b->len;
    }
    tcpx_msg d = {.type = TCPX_MSG_READ_DATA};
    d.u.read_data.id = p->list.id;
    d.u.read_data.total = total;
    d.u.read_data.chunk = 1;
    d.u.read_data.first_channel = 0;
    d.u.read_data.flags = TCPX_READ_INLINE;
    d.payload = buf;
    d.payload_len = (uint32_t)pos;
    ctrl_send(p, &d); /* a failure fails the peer in the engine */
    return TCPX_OK;
}

static tcpx_status serve_read(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    uint64_t total = p->list.hdr.u.read_req.total;
    tcpx_status st = check_total(p, total);
    if (st) return st;
    char why[256];
    tcpx_region **regions = check_blocks(p, why, sizeof why, &st);
    if (st) return st;
    if (!regions) {
        TCPX_INFO("peer %s: refused read %llu: %s", p->name, (unsigned long long)p->list.id, why);
        ctrl_send_nack(p, p->list.id, TCPX_ERR_ACCESS, why);
        return TCPX_OK;
    }
    if (total <= TCPX_INLINE_MAX) {
        st = read_answer_inline(p, total, regions);
        free(regions);
        return st;
    }
    tcpx_op *op;
    st = target_op(p, OP_READ_IN, total, regions, &op);
    free(regions);
    if (st) return st;
    size_t chunk = min_size(s->cfg.chunk_bytes, p->remote_max_chunk);
    uint16_t first = (uint16_t)(p->next_first_channel++ % (unsigned)p->ntx);
    tcpx_msg d = {.type = TCPX_MSG_READ_DATA};
    d.u.read_data.id = op->remote_id;
    d.u.read_data.total = op->size;
    d.u.read_data.chunk = (uint32_t)chunk;
    d.u.read_data.first_channel = first;
    if (ctrl_send(p, &d)) return TCPX_OK; /* the engine fails the peer */
    st = enqueue_chunks(s, op, p->tx, p->ntx, chunk, first, 1);
    if (!st && op->nchunks == 0) read_in_done(op);
    return st;
}

tcpx_status onesided_on_write(tcpx_peer *p, const tcpx_msg *m)
{
    int whole = 0;
    tcpx_status st = list_piece(p, m, m->u.write.id, m->u.write.nblocks, m->u.write.first, m->u.write.flags, &whole);
    if (st || !whole) return st;
    st = serve_write(p, m->u.write.flags);
    list_clear(p);
    return st;
}

tcpx_status onesided_on_read_req(tcpx_peer *p, const tcpx_msg *m)
{
    int whole = 0;
    tcpx_status st =
        list_piece(p, m, m->u.read_req.id, m->u.read_req.nblocks, m->u.read_req.first, m->u.read_req.flags, &whole);
    if (st || !whole) return st;
    st = serve_read(p);
    list_clear(p);
    return st;
}
