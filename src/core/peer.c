/* peer.c - one connected peer: assembling its incoming half, the control
 * stream in both directions, progress, and failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

static int ctrl_post(tcpx_peer *p, int i);

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

/* Close every comm of the peer. The transport stops touching buffers before
 * close returns, so after this no chunk of any op can move. */
void peer_close_comms(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    tcpx_net *n = s->net;
    if (p->dial) {
        dial_free(s, p->dial);
        p->dial = NULL;
    }
    for (int i = 0; i < TCPX_MAX_CHANNELS; i++) {
        chan_close(s, &p->tx[i], 1);
        chan_close(s, &p->rx[i], 0);
    }
    p->ntx = p->nrx = 0;
    if (p->ctrl_send) {
        if (p->ctrl_out_mh) n->dereg_mr(n, p->ctrl_send, p->ctrl_out_mh);
        n->close_send(n, p->ctrl_send);
    }
    if (p->ctrl_recv) {
        urx_stop(s, p->ctrl_recv, p->ctrl_urx);
        if (p->ctrl_in_mh) n->dereg_mr(n, p->ctrl_recv, p->ctrl_in_mh);
        n->close_recv(n, p->ctrl_recv);
    }
    urx_free(s, p->ctrl_urx);
    p->ctrl_urx = NULL;
    p->ctrl_send = p->ctrl_recv = p->ctrl_out_mh = p->ctrl_in_mh = NULL;
    free(p->ctrl_in_buf);
    free(p->ctrl_out_buf);
    p->ctrl_in_buf = p->ctrl_out_buf = NULL;
    memset(p->ctrl_in_req, 0, sizeof p->ctrl_in_req);
    memset(p->frame_req, 0, sizeof p->frame_req);
    p->frame_head = p->frame_tail = 0;
    free(p->outq);
    p->outq = NULL;
    p->outq_off = p->outq_len = p->outq_cap = 0;
    unexpected_free_all(p);
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
    p->posted_head = p->posted_tail = NULL;
    peer_unref(p);
}

/* Claim the inbound comms of our incoming half; READY once all are here. */
tcpx_status peer_activate(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    tcpx_net *n = s->net;
    if (!p->ctrl_recv) {
        tcpx_inbound *in;
        for (tcpx_inbound **link = &s->inbound; (in = *link) != NULL; link = &in->next) {
            if (in->identified && in->lidx == 0 && in->msg.u.hello.nonce == p->nonce &&
                in->msg.u.hello.role == p->want_role)
                break;
        }
        if (in) {
            in = inbound_take(s, 1, p->nonce, 0);
            p->ctrl_recv = in->comm;
            p->ctrl_urx = in->urx;
            p->nrx = in->msg.u.hello.channels;
            free(in->buf);
            free(in->blob);
            free(in);
        }
    }
    int missing = !p->ctrl_recv;
    for (int c = 0; c < (p->ctrl_recv ? p->nrx : TCPX_MAX_CHANNELS); c++) {
        if (p->rx[c].comm) continue;
        tcpx_inbound *in = inbound_take(s, 0, p->nonce, (uint16_t)c);
        if (!in) {
            missing = 1;
            continue;
        }
        tcpx_status st = chan_init(&p->rx[c], in->comm);
        if (st) p->rx[c].comm = in->comm; /* closed with the peer */
        p->rx[c].urx = in->urx;
        free(in->buf);
        free(in);
        if (st) return st;
    }
    if (missing) {
        if (p->ctrl_send && n->send_closed && n->send_closed(n, p->ctrl_send))
            return tcpx_set_error(TCPX_ERR_AUTH,
                                  "peer %s closed the connection during the handshake (wrong token, "
                                  "or it is not accepting us)",
                                  p->name);
        return TCPX_IN_PROGRESS;
    }
    /* Control buffers: receives kept posted, and send slots. */
    p->ctrl_in_buf = calloc(TCPX_CTRL_RECVS, TCPX_CTRL_MSG_MAX);
    p->ctrl_out_buf = malloc((size_t)TCPX_CTRL_WINDOW * TCPX_CTRL_MSG_MAX);
    if (!p->ctrl_in_buf || !p->ctrl_out_buf) return tcpx_set_error(TCPX_ERR_NOMEM, "control buffers");
    /* Over a device-unpack transport control frames land in the comm's GPU
     * landing area and are pulled into ctrl_in_buf (rx_unpack.c). */
    int rc = p->ctrl_urx ? 0
                         : n->reg_mr(n, p->ctrl_recv, p->ctrl_in_buf, (size_t)TCPX_CTRL_RECVS * TCPX_CTRL_MSG_MAX,
                                     TCPX_NET_PTR_HOST, &p->ctrl_in_mh);
    if (!rc)
        rc = n->reg_mr(n, p->ctrl_send, p->ctrl_out_buf, (size_t)TCPX_CTRL_WINDOW * TCPX_CTRL_MSG_MAX,
                       TCPX_NET_PTR_HOST, &p->ctrl_out_mh);
    for (int i = 0; i < s->ctrl_recvs && !rc; i++) rc = ctrl_post(p, i);
    if (rc) return (tcpx_status)rc;
    p->ctrl_in_next = 0;
    p->state = PEER_READY;
    return TCPX_OK;
}

