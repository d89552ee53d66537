/* listen.c - listening endpoints and identification of inbound comms.
 *
 * Every comm a peer opens to us starts with one message: HELLO on a control
 * comm (accepted by listen comm 0), DHELLO on a data comm. Until that message
 * arrives and carries our session token, the comm is an anonymous "inbound";
 * afterwards peers claim it by connection nonce (peer.c). Strangers, wrong
 * tokens and silent connections are closed and logged; listening goes on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

tcpx_status sess_listen_locked(tcpx_session *s)
{
    if (s->listening) return TCPX_OK;
    tcpx_conninfo ci;
    memset(&ci, 0, sizeof ci);
    ci.channels = (uint16_t)s->cfg.channels;
    ci.token = s->token;
    snprintf(ci.transport, sizeof ci.transport, "%s", s->net->name);
    int rc = 0;
    for (int i = 0; i <= s->cfg.channels && !rc; i++)
        rc = s->net->listen(s->net, s->net_dev, ci.handles[i], &s->listen_comm[i]);
    size_t len = tcpx_conninfo_size(ci.channels);
    uint8_t *blob = rc ? NULL : malloc(len);
    tcpx_status st = rc ? (tcpx_status)rc : !blob ? tcpx_set_error(TCPX_ERR_NOMEM, "blob allocation failed")
                                                  : tcpx_conninfo_encode(&ci, blob, len, &s->blob_len);
    if (st) {
        free(blob);
        for (int i = 0; i <= s->cfg.channels; i++) {
            if (s->listen_comm[i]) s->net->close_listen(s->net, s->listen_comm[i]);
            s->listen_comm[i] = NULL;
        }
        return st;
    }
    s->blob = blob;
    s->listening = 1;
    return TCPX_OK;
}

static void inbound_free(tcpx_session *s, tcpx_inbound *in)
{
    if (in->comm) {
        urx_stop(s, in->comm, in->urx);
        if (in->mh) s->net->dereg_mr(s->net, in->comm, in->mh);
        s->net->close_recv(s->net, in->comm); /* also abandons in->req */
    }
    urx_free(s, in->urx);
    free(in->buf);
    free(in->blob);
    free(in);
}

void inbound_free_all(tcpx_session *s)
{
    while (s->inbound) {
        tcpx_inbound *in = s->inbound;
        s->inbound = in->next;
        inbound_free(s, in);
    }
}

static void inbound_drop(tcpx_session *s, tcpx_inbound **link, const char *why)
{
    tcpx_inbound *in = *link;
    TCPX_WARN("session %s: closed an inbound connection: %s", s->cfg.name, why);
    *link = in->next;
    inbound_free(s, in);
}

static void accept_new(tcpx_session *s)
{
    for (int i = 0; i <= s->cfg.channels; i++) {
        for (;;) {
            void *comm = NULL;
            int rc = s->net->accept(s->net, s->listen_comm[i], &comm);
            if (rc) {
                TCPX_WARN("accept on listen endpoint %d failed: %s", i, tcpx_last_error());
                break;
            }
            if (!comm) break;
            tcpx_inbound *in = calloc(1, sizeof *in);
            size_t cap = i == 0 ? TCPX_CTRL_MSG_MAX : TCPX_HELLO_BUF;
            if (in) in->buf = malloc(cap);
            if (!in || !in->buf) {
                free(in);
                s->net->close_recv(s->net, comm);
                TCPX_ERROR("out of memory accepting a connection");
                continue;
            }
            in->comm = comm;
            in->lidx = i;
            /* Device unpack: the comm's GPU landing area takes the hello, and
             * later the control frames (control comm) or nothing (data comm). */
            if (s->unpack &&
                urx_open(s, comm, i == 0 ? (size_t)TCPX_CTRL_RECVS * TCPX_CTRL_MSG_MAX : TCPX_HELLO_BUF, &in->urx)) {
                TCPX_WARN("session %s: closed an inbound connection: device unpack setup: %s", s->cfg.name,
                          tcpx_last_error());
                s->net->close_recv(s->net, comm);
                free(in->buf);
                free(in);
                continue;
            }
            in->deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
            in->next = s->inbound;
            s->inbound = in;
        }
    }
}

