/* ctrl.c - the control stream of a connection, both directions.
 *
 * Out: messages are encoded into a queue (ctrl_send) and packed into frames
 * of up to TCPX_CTRL_MSG_MAX bytes while the frame window has room
 * (ctrl_flush): a burst of ACKs or CTSs costs one isend.
 * In: receives stay posted; ctrl_next hands up the decoded messages of the
 * finished frames one at a time, in order, and reposts a frame's receive
 * once its last message was taken.
 *
 * Nothing here fails the peer: errors are returned (detail in
 * tcpx_last_error), and an error of ctrl_send, whose callers are often
 * handlers that cannot stop, is also kept in p->ctrl_err for the progress
 * engine to act on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"

/* Post control receive i (into ctrl_in_buf, or the GPU landing area). */
static tcpx_status ctrl_post(tcpx_peer *p, int i)
{
    size_t off = (size_t)i * TCPX_CTRL_MSG_MAX;
    int rc = recv_post_host(p->s, p->ctrl_recv, p->ctrl_urx, off, p->ctrl_in_buf + off, TCPX_CTRL_MSG_MAX,
                            p->ctrl_in_mh, &p->ctrl_in_req[i], &p->ctrl_in_uslot[i]);
    if (!rc && !p->ctrl_in_req[i]) rc = tcpx_set_error(TCPX_ERR_TRANSPORT, "transport refused a control receive");
    return (tcpx_status)rc;
}

tcpx_status ctrl_open(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    tcpx_net *n = s->net;
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
    p->ctrl_cur = -1;
    return TCPX_OK;
}

void ctrl_close(tcpx_peer *p)
{
    tcpx_session *s = p->s;
    tcpx_net *n = s->net;
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
    p->ctrl_cur = -1;
    free(p->outq);
    p->outq = NULL;
    p->outq_off = p->outq_len = p->outq_cap = 0;
}

static tcpx_status ctrl_broken(tcpx_peer *p, tcpx_status st)
{
    if (!p->ctrl_err) {
        p->ctrl_err = st;
        snprintf(p->ctrl_errmsg, sizeof p->ctrl_errmsg, "%s", tcpx_last_error());
    }
    return st;
}

tcpx_status ctrl_send(tcpx_peer *p, const tcpx_msg *m)
{
    if (p->state != PEER_READY || p->ctrl_err) return TCPX_ERR_PEER;
    if (p->outq_cap - p->outq_len < TCPX_CTRL_MSG_MAX) {
        if (p->outq_off) { /* compact before growing */
            memmove(p->outq, p->outq + p->outq_off, p->outq_len - p->outq_off);
            p->outq_len -= p->outq_off;
            p->outq_off = 0;
        }
        size_t ncap = p->outq_cap ? p->outq_cap : 4 * TCPX_CTRL_MSG_MAX;
        while (ncap - p->outq_len < TCPX_CTRL_MSG_MAX) ncap *= 2;
        uint8_t *q = ncap != p->outq_cap ? realloc(p->outq, ncap) : p->outq;
        if (!q) return ctrl_broken(p, tcpx_set_error(TCPX_ERR_NOMEM, "cannot queue a control message"));
        p->outq = q;
        p->outq_cap = ncap;
    }
    size_t len = tcpx_msg_encode(m, p->outq + p->outq_len, TCPX_CTRL_MSG_MAX);
    if (!len)
        return ctrl_broken(p, tcpx_set_error(TCPX_ERR_INVALID, "control message %s does not fit a frame",
                                             tcpx_msg_name(m->type)));
    p->outq_len += len;
    return TCPX_OK;
}

tcpx_status ctrl_send_nack(tcpx_peer *p, uint64_t id, tcpx_status st, const char *text)
{
    tcpx_msg m = {.type = TCPX_MSG_NACK};
    m.u.nack.id = id;
    m.u.nack.status = st;
    m.payload = (const uint8_t *)text;
    m.payload_len = (uint32_t)strlen(text);
    return ctrl_send(p, &m);
}