tcpx_status peer_send_ctrl(tcpx_peer *p, const tcpx_msg *m)
{
    if (p->state != PEER_READY) return TCPX_ERR_PEER;
    if (p->outq_cap - p->outq_len < TCPX_CTRL_MSG_MAX) {
        if (p->outq_off) { /* compact before growing */
            memmove(p->outq, p->outq + p->outq_off, p->outq_len - p->outq_off);
            p->outq_len -= p->outq_off;
            p->outq_off = 0;
        }
        size_t ncap = p->outq_cap ? p->outq_cap : 4 * TCPX_CTRL_MSG_MAX;
        while (ncap - p->outq_len < TCPX_CTRL_MSG_MAX) ncap *= 2;
        uint8_t *q = ncap != p->outq_cap ? realloc(p->outq, ncap) : p->outq;
        if (!q) {
            peer_fail(p, TCPX_ERR_NOMEM, "cannot queue a control message");
            return TCPX_ERR_NOMEM;
        }
        p->outq = q;
        p->outq_cap = ncap;
    }
    size_t len = tcpx_msg_encode(m, p->outq + p->outq_len, TCPX_CTRL_MSG_MAX);
    if (!len) {
        peer_fail(p, TCPX_ERR_INVALID, "control message %s does not fit a frame", tcpx_msg_name(m->type));
        return TCPX_ERR_INVALID;
    }
    p->outq_len += len;
    return TCPX_OK;
}

/* Retire sent frames, then pack queued messages into frames while the
 * window has room: a burst of ACKs or CTSs costs one isend. */
