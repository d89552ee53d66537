/* xfer.c - the public transfer calls: create, post, test, wait, release. */
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

/* Every call on a transfer starts here: a released handle (most likely) and
 * NULL are refused with a sentence. */
static tcpx_status xfer_live(const tcpx_xfer *x)
{
    if (!x) return tcpx_set_error(TCPX_ERR_INVALID, "transfer is NULL");
    if (x->magic != TCPX_XFER_LIVE)
        return tcpx_set_error(TCPX_ERR_INVALID, "transfer %p is not live (released already?)", (const void *)x);
    return TCPX_OK;
}

/* A transfer that failed takes no more operations. */
static tcpx_status xfer_postable(const tcpx_xfer *x)
{
    if (x->err)
        return tcpx_set_error(TCPX_ERR_INVALID, "post on a transfer that already failed (%s: %s)", tcpx_strerror(x->err),
                              x->errmsg);
    return TCPX_OK;
}

static tcpx_status peer_usable(tcpx_peer *p)
{
    if (p->state == PEER_READY) return TCPX_OK;
    /* TCPX_ERR_PEER, as documented, whatever failed it (named in the text:
     * that failure reached the transfers it ended with its own status). */
    if (p->state == PEER_FAILED)
        return tcpx_set_error(TCPX_ERR_PEER, "peer %s failed (%s): %s", p->name, tcpx_strerror(p->err), p->errmsg);
    return tcpx_set_error(TCPX_ERR_PEER, "peer %s is not connected", p->name);
}

tcpx_status tcpx_xfer_create(tcpx_session *s, const char *peer, tcpx_xfer **out)
{
    if (!s || !peer || !out) return tcpx_set_error(TCPX_ERR_INVALID, "xfer_create: NULL argument");
    *out = NULL;
    sess_lock(s);
    tcpx_peer *p = peer_find(s, peer);
    tcpx_status st = !p ? tcpx_set_error(TCPX_ERR_NOT_FOUND, "xfer_create: unknown peer %s", peer) : peer_usable(p);
    tcpx_xfer *x = NULL;
    if (!st && !(x = calloc(1, sizeof *x))) st = tcpx_set_error(TCPX_ERR_NOMEM, "transfer allocation failed");
    if (!st) {
        x->s = s;
        x->p = p;
        x->magic = TCPX_XFER_LIVE;
        p->refs++;
        *out = x;
    }
    sess_unlock(s);
    return st;
}

static tcpx_status post(tcpx_xfer *x, int kind, size_t n, const tcpx_mem_id *mems, const size_t *offs,
                        const size_t *sizes, const uint64_t *tags)
{
    tcpx_status st = xfer_live(x);
    if (st) return st;
    if (n && (!mems || !offs || !sizes || !tags)) return tcpx_set_error(TCPX_ERR_INVALID, "post: NULL argument");
    tcpx_session *s = x->s;
    sess_lock(s);
    st = xfer_postable(x);
    if (!st) st = peer_usable(x->p);
    tcpx_op **ops = NULL;
    if (!st && n && !(ops = calloc(n, sizeof *ops))) st = tcpx_set_error(TCPX_ERR_NOMEM, "post: allocation failed");
    /* Validate everything before posting anything. */
    for (size_t i = 0; i < n && !st; i++) {
        tcpx_region *r = mem_find(s, mems[i]);
        if (!r) {
            st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "post #%zu: memory id %llu is not registered", i,
                                (unsigned long long)mems[i]);
        } else if (offs[i] > r->size || sizes[i] > r->size - offs[i]) {
            st = tcpx_set_error(TCPX_ERR_INVALID, "post #%zu: range [%zu, +%zu) outside the %zu-byte registration %llu",
                                i, offs[i], sizes[i], r->size, (unsigned long long)r->id);
        } else if (!(ops[i] = calloc(1, sizeof **ops))) {
            st = tcpx_set_error(TCPX_ERR_NOMEM, "post: allocation failed");
        } else {
            ops[i]->r = r;
        }
    }
    /* Take in what the peer already sent (a CANCEL must be seen before a new
     * receive can match the send it withdraws). That round may fail the
     * peer: then nothing is posted (an op started on a failed peer would
     * never finish). */
    if (!st && kind == OP_RECV) {
        sess_progress_locked(s);
        st = peer_usable(x->p);
    }
    if (st) {
        for (size_t i = 0; ops && i < n; i++) op_free(ops[i]);
        free(ops);
        sess_unlock(s);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        tcpx_op *op = ops[i];
        op->id = s->next_op_id++;
        op->kind = kind;
        op->x = x;
        op->p = x->p;
        op->ptr = op->r->ptr + offs[i];
        op->size = sizes[i];
        op->tag = tags[i];
        op->seg1 = (tcpx_seg){op->ptr, op->size, op->r};
        op->segs = &op->seg1;
        op->nsegs = 1;
        op_hold_regions(op);
        if (x->ops_tail) x->ops_tail->x_next = op;
        else x->ops = op;
        x->ops_tail = op;
        x->nops++;
        op_start(op);
    }
    free(ops);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += sizes[i];
    sess_push_locked(s, x->p, bytes, n);
    sess_unlock(s);
    return TCPX_OK;
}

