/* peer.c - one peer: lifecycle, references, and failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

tcpx_peer *peer_find(tcpx_session *s, const char *name)
{
    for (tcpx_peer *p = s->peers; p; p = p->next)
        if (!strcmp(p->name, name)) return p;
    return NULL;
}

tcpx_peer *peer_new(tcpx_session *s, const char *name)
{
    tcpx_peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->s = s;
    p->state = PEER_IDLE;
    p->refs = 1;
    p->linked = 1;
    p->next = s->peers;
    s->peers = p;
    return p;
}

void peer_unref(tcpx_peer *p)
{
    if (--p->refs > 0) return;
    peer_close_comms(p);
    tagmap_free(&p->posted);
    free(p);
}

void peer_unlink(tcpx_session *s, tcpx_peer *p)
{
    if (!p->linked) return;
    for (tcpx_peer **link = &s->peers; *link; link = &(*link)->next)
        if (*link == p) {
            *link = p->next;
            break;
        }
    p->linked = 0;
    p->next = NULL;
    peer_unref(p);
}

/* Notifications received but not delivered: those whose write was
 * acknowledged (the initiator saw it complete) are delivered, the others
 * are the peer's; a list half arrived is the peer's. */
static void inbound_state_free(tcpx_peer *p)
{
    notify_rescue(p);
    free(p->list.blocks);
    p->list.blocks = NULL;
    p->list.type = 0;
    p->notif_for = 0;
    p->notif_op = NULL;
}

/* Close every comm of the peer. The transport stops touching buffers before
 * close returns, so after this no chunk of any op can move. */
void peer_close_comms(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    if (p->dial) {
        dial_free(s, p->dial);
        p->dial = NULL;
    }
    for (int i = 0; i < TCPX_MAX_CHANNELS; i++) {
        chan_close(s, &p->tx[i], 1);
        chan_close(s, &p->rx[i], 0);
    }
    p->ntx = p->nrx = 0;
    ctrl_close(p);
    unexpected_free_all(p); /* sends that no receive matched: the peer owns them */
    inbound_state_free(p);
}

void peer_fail(tcpx_peer *p, tcpx_status st, const char *fmt, ...)
{
    if (p->state == PEER_FAILED || p->state == PEER_CLOSED) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    p->err = st;
    int was_ready = p->state == PEER_READY;
    p->state = PEER_FAILED;
    /* A peer that goes away with nothing pending is news, not trouble. */
    if (was_ready && !p->local_close) {
        if (p->nops) TCPX_WARN("peer %s failed with %zu operations pending: %s: %s", p->name, p->nops,
                               tcpx_strerror(st), p->errmsg);
        else TCPX_INFO("peer %s is gone: %s: %s", p->name, tcpx_strerror(st), p->errmsg);
    }
    /* Close first: the transport then no longer touches any op's memory. */
    peer_close_comms(p);
    p->refs++; /* failing a detached op drops a reference */
    for (int b = 0; b < TCPX_OP_BUCKETS; b++) {
        while (p->ops[b]) op_fail(p->ops[b], st, "peer %s: %s", p->name, p->errmsg);
    }
    tagmap_free(&p->posted);   /* every receive in it failed and left */
    p->credit_used = 0;
    p->credit_used_bytes = 0;
    peer_unref(p);
}
