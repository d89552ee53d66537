/* op.c - user operations: the peer's table of live ops by id, completion and
 * failure, and chunk counting. What an op of each kind does when its chunks
 * are all in, or when it leaves, is the kind's hooks (op->hooks), set by the
 * file that starts it; this file calls nothing kind-specific by name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

void ops_add(tcpx_peer *p, tcpx_op *op)
{
    tcpx_op **b = &p->ops[op->id % TCPX_OP_BUCKETS];
    op->h_next = *b;
    *b = op;
    p->nops++;
}

tcpx_op *ops_find(tcpx_peer *p, uint64_t id)
{
    for (tcpx_op *op = p->ops[id % TCPX_OP_BUCKETS]; op; op = op->h_next)
        if (op->id == id) return op;
    return NULL;
}

void ops_remove(tcpx_peer *p, tcpx_op *op)
{
    for (tcpx_op **link = &p->ops[op->id % TCPX_OP_BUCKETS]; *link; link = &(*link)->h_next)
        if (*link == op) {
            *link = op->h_next;
            op->h_next = NULL;
            p->nops--;
            return;
        }
}

void op_free(tcpx_op *op)
{
    if (!op) return;
    if (op->segs != &op->seg1) free(op->segs);
    free(op->notif);
    free(op->verdict_msg);
    free(op->ddgst_msg);
    free(op->errmsg);
    free(op);
}

void op_hold_regions(tcpx_op *op)
{
    if (op->held) return;
    op->held = 1;
    for (size_t i = 0; i < op->nsegs; i++) {
        if (op->target) op->segs[i].r->rbusy++;
        else op->segs[i].r->busy++;
    }
}

void op_release_regions(tcpx_op *op)
{
    if (!op->held) return;
    op->held = 0;
    for (size_t i = 0; i < op->nsegs; i++) {
        if (op->target) op->segs[i].r->rbusy--;
        else op->segs[i].r->busy--;
    }
}

/* An op leaves the peer: no table, no queue, its region free again. A
 * released (detached) op is freed here; otherwise its transfer counts it. */
static void op_finish(tcpx_op *op)
{
    if (op->hooks && op->hooks->finish) op->hooks->finish(op);
    ops_remove(op->p, op);
    op_release_regions(op);
    if (op->x) {
        op->x->ndone++;
        if (op->status && !op->x->err) {
            op->x->err = op->status;
            snprintf(op->x->errmsg, sizeof op->x->errmsg, "%s", op->errmsg ? op->errmsg : "");
        }
    } else {
        tcpx_peer *p = op->p;
        op_free(op);
        peer_unref(p);
    }
}

void op_complete(tcpx_op *op)
{
    op->state = OPS_DONE;
    op->status = TCPX_OK;
    op_finish(op);
}

void op_fail(tcpx_op *op, tcpx_status st, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    op->state = OPS_FAILED;
    op->status = st;
    free(op->errmsg);
    op->errmsg = strdup(msg);
    TCPX_DEBUG("op %llu failed: %s: %s", (unsigned long long)op->id, tcpx_strerror(st), msg);
    op_finish(op);
}

/* A receiving op whose data digest did not match, every chunk in: it fails,
 * and the sender, waiting for our ACK, is told instead (a READ's target
 * waits for nothing). */
static void digest_failed(tcpx_op *op)
{
    if (op->kind == OP_RECV || op->kind == OP_WRITE_IN)
        ctrl_send_nack(op->p, op->remote_id, TCPX_ERR_PROTOCOL, op->ddgst_msg);
    op_fail(op, TCPX_ERR_PROTOCOL, "%s", op->ddgst_msg);
}

void op_chunk_done(tcpx_op *op)
{
    if (++op->chunks_done < op->nchunks) return;
    if (op->ddgst_msg) digest_failed(op);
    else if (op->hooks && op->hooks->chunks_done) op->hooks->chunks_done(op);
}

tcpx_status op_on_ack(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_op *op = ops_find(p, m->u.ack.id);
    if (!op || op->target || !op->hooks || !op->hooks->acked)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "ACK for operation %llu that waits for none",
                              (unsigned long long)m->u.ack.id);
    return op->hooks->acked(op);
}

tcpx_status op_on_nack(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_op *op = ops_find(p, m->u.nack.id);
    if (!op || op->target) return TCPX_OK; /* already gone */
    tcpx_status st = m->u.nack.status;
    if (st < TCPX_ERR_ACCESS) st = TCPX_ERR_PEER; /* unknown code from a newer peer */
    char text[256];
    snprintf(text, sizeof text, "%.*s", (int)(m->payload_len > 200 ? 200 : m->payload_len),
             m->payload ? (const char *)m->payload : "");
    if (op->hooks && op->hooks->nacked) return op->hooks->nacked(op, st, text);
    op_fail(op, st, "peer %s: %s", p->name, text);
    return TCPX_OK;
}