tcpx_status tcpx_xfer_post_send(tcpx_xfer *x, tcpx_mem_id mem, size_t offset, size_t size, uint64_t tag)
{
    return post(x, OP_SEND, 1, &mem, &offset, &size, &tag);
}

tcpx_status tcpx_xfer_post_recv(tcpx_xfer *x, tcpx_mem_id mem, size_t offset, size_t size, uint64_t tag)
{
    return post(x, OP_RECV, 1, &mem, &offset, &size, &tag);
}

tcpx_status tcpx_xfer_post_send_batch(tcpx_xfer *x, size_t n, const tcpx_mem_id *mems, const size_t *offsets,
                                      const size_t *sizes, const uint64_t *tags)
{
    return post(x, OP_SEND, n, mems, offsets, sizes, tags);
}

tcpx_status tcpx_xfer_post_recv_batch(tcpx_xfer *x, size_t n, const tcpx_mem_id *mems, const size_t *offsets,
                                      const size_t *sizes, const uint64_t *tags)
{
    return post(x, OP_RECV, n, mems, offsets, sizes, tags);
}

/* Validate block i; on success fill its piece and wire entry (size > 0). */
static tcpx_status check_block(tcpx_session *s, size_t i, const tcpx_block *b, tcpx_seg *seg, tcpx_wire_block *w)
{
    tcpx_region *r = mem_find(s, b->local);
    if (!r)
        return tcpx_set_error(TCPX_ERR_NOT_FOUND, "block %zu: local memory id %llu is not registered", i,
                              (unsigned long long)b->local);
    if (b->local_offset > r->size || b->size > r->size - b->local_offset)
        return tcpx_set_error(TCPX_ERR_INVALID, "block %zu: local range [%zu, +%zu) outside the %zu-byte registration %llu",
                              i, b->local_offset, b->size, r->size, (unsigned long long)r->id);
    if (!b->remote) return tcpx_set_error(TCPX_ERR_INVALID, "block %zu: NULL remote descriptor", i);
    if (b->remote_offset > b->remote->size || b->size > b->remote->size - b->remote_offset)
        return tcpx_set_error(TCPX_ERR_INVALID,
                              "block %zu: remote range [%llu, +%zu) outside the %llu bytes of its descriptor (id %llu)",
                              i, (unsigned long long)b->remote_offset, b->size, (unsigned long long)b->remote->size,
                              (unsigned long long)b->remote->id);
    *seg = (tcpx_seg){r->ptr + b->local_offset, b->size, r};
    *w = (tcpx_wire_block){b->remote->id, b->remote->key, b->remote_offset, b->size};
    return TCPX_OK;
}

/* A one-sided list: every block checked, then one op (zero-size blocks left
 * out of its pieces and of the list on the wire). */
