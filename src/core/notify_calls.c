/* notify_calls.c - the public notification calls: send one to a peer (an
 * op of its own, detached: its ACK or NACK ends it) and poll the inbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

static tcpx_status notif_acked(tcpx_op *op)
{
    op_complete(op);
    return TCPX_OK;
}

/* A refusal is logged; a flood of them (a full inbox refuses every one) at
 * most once a second per peer, with the count. */
static tcpx_status notif_nacked(tcpx_op *op, tcpx_status st, const char *text)
{
    tcpx_peer *p = op->p;
    unsigned long long n = tcpx_log_due(&p->notif_refused_log);
    if (n == 1) TCPX_WARN("notification to %s refused: %s", p->name, text);
    else if (n) TCPX_WARN("%llu notifications to %s refused in the last second or so: %s", n, p->name, text);
    op_fail(op, st, "peer %s: %s", op->p->name, text);
    return TCPX_OK;
}

static const tcpx_op_hooks notif_hooks = {.acked = notif_acked, .nacked = notif_nacked};

tcpx_status tcpx_notify_send(tcpx_session *s, const char *peer, const void *msg, size_t len)
{
    if (!s || !peer || (len && !msg)) return tcpx_set_error(TCPX_ERR_INVALID, "notify_send: NULL argument");
    if (len > TCPX_NOTIF_MAX)
        return tcpx_set_error(TCPX_ERR_INVALID, "notify_send: %zu bytes, at most %d", len, TCPX_NOTIF_MAX);
    sess_lock(s);
    tcpx_peer *p = peer_find(s, peer);
    tcpx_status st = !p ? tcpx_set_error(TCPX_ERR_NOT_FOUND, "notify_send: unknown peer %s", peer)
                   : p->state == PEER_FAILED ? tcpx_set_error(p->err, "notify_send: peer %s: %s", peer, p->errmsg)
                   : p->state != PEER_READY ? tcpx_set_error(TCPX_ERR_PEER, "notify_send: peer %s is not connected", peer)
                                            : TCPX_OK;
    tcpx_op *op = st ? NULL : calloc(1, sizeof *op);
    if (!st && !op) st = tcpx_set_error(TCPX_ERR_NOMEM, "notify_send: allocation failed");
    if (!st) {
        /* Detached from the start: its ACK or NACK ends it. */
        op->id = s->next_op_id++;
        op->kind = OP_NOTIF;
        op->p = p;
        op->hooks = &notif_hooks;
        op->state = OPS_NOTIFYING;
        p->refs++;
        ops_add(p, op);
        tcpx_msg m = {.type = TCPX_MSG_NOTIF};
        m.u.notif.id = op->id;
        m.payload = msg;
        m.payload_len = (uint32_t)len;
        if (ctrl_send(p, &m)) {
            op_fail(op, TCPX_ERR_PEER, "not sent");
            st = tcpx_set_error(TCPX_ERR_PEER, "notify_send: peer %s: the control stream failed", peer);
        }
        sess_progress_locked(s);
    }
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_notify_poll(tcpx_session *s, char *peer, size_t peer_cap, void *buf, size_t cap, size_t *len)
{
    if (!s || !peer || !len || (cap && !buf)) return tcpx_set_error(TCPX_ERR_INVALID, "notify_poll: NULL argument");
    sess_lock(s);
    sess_poll_locked(s);
    tcpx_notif *n = s->inbox_head;
    tcpx_status st = TCPX_IN_PROGRESS;
    if (n) {
        *len = n->len;
        if (n->len > cap || strlen(n->peer) >= peer_cap) {
            st = tcpx_set_error(TCPX_ERR_INVALID, "notify_poll: the next notification has %zu bytes from \"%s\"; "
                                "buffers of %zu bytes and %zu characters are too small", n->len, n->peer, cap,
                                peer_cap);
        } else {
            if (n->len) memcpy(buf, n->data, n->len);
            memcpy(peer, n->peer, strlen(n->peer) + 1);
            notify_pop(s);
            st = TCPX_OK;
        }
    }
    sess_unlock(s);
    return st;
}