/* Post/test the first-message receive of one inbound; 1 = drop it. */
static int identify(tcpx_session *s, tcpx_inbound *in, const char **why)
{
    size_t cap = in->lidx == 0 ? TCPX_CTRL_MSG_MAX : TCPX_HELLO_BUF;
    if (!in->urx && !in->mh && s->net->reg_mr(s->net, in->comm, in->buf, cap, TCPX_NET_PTR_HOST, &in->mh)) {
        *why = "memory registration failed";
        return 1;
    }
    if (!in->req) {
        if (recv_post_host(s, in->comm, in->urx, 0, in->buf, cap, in->mh, &in->req, &in->uslot)) {
            *why = "receive failed";
            return 1;
        }
        if (!in->req) return 0;
    }
    int done = 0;
    size_t size = 0;
    if (s->net->test(s->net, in->req, &done, &size)) {
        in->req = NULL;
        *why = tcpx_last_error();
        return 1;
    }
    if (!done) return 0;
    if (size > cap) size = cap;
    if (in->urx && urx_pull(s, in->urx, in->uslot, 0, size, in->buf)) {
        *why = tcpx_last_error();
        return 1;
    }
    int consumed = s->net->irecv_consumed(s->net, in->comm, in->req);
    in->req = NULL;
    if (consumed) {
        *why = tcpx_last_error();
        return 1;
    }
    if (in->mh) s->net->dereg_mr(s->net, in->comm, in->mh);
    in->mh = NULL;
    tcpx_msg m;
    size_t len = 0; /* the first message: some plugins report the posted capacity as the size */
    if (tcpx_msg_frame_next(in->buf, size, &len) || tcpx_msg_decode(in->buf, len, &m)) {
        *why = tcpx_last_error();
        return 1;
    }
    int want = in->lidx == 0 ? TCPX_MSG_HELLO : TCPX_MSG_DHELLO;
    if (m.type != want) {
        *why = "first message is not a hello";
        return 1;
    }
    uint64_t token = m.type == TCPX_MSG_HELLO ? m.u.hello.token : m.u.dhello.token;
    if (token != s->token) {
        *why = "wrong session token (refused)";
        return 1;
    }
    if (m.type == TCPX_MSG_HELLO && m.u.hello.role == TCPX_HELLO_INITIATE) {
        in->blob = malloc(m.payload_len ? m.payload_len : 1);
        if (!in->blob) {
            *why = "out of memory";
            return 1;
        }
        memcpy(in->blob, m.payload, m.payload_len);
    }
    m.payload = NULL;
    in->msg = m;
    in->identified = 1;
    if (m.type == TCPX_MSG_HELLO)
        TCPX_DEBUG("hello from %s (role %d, %u channels)", m.u.hello.name, m.u.hello.role, m.u.hello.channels);
    return 0;
}

void inbound_progress(tcpx_session *s, int force, uint64_t now)
{
    if (!s->listening) return;
    if (!force && now - s->last_inbound_ns < 1000000ull) return;
    s->last_inbound_ns = now;
    accept_new(s);
    for (tcpx_inbound **link = &s->inbound; *link;) {
        tcpx_inbound *in = *link;
        const char *why = NULL;
        if (!in->identified && identify(s, in, &why)) {
            inbound_drop(s, link, why);
            continue;
        }
        if (now > in->deadline && (in->superseded || in->deferred)) { /* the other session dropped it */
            *link = in->next;
            inbound_free(s, in);
            continue;
        }
        if (now > in->deadline) {
            inbound_drop(s, link, in->identified ? "no accept/connect claimed it in time"
                                                 : "no valid hello within the connect timeout");
            continue;
        }
        link = &in->next;
    }
}

tcpx_inbound *inbound_take(tcpx_session *s, int ctrl, uint64_t nonce, uint16_t channel)
{
    for (tcpx_inbound **link = &s->inbound; *link; link = &(*link)->next) {
        tcpx_inbound *in = *link;
        if (!in->identified || (in->lidx == 0) != ctrl) continue;
        if (ctrl ? in->msg.u.hello.nonce != nonce
                 : (in->msg.u.dhello.nonce != nonce || in->msg.u.dhello.channel != channel))
            continue;
        *link = in->next;
        in->next = NULL;
        return in;
    }
    return NULL;
}

void inbound_discard(tcpx_session *s, uint64_t nonce)
{
    for (tcpx_inbound **link = &s->inbound; *link;) {
        tcpx_inbound *in = *link;
        uint64_t n = !in->identified ? 0 : in->lidx == 0 ? in->msg.u.hello.nonce : in->msg.u.dhello.nonce;
        if (!in->identified || n != nonce) {
            link = &in->next;
            continue;
        }
        TCPX_DEBUG("session %s: closed inbound comm %d of connection %llx", s->cfg.name, in->lidx,
                   (unsigned long long)nonce);
        *link = in->next;
        inbound_free(s, in);
    }
}
