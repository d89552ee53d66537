/* dial.c - opening our outgoing half of a connection: one control comm and
 * `channels` data comms to the peer's listen handles, each greeted with its
 * hello (HELLO with our token for the peer and, when initiating, our own
 * connection info so the peer can open the reply half; DHELLO per channel).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"
#include "util/log.h"

static const void *remote_handle(tcpx_peer *p, int i)
{
    /* Data comm i connects to listen handle 1 + (i-1) % remote channels, so
     * each direction may use its own channel count. */
    return i == 0 ? p->remote.handles[0] : p->remote.handles[1 + (i - 1) % p->remote.channels];
}

void dial_free(tcpx_session *s, tcpx_dial *d)
{
    if (!d) return;
    for (int i = 0; i < d->ncomms; i++) {
        if (d->comm[i]) {
            if (d->mh[i]) s->net->dereg_mr(s->net, d->comm[i], d->mh[i]);
            s->net->close_send(s->net, d->comm[i]);
        } else if (d->state[i]) {
            s->net->connect_abort(s->net, d->state[i]);
        }
        free(d->buf[i]);
    }
    free(d);
}

tcpx_status dial_start(tcpx_session *s, tcpx_peer *p, int role)
{
    tcpx_dial *d = calloc(1, sizeof *d);
    if (!d) return tcpx_set_error(TCPX_ERR_NOMEM, "dial allocation failed");
    d->ncomms = 1 + s->cfg.channels;
    for (int i = 0; i < d->ncomms; i++) {
        tcpx_msg m;
        memset(&m, 0, sizeof m);
        size_t cap = TCPX_HELLO_BUF;
        if (i == 0) {
            m.type = TCPX_MSG_HELLO;
            m.u.hello.role = (uint8_t)role;
            m.u.hello.channels = (uint16_t)s->cfg.channels;
            m.u.hello.max_chunk = (uint32_t)s->cfg.chunk_bytes;
            m.u.hello.flags = s->cfg.data_digest ? TCPX_HELLO_DATA_DIGEST : 0;
            m.u.hello.unx_max = (uint32_t)s->cfg.unexpected_max;
            m.u.hello.unx_max_bytes = s->cfg.unexpected_max_bytes;
            m.u.hello.token = p->remote.token;
            m.u.hello.nonce = p->nonce;
            snprintf(m.u.hello.name, sizeof m.u.hello.name, "%s", s->cfg.name);
            if (role == TCPX_HELLO_INITIATE) {
                m.payload = s->blob;
                m.payload_len = (uint32_t)s->blob_len;
            }
            cap = TCPX_CTRL_MSG_MAX;
        } else {
            m.type = TCPX_MSG_DHELLO;
            m.u.dhello.token = p->remote.token;
            m.u.dhello.nonce = p->nonce;
            m.u.dhello.channel = (uint16_t)(i - 1);
        }
        d->buf[i] = malloc(cap);
        size_t len = d->buf[i] ? tcpx_msg_encode(&m, d->buf[i], cap) : 0;
        if (!len) {
            dial_free(s, d);
            return tcpx_set_error(TCPX_ERR_NOMEM, "hello encoding failed");
        }
        d->sent[i] = -(int)len; /* negative: length to send, not yet posted */
    }
    p->dial = d;
    p->want_role = role == TCPX_HELLO_INITIATE ? TCPX_HELLO_REPLY : TCPX_HELLO_INITIATE;
    return TCPX_OK;
}

tcpx_status dial_progress(tcpx_session *s, tcpx_peer *p, int *done)
{
    tcpx_dial *d = p->dial;
    tcpx_net *n = s->net;
    int all = 1;
    *done = 0;
    for (int i = 0; i < d->ncomms; i++) {
        if (!d->comm[i]) {
            int rc = n->connect_send(n, s->net_dev, remote_handle(p, i), &d->state[i], &d->comm[i]);
            if (rc) return (tcpx_status)rc;
            if (!d->comm[i]) {
                all = 0;
                continue;
            }
            d->state[i] = NULL;
        }
        if (d->sent[i] < 0 && !d->req[i]) {
            size_t len = (size_t)-d->sent[i];
            int rc = d->mh[i] ? 0 : n->reg_mr(n, d->comm[i], d->buf[i], len, TCPX_NET_PTR_HOST, &d->mh[i]);
            if (!rc) rc = n->isend(n, d->comm[i], d->buf[i], len, 0, d->mh[i], &d->req[i]);
            if (rc) return (tcpx_status)rc;
        }
        if (d->req[i]) {
            int fin = 0;
            size_t sz;
            int rc = n->test(n, d->req[i], &fin, &sz);
            if (rc) {
                d->req[i] = NULL;
                return (tcpx_status)rc;
            }
            if (fin) {
                d->req[i] = NULL;
                d->sent[i] = 1;
            }
        }
        if (d->sent[i] != 1) all = 0;
    }
    if (!all) return TCPX_OK;
    /* Hand the comms to the peer; the hello buffers are no longer needed. */
    p->ctrl_send = d->comm[0];
    p->ntx = d->ncomms - 1;
    tcpx_status st = TCPX_OK;
    for (int i = 0; i < d->ncomms; i++) {
        n->dereg_mr(n, d->comm[i], d->mh[i]);
        d->mh[i] = NULL;
        if (i > 0 && !st) st = chan_init(&p->tx[i - 1], d->comm[i]);
        else if (i > 0) p->tx[i - 1].comm = d->comm[i];
        d->comm[i] = NULL;
    }
    dial_free(s, d);
    p->dial = NULL;
    *done = 1;
    return st;
}
