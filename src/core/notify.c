/* notify.c - notifications: the NOTIF handler, each peer's queue of those
 * received but not yet deliverable, the session's inbox, and the public
 * send and poll calls.
 *
 * Order: a peer's notifications are delivered in the order they arrived; one
 * attached to a write waits in its peer's queue until the write's bytes are
 * in place (onesided.c marks it ready), one sent alone (after a READ, say)
 * until this side has finished sending the peer's READs, and later ones
 * wait behind them.
 * Bound: every notification held, queued or in the inbox, counts against
 * TCPX_INBOX_MAX_COUNT / _BYTES; past that the sender is answered NACK
 * (TCPX_ERR_NOMEM) and nothing is kept. The public calls are in
 * notify_calls.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

static tcpx_notif *notif_new(tcpx_session *s, const tcpx_peer *p, const uint8_t *data, size_t len)
{
    if (s->inbox_count >= TCPX_INBOX_MAX_COUNT || len > TCPX_INBOX_MAX_BYTES - s->inbox_bytes) return NULL;
    tcpx_notif *n = malloc(sizeof *n + (len ? len : 1));
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    snprintf(n->peer, sizeof n->peer, "%s", p->name);
    n->len = len;
    if (len) memcpy(n->data, data, len);
    s->inbox_count++;
    s->inbox_bytes += len;
    return n;
}

static void notif_free(tcpx_session *s, tcpx_notif *n)
{
    s->inbox_count--;
    s->inbox_bytes -= n->len;
    free(n);
}

static void queue_append(tcpx_peer *p, tcpx_notif *n)
{
    n->next = NULL;
    if (p->nq_tail) p->nq_tail->next = n;
    else p->nq_head = n;
    p->nq_tail = n;
}

void notify_mark_ready(tcpx_notif *n) { n->ready = 1; }

void notify_flush(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    while (p->nq_head && p->nq_head->ready) {
        tcpx_notif *n = p->nq_head;
        p->nq_head = n->next;
        if (!p->nq_head) p->nq_tail = NULL;
        n->next = NULL;
        if (s->inbox_tail) s->inbox_tail->next = n;
        else s->inbox_head = n;
        s->inbox_tail = n;
        if (n->ack_id) {
            tcpx_msg ack = {.type = TCPX_MSG_ACK};
            ack.u.ack.id = n->ack_id;
            ctrl_send(p, &ack);
        }
    }
}

void notify_rescue(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    while (p->nq_head) {
        tcpx_notif *n = p->nq_head;
        p->nq_head = n->next;
        n->next = NULL;
        if (!n->ready) {
            notif_free(s, n);
            continue;
        }
        if (s->inbox_tail) s->inbox_tail->next = n;
        else s->inbox_head = n;
        s->inbox_tail = n;
    }
    p->nq_tail = NULL;
}

void notify_reads_done(tcpx_peer *p)
{
    for (tcpx_notif *q = p->nq_head; q; q = q->next)
        if (q->after_reads) q->after_reads = 0, q->ready = 1;
    notify_flush(p);
}

void notify_drop(tcpx_peer *p, tcpx_notif *n)
{
    tcpx_notif *prev = NULL;
    for (tcpx_notif *q = p->nq_head; q; prev = q, q = q->next) {
        if (q != n) continue;
        if (prev) prev->next = q->next;
        else p->nq_head = q->next;
        if (p->nq_tail == q) p->nq_tail = prev;
        notif_free(p->s, q);
        break;
    }
    notify_flush(p); /* what waited behind it */
}

static void refuse(tcpx_peer *p, uint64_t id)
{
    char text[160];
    snprintf(text, sizeof text, "the notification inbox of session %s is full (%zu notifications, %zu bytes not polled)",
             p->s->cfg.name, p->s->inbox_count, p->s->inbox_bytes);
    unsigned long long n = tcpx_log_due(&p->inbox_full_log);
    if (n == 1) TCPX_WARN("peer %s: %s", p->name, text);
    else if (n) TCPX_WARN("peer %s: %llu notifications refused in the last second or so: %s", p->name, n, text);
    ctrl_send_nack(p, id, TCPX_ERR_NOMEM, text);
}

tcpx_status notify_on_notif(tcpx_peer *p, const tcpx_msg *m)
{
    uint64_t id = m->u.notif.id;
    if (m->u.notif.flags & TCPX_NOTIF_ATTACHED) {
        if (!p->notif_for || id != p->notif_for)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "NOTIF attached to write %llu, which announced none",
                                  (unsigned long long)id);
        tcpx_op *op = p->notif_op;
        p->notif_for = 0;
        p->notif_op = NULL;
        if (!op || op->drain) return TCPX_OK; /* the write was refused: so is its notification */
        tcpx_notif *n = notif_new(p->s, p, m->payload, m->payload_len);
        op->notif_wait = 0;
        if (!n) {
            op->no_ack = 1; /* the NACK answers the write */
            refuse(p, op->remote_id);
        } else {
            queue_append(p, n);
            op->nq = n;
        }
        op_recheck(op);
        return TCPX_OK;
    }
    tcpx_notif *n = notif_new(p->s, p, m->payload, m->payload_len);
    if (!n) {
        refuse(p, id);
        return TCPX_OK;
    }
    /* One that follows a READ means "done with your blocks": it waits until
     * this side's sending of the peer's READs has finished too, so that the
     * blocks are free to change when it arrives. */
    n->ack_id = id;
    n->after_reads = p->reads_in > 0;
    n->ready = !n->after_reads;
    queue_append(p, n);
    notify_flush(p);
    return TCPX_OK;
}

void notify_pop(tcpx_session *s)
{
    tcpx_notif *n = s->inbox_head;
    if (!n) return;
    s->inbox_head = n->next;
    if (!s->inbox_head) s->inbox_tail = NULL;
    notif_free(s, n);
}

void notify_free_inbox(tcpx_session *s)
{
    while (s->inbox_head) {
        tcpx_notif *n = s->inbox_head;
        s->inbox_head = n->next;
        notif_free(s, n);
    }
    s->inbox_tail = NULL;
}