static void ctrl_send_progress(tcpx_peer *p)
{
    tcpx_net *n = p->s->net;
    while (p->frame_head != p->frame_tail) {
        unsigned i = p->frame_head % TCPX_CTRL_WINDOW;
        int done = 0;
        size_t sz;
        if (n->test(n, p->frame_req[i], &done, &sz)) {
            p->frame_req[i] = NULL;
            peer_fail(p, TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
            return;
        }
        if (!done) break;
        p->frame_req[i] = NULL;
        p->frame_head++;
    }
    while (p->outq_off < p->outq_len && p->frame_tail - p->frame_head < TCPX_CTRL_WINDOW) {
        size_t take = 0, len;
        while (p->outq_off + take < p->outq_len) {
            tcpx_msg_frame_next(p->outq + p->outq_off + take, p->outq_len - p->outq_off - take, &len);
            if (take + len > TCPX_CTRL_MSG_MAX) break;
            take += len;
        }
        unsigned i = p->frame_tail % TCPX_CTRL_WINDOW;
        uint8_t *slot = p->ctrl_out_buf + (size_t)i * TCPX_CTRL_MSG_MAX;
        memcpy(slot, p->outq + p->outq_off, take);
        if (n->isend(n, p->ctrl_send, slot, take, 0, p->ctrl_out_mh, &p->frame_req[i])) {
            peer_fail(p, TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
            return;
        }
        if (!p->frame_req[i]) break;
        p->frame_tail++;
        p->outq_off += take;
    }
    if (p->outq_off == p->outq_len) p->outq_off = p->outq_len = 0;
}

/* Post control receive i (into ctrl_in_buf, or the GPU landing area). */
static int ctrl_post(tcpx_peer *p, int i)
{
    size_t off = (size_t)i * TCPX_CTRL_MSG_MAX;
    int rc = recv_post_host(p->s, p->ctrl_recv, p->ctrl_urx, off, p->ctrl_in_buf + off, TCPX_CTRL_MSG_MAX,
                            p->ctrl_in_mh, &p->ctrl_in_req[i], &p->ctrl_in_uslot[i]);
    if (!rc && !p->ctrl_in_req[i]) rc = tcpx_set_error(TCPX_ERR_TRANSPORT, "transport refused a control receive");
    return rc;
}

static void ctrl_recv_progress(tcpx_peer *p)
{
    tcpx_net *n = p->s->net;
    for (;;) {
        int i = p->ctrl_in_next;
        int done = 0;
        size_t size = 0;
        if (n->test(n, p->ctrl_in_req[i], &done, &size)) {
            p->ctrl_in_req[i] = NULL;
            peer_fail(p, TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
            return;
        }
        if (!done) return;
        void *req = p->ctrl_in_req[i];
        p->ctrl_in_req[i] = NULL;
        uint8_t *buf = p->ctrl_in_buf + (size_t)i * TCPX_CTRL_MSG_MAX;
        if (size > TCPX_CTRL_MSG_MAX) size = TCPX_CTRL_MSG_MAX;
        tcpx_status ust = p->ctrl_urx ? urx_pull(p->s, p->ctrl_urx, p->ctrl_in_uslot[i],
                                                 (size_t)i * TCPX_CTRL_MSG_MAX, size, buf)
                                      : TCPX_OK;
        if (ust) {
            peer_fail(p, ust, "control stream: device unpack: %s", tcpx_last_error());
            return;
        }
        /* Some plugins report the posted capacity, not the bytes sent, so a
         * frame ends at its size or at a zero byte where a message's version
         * would be (buffers are zeroed before each post). */
        for (size_t off = 0, len = 0; off < size && buf[off] != 0; off += len) {
            tcpx_msg m;
            tcpx_status st = tcpx_msg_frame_next(buf + off, size - off, &len);
            if (!st) st = tcpx_msg_decode(buf + off, len, &m);
            if (!st) st = msg_dispatch(p, &m);
            if (p->state != PEER_READY) return;
            if (st) {
                peer_fail(p, st, "bad control message: %s", tcpx_last_error());
                return;
            }
        }
        /* Every finished receive is handed back, in order, before the next
         * post (plugins recycle the request slot there). */
        memset(buf, 0, size < TCPX_CTRL_MSG_MAX ? size : TCPX_CTRL_MSG_MAX);
        if (n->irecv_consumed(n, p->ctrl_recv, req) || ctrl_post(p, i)) {
            peer_fail(p, TCPX_ERR_PEER, "control stream: cannot repost a receive: %s", tcpx_last_error());
            return;
        }
        p->ctrl_in_next = (i + 1) % p->s->ctrl_recvs;
    }
}

/* A round on one data comm: credit the retired chunks, then fail the peer
 * if the stream broke. Non-zero when the peer failed. */
static int chan_round(tcpx_peer *p, tcpx_chan *c, int is_send)
{
    tcpx_retired *r = &p->s->retired;
    r->n = 0;
    tcpx_status st = chan_progress(p->s, c, is_send, r);
    p->refs++; /* a credited op may be the last reference */
    for (size_t i = 0; i < r->n; i++) op_chunk_done(r->ops[i]);
    r->n = 0;
    if (st) peer_fail(p, st, "%s", tcpx_last_error());
    int failed = p->state != PEER_READY;
    peer_unref(p);
    return failed;
}

void peer_progress(tcpx_peer *p)
{
    if (p->state != PEER_READY) return;
    ctrl_recv_progress(p);
    for (int c = 0; c < p->nrx && p->state == PEER_READY; c++)
        if (chan_round(p, &p->rx[c], 0)) return;
    for (int c = 0; c < p->ntx && p->state == PEER_READY; c++)
        if (chan_round(p, &p->tx[c], 1)) return;
    if (p->state == PEER_READY) ctrl_send_progress(p);
}
