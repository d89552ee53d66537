/* credit.c - the sender's half of two-sided flow control.
 *
 * A receiver holds the sends it has no receive for yet (unexpected sends);
 * its HELLO says how many it holds at most (credit_max) and how many inline
 * bytes among them (credit_max_bytes). Each RTS we send counts against that
 * budget from when it goes until its first answer comes back (CTS, ACK of an
 * inline send, or NACK): the receiver frees an unexpected send before it
 * answers, so what it holds never exceeds what we count. Sends that would
 * overspend wait here, in post order (so sends of one tag still arrive in
 * the order they were posted), and go as answers return credit. This file
 * decides and counts; twosided.c announces the sends it lets go.
 */
#include "core/core.h"

static uint64_t inline_bytes(const tcpx_op *op) { return op->size <= TCPX_INLINE_MAX ? op->size : 0; }

static int fits(const tcpx_peer *p, const tcpx_op *op)
{
    return p->credit_used < p->credit_max && p->credit_used_bytes + inline_bytes(op) <= p->credit_max_bytes;
}

void credit_take(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    op->credit = 1;
    p->credit_used++;
    p->credit_used_bytes += inline_bytes(op);
}

tcpx_op *credit_next(tcpx_peer *p)
{
    if (!p->credit_wait.head || p->state != PEER_READY) return NULL;
    tcpx_op *op = TCPX_CONTAINER(p->credit_wait.head, tcpx_op, ql);
    if (!fits(p, op)) return NULL;
    tagq_unlink(&op->ql);
    return op;
}

int credit_post(tcpx_op *op)
{
    tcpx_peer *p = op->p;
    if (!p->credit_wait.head && fits(p, op)) return 1;
    op->state = OPS_CREDIT_WAIT;
    tagq_push(&p->credit_wait, &op->ql);
    return 0;
}

int credit_return(tcpx_op *op)
{
    if (!op->credit) return 0;
    tcpx_peer *p = op->p;
    op->credit = 0;
    p->credit_used--;
    p->credit_used_bytes -= inline_bytes(op);
    return 1;
}

void credit_forget(tcpx_op *op) { tagq_unlink(&op->ql); }
