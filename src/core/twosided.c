/* twosided.c - tag-matched sends and receives: the RTS/CTS/DATA/ACK state
 * machine of proto.h: matching, and what sends and receives do on each message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"

/* A receive leaves the posted queue when it finishes, however it ends. */
static void recv_finish(tcpx_op *op) { tagmap_unlink(&op->p->posted, &op->ql); }

/* A send leaves the queue of sends waiting for credit. */
static void send_finish(tcpx_op *op) { credit_forget(op); }

/* Every chunk of a send or receive retired. A receive then has every byte
 * in place: done, and the sender is told. A send is done once the receiver
 * also said so (its ACK may come first). */
static void recv_chunks_done(tcpx_op *op)
{
    tcpx_msg ack = {.type = TCPX_MSG_ACK};
    ack.u.ack.id = op->remote_id;
    tcpx_peer *p = op->p;
    op_complete(op);
    ctrl_send(p, &ack);
}

static void send_chunks_done(tcpx_op *op)
{
    if (op->verdict) op_fail(op, op->verdict, "%s", op->verdict_msg ? op->verdict_msg : "refused");
    else if (op->acked) op_complete(op);
}

static void twosided_announce(tcpx_op *op);

/* The first answer to op's RTS came: its credit returns, and the sends
 * waiting for credit that now fit are announced, oldest first. */
static void give_back_credit(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    if (!credit_return(op)) return;
    for (tcpx_op *w; (w = credit_next(p));) twosided_announce(w);
}

/* The receiver has every byte (inline: it has the message; a withdrawn
 * inline send that was matched first is delivered). */
static tcpx_status send_acked(tcpx_op *op)
{
    int inline_wait = (op->state == OPS_RTS_SENT || op->state == OPS_CANCELLING) && op->size <= TCPX_INLINE_MAX;
    if (op->state != OPS_DATA && !inline_wait)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "ACK for send %llu in the wrong state", (unsigned long long)op->id);
    if (inline_wait) give_back_credit(op);
    op->acked = 1;
    if (inline_wait || op->chunks_done == op->nchunks) op_complete(op);
    return TCPX_OK;
}

/* Refused (size mismatch, withdrawn, the receiver failed) before the bytes
 * move; or, a send whose bytes moved, a data digest that did not match
 * there: it fails once its own chunks are out (op.c digest_failed). */
static tcpx_status twosided_nacked(tcpx_op *op, tcpx_status st, const char *text)
{
    if (op->state == OPS_DATA) {
        if (op->kind != OP_SEND || op->verdict || op->acked || !op->p->ddgst)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "NACK for operation %llu while its bytes move",
                                  (unsigned long long)op->id);
        char msg[320];
        snprintf(msg, sizeof msg, "peer %s: %s", op->p->name, text);
        op->verdict = st;
        op->verdict_msg = strdup(msg);
        if (op->chunks_done == op->nchunks) send_chunks_done(op);
        return TCPX_OK;
    }
    give_back_credit(op);
    op_fail(op, st, "peer %s: %s", op->p->name, text);
    return TCPX_OK;
}

static const tcpx_op_hooks send_hooks = {
    .chunks_done = send_chunks_done, .finish = send_finish, .acked = send_acked, .nacked = twosided_nacked};
static const tcpx_op_hooks recv_hooks = {
    .chunks_done = recv_chunks_done, .finish = recv_finish, .nacked = twosided_nacked};

/* ------------------------------------------------------------ matching */

/* A receive meets the RTS it matches. */
static void match(tcpx_peer *p, tcpx_op *recv, uint64_t send_id, uint64_t size, const uint8_t *data, int is_inline)
{
    tagmap_unlink(&p->posted, &recv->ql);
    if (size != recv->size) {
        char text[200];
        snprintf(text, sizeof text, "size mismatch for tag %llu: %llu bytes sent, receive posted for %zu bytes",
                 (unsigned long long)recv->tag, (unsigned long long)size, recv->size);
        op_fail(recv, TCPX_ERR_PROTOCOL, "peer %s: %s", p->name, text);
        ctrl_send_nack(p, send_id, TCPX_ERR_PROTOCOL, text);
        return;
    }
    if (is_inline) {
        if (op_copy(p->s, recv, recv->ptr, data, size)) {
            char text[300];
            snprintf(text, sizeof text, "receiver could not store the message: %s", tcpx_last_error());
            op_fail(recv, TCPX_ERR_CUDA, "%s", text);
            ctrl_send_nack(p, send_id, TCPX_ERR_PEER, text);
            return;
        }
        op_complete(recv);
        tcpx_msg ack = {.type = TCPX_MSG_ACK};
        ack.u.ack.id = send_id;
        ctrl_send(p, &ack);
        return;
    }
    recv->remote_id = send_id;
    recv->state = OPS_MATCHED;
    tcpx_msg cts = {.type = TCPX_MSG_CTS};
    cts.u.cts.send_id = send_id;
    cts.u.cts.recv_id = recv->id;
    cts.u.cts.max_chunk = (uint32_t)p->s->cfg.chunk_bytes;
    ctrl_send(p, &cts);
}