tcpx_status ctrl_flush(tcpx_peer *p)
{
    tcpx_net *n = p->s->net;
    while (p->frame_head != p->frame_tail) {
        unsigned i = p->frame_head % TCPX_CTRL_WINDOW;
        int done = 0;
        size_t sz;
        if (n->test(n, p->frame_req[i], &done, &sz)) {
            p->frame_req[i] = NULL;
            return tcpx_set_error(TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
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
        if (n->isend(n, p->ctrl_send, slot, take, 0, p->ctrl_out_mh, &p->frame_req[i]))
            return tcpx_set_error(TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
        if (!p->frame_req[i]) break;
        p->frame_tail++;
        p->outq_off += take;
    }
    if (p->outq_off == p->outq_len) p->outq_off = p->outq_len = 0;
    return TCPX_OK;
}

/* Take the next finished frame into ctrl_cur. TCPX_IN_PROGRESS: none yet. */
static tcpx_status frame_take(tcpx_peer *p)
{
    tcpx_net *n = p->s->net;
    int i = p->ctrl_in_next;
    int done = 0;
    size_t size = 0;
    if (n->test(n, p->ctrl_in_req[i], &done, &size)) {
        p->ctrl_in_req[i] = NULL;
        return tcpx_set_error(TCPX_ERR_PEER, "control stream: %s", tcpx_last_error());
    }
    if (!done) return TCPX_IN_PROGRESS;
    if (size > TCPX_CTRL_MSG_MAX) size = TCPX_CTRL_MSG_MAX;
    uint8_t *buf = p->ctrl_in_buf + (size_t)i * TCPX_CTRL_MSG_MAX;
    tcpx_status st = p->ctrl_urx ? urx_pull(p->s, p->ctrl_urx, p->ctrl_in_uslot[i], (size_t)i * TCPX_CTRL_MSG_MAX,
                                            size, buf)
                                 : TCPX_OK;
    if (st) return tcpx_set_error(st, "control stream: device unpack: %s", tcpx_last_error());
    p->ctrl_cur = i;
    p->ctrl_cur_off = 0;
    p->ctrl_cur_size = size;
    return TCPX_OK;
}

/* The current frame is used up: hand its receive back and post it again.
 * Every finished receive is handed back, in order, before the next post
 * (plugins recycle the request slot there). */
static tcpx_status frame_done(tcpx_peer *p)
{
    tcpx_net *n = p->s->net;
    int i = p->ctrl_cur;
    uint8_t *buf = p->ctrl_in_buf + (size_t)i * TCPX_CTRL_MSG_MAX;
    memset(buf, 0, p->ctrl_cur_size);
    void *req = p->ctrl_in_req[i];
    p->ctrl_in_req[i] = NULL;
    p->ctrl_cur = -1;
    if (n->irecv_consumed(n, p->ctrl_recv, req) || ctrl_post(p, i))
        return tcpx_set_error(TCPX_ERR_PEER, "control stream: cannot repost a receive: %s", tcpx_last_error());
    p->ctrl_in_next = (i + 1) % p->s->ctrl_recvs;
    return TCPX_OK;
}

tcpx_status ctrl_next(tcpx_peer *p, tcpx_msg *m)
{
    for (;;) {
        tcpx_status st;
        if (p->ctrl_cur < 0 && (st = frame_take(p))) return st;
        const uint8_t *buf = p->ctrl_in_buf + (size_t)p->ctrl_cur * TCPX_CTRL_MSG_MAX;
        size_t off = p->ctrl_cur_off, size = p->ctrl_cur_size;
        /* Some plugins report the posted capacity, not the bytes sent, so a
         * frame ends at its size or at a zero byte where a message's version
         * would be (buffers are zeroed before each post). */
        if (off < size && buf[off] != 0) {
            size_t len = 0;
            st = tcpx_msg_frame_next(buf + off, size - off, &len);
            if (!st) st = tcpx_msg_decode(buf + off, len, m);
            if (st) return tcpx_set_error(st, "bad control message: %s", tcpx_last_error());
            p->ctrl_cur_off = off + len;
            return TCPX_OK;
        }
        if ((st = frame_done(p))) return st;
    }
}