static tcpx_status post_list(tcpx_xfer *x, int kind, size_t n, const tcpx_block *blocks, const tcpx_notif_msg *nm)
{
    const char *what = kind == OP_WRITE ? "post_write" : "post_read";
    tcpx_status live = xfer_live(x);
    if (live) return live;
    if (n && !blocks) return tcpx_set_error(TCPX_ERR_INVALID, "%s: NULL argument", what);
    if (n > TCPX_LIST_MAX_BLOCKS)
        return tcpx_set_error(TCPX_ERR_INVALID, "%s: %zu blocks, at most %d in one list", what, n, TCPX_LIST_MAX_BLOCKS);
    if (nm && (nm->len > TCPX_NOTIF_MAX || (nm->len && !nm->data)))
        return tcpx_set_error(TCPX_ERR_INVALID, "%s: notification of %zu bytes (at most %d, data not NULL)", what,
                              nm->len, TCPX_NOTIF_MAX);
    tcpx_session *s = x->s;
    tcpx_op *op = calloc(1, sizeof *op);
    tcpx_wire_block *wire = malloc((n ? n : 1) * sizeof *wire);
    if (op) op->segs = malloc((n ? n : 1) * sizeof *op->segs);
    if (op && nm) op->notif = malloc(nm->len ? nm->len : 1);
    if (!op || !wire || !op->segs || (nm && !op->notif)) {
        op_free(op);
        free(wire);
        return tcpx_set_error(TCPX_ERR_NOMEM, "%s: allocation failed", what);
    }
    sess_lock(s);
    tcpx_status st = xfer_postable(x);
    if (!st) st = peer_usable(x->p);
    size_t total = 0;
    for (size_t i = 0; i < n && !st; i++) {
        st = check_block(s, i, &blocks[i], &op->segs[op->nsegs], &wire[op->nsegs]);
        if (!st && blocks[i].size > SIZE_MAX - total)
            st = tcpx_set_error(TCPX_ERR_INVALID, "%s: the blocks add up to more than %zu bytes", what, SIZE_MAX);
        if (!st && blocks[i].size) {
            total += blocks[i].size;
            op->nsegs++;
        }
    }
    if (st) {
        sess_unlock(s);
        op_free(op);
        free(wire);
        return st;
    }
    op->id = s->next_op_id++;
    op->kind = kind;
    op->x = x;
    op->p = x->p;
    op->size = total;
    if (nm) {
        op->has_notif = 1;
        op->notif_len = nm->len;
        if (nm->len) memcpy(op->notif, nm->data, nm->len);
    }
    op_hold_regions(op);
    if (x->ops_tail) x->ops_tail->x_next = op;
    else x->ops = op;
    x->ops_tail = op;
    x->nops++;
    if (onesided_start(op, wire, (uint32_t)op->nsegs) && op->state != OPS_FAILED)
        op_fail(op, TCPX_ERR_PEER, "peer %s: %s", x->p->name, tcpx_last_error());
    free(wire);
    sess_push_locked(s, x->p, total, 1);
    sess_unlock(s);
    return TCPX_OK;
}

tcpx_status tcpx_xfer_post_write_list(tcpx_xfer *x, size_t n, const tcpx_block *blocks, const tcpx_notif_msg *notif)
{
    return post_list(x, OP_WRITE, n, blocks, notif);
}

tcpx_status tcpx_xfer_post_read_list(tcpx_xfer *x, size_t n, const tcpx_block *blocks, const tcpx_notif_msg *notif)
{
    return post_list(x, OP_READ, n, blocks, notif);
}

tcpx_status tcpx_xfer_post_write(tcpx_xfer *x, tcpx_mem_id local, size_t local_offset, const tcpx_memdesc *remote,
                                 uint64_t remote_offset, size_t size)
{
    tcpx_block b = {local, local_offset, remote, remote_offset, size};
    return post_list(x, OP_WRITE, 1, &b, NULL);
}

tcpx_status tcpx_xfer_post_read(tcpx_xfer *x, tcpx_mem_id local, size_t local_offset, const tcpx_memdesc *remote,
                                uint64_t remote_offset, size_t size)
{
    tcpx_block b = {local, local_offset, remote, remote_offset, size};
    return post_list(x, OP_READ, 1, &b, NULL);
}

static int moving(const tcpx_xfer *x)
{
    for (const tcpx_op *op = x->ops; op; op = op->x_next)
        if (op->state == OPS_MATCHED || op->state == OPS_DATA || op->state == OPS_REQ_SENT) return 1;
    return 0;
}

static tcpx_status xfer_state(tcpx_xfer *x)
{
    if (x->err) return tcpx_set_error(x->err, "%s", x->errmsg);
    return x->ndone == x->nops ? TCPX_OK : TCPX_IN_PROGRESS;
}

tcpx_status tcpx_xfer_test(tcpx_xfer *x)
{
    tcpx_status live = xfer_live(x);
    if (live) return live;
    sess_lock(x->s);
    sess_poll_locked(x->s);
    tcpx_status st = xfer_state(x);
    sess_unlock(x->s);
    /* Callers poll this in a loop (NIXL's getXferStatus): let the threads
     * that move the data run (measured on 2 cores: 4 KiB WRITEs 322 -> 211 us). */
    if (st == TCPX_IN_PROGRESS) sched_yield();
    return st;
}

/* Transfers up to this size are polled for before a wait sleeps; a larger
 * one takes long enough that a wake-up is noise, and a spinning caller
 * would take CPU from the threads moving its bytes. */
#define SPIN_MAX_BYTES (256u * 1024)

/* Progress until every op of x has finished, one failed, or the deadline
 * passes (then TCPX_IN_PROGRESS: a transfer that failed with
 * TCPX_ERR_TIMEOUT, its peer stalled, keeps its own sentence). For a small transfer the caller first polls for wait_spin_ns
 * (each round reads what has arrived on the sockets itself), letting go of
 * the session between rounds; an answer that comes that soon then costs no
 * sleep and wake-up of two threads. After that it sleeps until a
 * completion wakes it. */