tcpx_status twosided_on_rts(tcpx_peer *p, const tcpx_msg *m)
{
    uint64_t size = m->u.rts.size;
    int is_inline = size <= TCPX_INLINE_MAX;
    if (is_inline != (m->payload_len == size || size == 0) || (!is_inline && m->payload_len))
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "RTS of %llu bytes with %u inline", (unsigned long long)size,
                              m->payload_len);
    tcpx_qlink *l = tagmap_first(&p->posted, m->u.rts.tag);
    if (l) {
        match(p, TCPX_CONTAINER(l, tcpx_op, ql), m->u.rts.send_id, size, m->payload, is_inline);
        return TCPX_OK;
    }
    return unexpected_add(p, m, is_inline);
}

tcpx_status twosided_on_cts(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_op *op = ops_find(p, m->u.cts.send_id);
    if (op && op->kind == OP_SEND && op->state == OPS_CANCELLING) {
        give_back_credit(op);
        ctrl_send_nack(p, m->u.cts.recv_id, TCPX_ERR_PEER, "the send was withdrawn by the sender");
        op_fail(op, TCPX_ERR_PEER, "withdrawn: its transfer was released");
        return TCPX_OK;
    }
    if (!op || op->kind != OP_SEND || op->state != OPS_RTS_SENT || op->size <= TCPX_INLINE_MAX)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "CTS for send %llu that is not waiting for one",
                              (unsigned long long)m->u.cts.send_id);
    give_back_credit(op);
    tcpx_session *s = p->s;
    uint16_t first = (uint16_t)(p->next_first_channel++ % (unsigned)p->ntx);
    /* The receiver's staging slots hold its own chunk size: never exceed it. */
    size_t chunk = s->cfg.chunk_bytes < m->u.cts.max_chunk ? s->cfg.chunk_bytes : m->u.cts.max_chunk;
    op->remote_id = m->u.cts.recv_id;
    op->state = OPS_DATA;
    tcpx_msg d = {.type = TCPX_MSG_DATA};
    d.u.data.recv_id = op->remote_id;
    d.u.data.size = op->size;
    d.u.data.chunk = (uint32_t)chunk;
    d.u.data.first_channel = first;
    if (ctrl_send(p, &d)) return TCPX_OK;
    return enqueue_chunks(s, op, p->tx, p->ntx, chunk, first, 1);
}

tcpx_status twosided_on_data(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_op *op = ops_find(p, m->u.data.recv_id);
    if (!op || op->kind != OP_RECV || op->state != OPS_MATCHED || op->size != m->u.data.size ||
        m->u.data.first_channel >= p->nrx || m->u.data.chunk > p->s->cfg.chunk_bytes)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "DATA for receive %llu that is not waiting for it",
                              (unsigned long long)m->u.data.recv_id);
    op->state = OPS_DATA;
    return enqueue_chunks(p->s, op, p->rx, p->nrx, m->u.data.chunk, m->u.data.first_channel, 0);
}

/* Not matched yet: drop it and confirm. Matched: the CTS or ACK already on
 * its way tells the sender. */
tcpx_status twosided_on_cancel(tcpx_peer *p, const tcpx_msg *m)
{
    tcpx_unexpected *u = unexpected_take_id(p, m->u.cancel.send_id);
    if (u) {
        unexpected_free(u);
        ctrl_send_nack(p, m->u.cancel.send_id, TCPX_ERR_PEER, "withdrawn by the sender before it was matched");
    }
    return TCPX_OK;
}

/* ------------------------------------------------------------ posting */

static void twosided_announce(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    tcpx_msg m = {.type = TCPX_MSG_RTS};
    m.u.rts.send_id = op->id;
    m.u.rts.tag = op->tag;
    m.u.rts.size = op->size;
    uint8_t inline_buf[TCPX_INLINE_MAX];
    if (op->size <= TCPX_INLINE_MAX) {
        tcpx_status st = op_copy(p->s, op, inline_buf, op->ptr, op->size);
        if (st) {
            op_fail(op, st, "reading the message: %s", tcpx_last_error());
            return;
        }
        m.payload = inline_buf;
        m.payload_len = (uint32_t)op->size;
    }
    op->state = OPS_RTS_SENT;
    credit_take(op);
    ctrl_send(p, &m);
}

tcpx_status op_start(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    op->hooks = op->kind == OP_SEND ? &send_hooks : &recv_hooks;
    ops_add(p, op);
    if (op->kind == OP_SEND) {
        if (credit_post(op)) twosided_announce(op);
        return TCPX_OK;
    }
    op->state = OPS_POSTED;
    tcpx_unexpected *u = unexpected_take_tag(p, op->tag);
    if (u) {
        match(p, op, u->il.id, u->size, u->data, u->is_inline);
        unexpected_free(u);
        return TCPX_OK;
    }
    tcpx_status st = tagmap_push(&p->posted, op->tag, &op->ql);
    if (st) op_fail(op, st, "%s", tcpx_last_error());
    return st;
}

/* Withdraw an op whose bytes have not started moving. A receive, and a send
 * still waiting for credit (never announced), go at once; an announced send asks the receiver and stays CANCELLING until its
 * verdict arrives (NACK: dropped; CTS: refused by us; ACK: it was delivered). */
void op_withdraw(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    if (op->kind == OP_SEND && op->state == OPS_RTS_SENT && p->state == PEER_READY) {
        tcpx_msg m = {.type = TCPX_MSG_CANCEL};
        m.u.cancel.send_id = op->id;
        op->state = OPS_CANCELLING;
        /* A withdrawn send never reads its memory again (a CTS is refused). */
        op_release_regions(op);
        ctrl_send(p, &m);
        return;
    }
    op_fail(op, TCPX_ERR_PEER, "withdrawn: its transfer was released");
}