static tcpx_status wait_locked(tcpx_xfer *x, uint64_t deadline)
{
    /* A transfer already done costs no round (a round's flush would send
     * the small posts made since one by one: sess_push_locked). */
    tcpx_status done = xfer_state(x);
    if (done != TCPX_IN_PROGRESS) return done;
    tcpx_session *s = x->s;
    size_t bytes = 0;
    for (const tcpx_op *op = x->ops; op; op = op->x_next) bytes += op->size;
    uint64_t spin_end = bytes <= SPIN_MAX_BYTES ? tcpx_now_ns() + s->wait_spin_ns : 0;
    unsigned spins = 0;
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        sess_progress_locked(s);
        tcpx_status st = xfer_state(x);
        if (st != TCPX_IN_PROGRESS) return st;
        if (tcpx_past(deadline)) return TCPX_IN_PROGRESS;
        if (tcpx_now_ns() < spin_end) {
            /* Let other threads at the session; now and then at the CPU. */
            sess_unlock(s);
            if (++spins % 8 == 0) sched_yield();
            sess_lock(s);
            continue;
        }
        sess_nap_locked(s, seen, deadline);
    }
}

tcpx_status tcpx_xfer_wait(tcpx_xfer *x, int timeout_ms)
{
    tcpx_status live = xfer_live(x);
    if (live) return live;
    if (timeout_ms == 0) return tcpx_xfer_test(x);
    sess_lock(x->s);
    tcpx_status st = wait_locked(x, tcpx_deadline_ms(timeout_ms));
    size_t ndone = x->ndone, nops = x->nops; /* (read under the lock: the engine thread moves them) */
    sess_unlock(x->s);
    if (st == TCPX_IN_PROGRESS)
        return tcpx_set_error(TCPX_ERR_TIMEOUT, "transfer not complete after %d ms (%zu of %zu operations done)",
                              timeout_ms, ndone, nops);
    return st;
}

static int settled(const tcpx_xfer *x)
{
    for (const tcpx_op *op = x->ops; op; op = op->x_next)
        if (op->state != OPS_DONE && op->state != OPS_FAILED) return 0;
    return 1;
}

/* Withdraw what has not started moving, let what moves finish (bounded),
 * and put the withdrawals on the wire. */
static void unwind_locked(tcpx_xfer *x)
{
    tcpx_session *s = x->s;
    sess_progress_locked(s);
    /* A READ has started moving: its data may be on the way. */
    for (tcpx_op *op = x->ops; op; op = op->x_next)
        if (op->state == OPS_POSTED || op->state == OPS_RTS_SENT || op->state == OPS_CREDIT_WAIT) op_withdraw(op);
    /* Operations whose bytes move must finish (bounded) before their memory
     * may be reused. */
    uint64_t deadline = tcpx_deadline_ms(s->cfg.peer_timeout_ms);
    while (moving(x)) {
        if (tcpx_past(deadline)) {
            TCPX_WARN("release: transfer to %s still moving after %d ms; closing the connection", x->p->name,
                      s->cfg.peer_timeout_ms);
            peer_fail(x->p, TCPX_ERR_TIMEOUT, "a released transfer did not finish within %d ms",
                      s->cfg.peer_timeout_ms);
            break;
        }
        uint64_t seen = sess_wake_seq(s);
        sess_progress_locked(s);
        if (!moving(x)) break;
        sess_nap_locked(s, seen, deadline);
    }
    sess_progress_locked(s);
}

void tcpx_xfer_release(tcpx_xfer *x)
{
    if (!x) return;
    if (xfer_live(x)) {
        TCPX_ERROR("tcpx_xfer_release: %s", tcpx_last_error());
        return;
    }
    tcpx_session *s = x->s;
    sess_lock(s);
    /* A finished transfer (the common case) costs no progress round. */
    if (!settled(x)) unwind_locked(x);
    /* Withdrawn sends and sent notifications wait for the peer's verdict on
     * their own; they no longer touch the caller's memory. */
    while (x->ops) {
        tcpx_op *op = x->ops;
        x->ops = op->x_next;
        if (op->state == OPS_CANCELLING || op->state == OPS_NOTIFYING) {
            op->x = NULL;
            op->p->refs++;
            continue;
        }
        op_free(op);
    }
    peer_unref(x->p);
    x->magic = TCPX_XFER_DEAD;
    sess_unlock(s);
    free(x);
}
