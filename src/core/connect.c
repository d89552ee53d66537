/* connect.c - the public connection calls: listen, load_remote, connect,
 * accept, disconnect, peer_status; assembling a peer's incoming half from
 * inbound comms; and the one wait that drives a connection until it is up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

tcpx_status tcpx_session_listen(tcpx_session *s, const void **blob, size_t *len)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "session is NULL");
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    if (!st) {
        if (blob) *blob = s->blob;
        if (len) *len = s->blob_len;
    }
    sess_unlock(s);
    return st;
}

static int valid_name(const char *name)
{
    return name && name[0] && strlen(name) < TCPX_NAME_MAX;
}

tcpx_status tcpx_session_load_remote(tcpx_session *s, const char *peer, const void *blob, size_t len)
{
    if (!s || !valid_name(peer) || !blob)
        return tcpx_set_error(TCPX_ERR_INVALID, "load_remote: NULL session/blob or bad peer name");
    tcpx_conninfo ci;
    tcpx_status st = tcpx_conninfo_decode(blob, len, &ci);
    if (st) return st;
    sess_lock(s);
    if (strcmp(ci.transport, s->net->name)) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_INVALID, "peer %s uses transport \"%s\", this session \"%s\"", peer,
                              ci.transport, s->net->name);
    }
    tcpx_peer *p = peer_find(s, peer);
    if (p && (p->state == PEER_READY || p->state == PEER_CONNECTING)) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_INVALID, "peer %s is connected; disconnect it first", peer);
    }
    if (p) peer_unlink(s, p); /* a failed or closed earlier connection */
    p = peer_new(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    p->remote = ci;
    p->has_remote = 1;
    sess_unlock(s);
    return TCPX_OK;
}

/* Claim the inbound comms of our incoming half; READY once all are here. */
static tcpx_status peer_activate(tcpx_peer *p)
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
            p->remote_max_chunk = in->msg.u.hello.max_chunk;
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
    tcpx_status st = ctrl_open(p);
    if (st) return st;
    p->state = PEER_READY;
    return TCPX_OK;
}

/* Drive the dial and the assembly of the incoming half until the peer is
 * ready, releasing the lock between rounds; bounded by the deadline. */
static tcpx_status wait_connected(tcpx_session *s, tcpx_peer *p, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        inbound_progress(s, 1);
        if (p->dial) {
            int done = 0;
            tcpx_status st = dial_progress(s, p, &done);
            if (st) return st;
        }
        if (!p->dial) {
            /* outgoing half is up; the incoming half assembles from inbound comms */
            tcpx_status st = peer_activate(p);
            if (st != TCPX_IN_PROGRESS) return st;
        }
        if (tcpx_past(deadline))
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "%s %s: not established within %d ms", what, p->name,
                                  s->cfg.connect_timeout_ms);
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
        if (p->state != PEER_CONNECTING)
            return p->err ? p->err : tcpx_set_error(TCPX_ERR_PEER, "%s %s: aborted", what, p->name);
    }
}

static tcpx_status finish_connect(tcpx_session *s, tcpx_peer *p, tcpx_status st)
{
    if (st) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", tcpx_last_error());
        peer_fail(p, st, "%s", keep);
        tcpx_set_error(st, "%s", keep);
        TCPX_WARN("connection with %s failed: %s", p->name, keep);
    } else {
        TCPX_INFO("connected with %s: %d channels out, %d in", p->name, p->ntx, p->nrx);
    }
    return st;
}

tcpx_status tcpx_session_connect(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "connect: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!st && (!p || !p->has_remote))
        st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "connect: no connection info loaded for peer %s", peer);
    else if (!st && p->state != PEER_IDLE)
        st = tcpx_set_error(TCPX_ERR_INVALID, "connect: peer %s is not idle (load its info again to reconnect)", peer);
    if (st) {
        sess_unlock(s);
        return st;
    }
    p->state = PEER_CONNECTING;
    p->nonce = tcpx_random_u64();
    p->refs++; /* keep p alive across unlocked waits */
    st = dial_start(s, p, TCPX_HELLO_INITIATE);
    if (!st) st = wait_connected(s, p, deadline, "connect to");
    st = finish_connect(s, p, st);
    peer_unref(p);
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_accept(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "accept: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!st && p && (p->state == PEER_READY || p->state == PEER_CONNECTING))
        st = tcpx_set_error(TCPX_ERR_INVALID, "accept: peer name %s is already connected", peer);
    if (st) {
        sess_unlock(s);
        return st;
    }
    /* Wait for an INITIATE hello from that name. */
    tcpx_inbound *hello = NULL;
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        inbound_progress(s, 1);
        for (tcpx_inbound *in = s->inbound; in; in = in->next)
            if (in->identified && in->lidx == 0 && in->msg.u.hello.role == TCPX_HELLO_INITIATE &&
                !strcmp(in->msg.u.hello.name, peer)) {
                hello = in;
                break;
            }
        if (hello) break;
        if (tcpx_past(deadline)) {
            sess_unlock(s);
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "accept: peer %s did not connect within %d ms", peer,
                                  s->cfg.connect_timeout_ms);
        }
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
    }
    tcpx_conninfo ci;
    st = tcpx_conninfo_decode(hello->blob, hello->msg.payload_len, &ci);
    uint64_t nonce = hello->msg.u.hello.nonce;
    if (!st && strcmp(ci.transport, s->net->name))
        st = tcpx_set_error(TCPX_ERR_PROTOCOL, "accept: peer %s uses transport \"%s\"", peer, ci.transport);
    if (st) {
        tcpx_inbound *bad = inbound_take(s, 1, nonce, 0);
        if (bad) {
            s->net->close_recv(s->net, bad->comm);
            free(bad->buf);
            free(bad->blob);
            free(bad);
        }
        sess_unlock(s);
        return st;
    }
    if (p) peer_unlink(s, p);
    p = peer_new(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    p->remote = ci;
    p->has_remote = 1;
    p->nonce = nonce;
    p->state = PEER_CONNECTING;
    p->refs++;
    st = dial_start(s, p, TCPX_HELLO_REPLY);
    if (!st) st = wait_connected(s, p, deadline, "accept from");
    st = finish_connect(s, p, st);
    peer_unref(p);
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_disconnect(tcpx_session *s, const char *peer)
{
    if (!s || !peer) return tcpx_set_error(TCPX_ERR_INVALID, "disconnect: NULL argument");
    sess_lock(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOT_FOUND, "disconnect: unknown peer %s", peer);
    }
    p->local_close = 1;
    if (p->state == PEER_READY || p->state == PEER_CONNECTING) peer_fail(p, TCPX_ERR_PEER, "disconnected locally");
    p->state = PEER_CLOSED;
    peer_unlink(s, p);
    sess_unlock(s);
    TCPX_INFO("disconnected from %s", peer);
    return TCPX_OK;
}

tcpx_status tcpx_session_peer_status(tcpx_session *s, const char *peer)
{
    if (!s || !peer) return tcpx_set_error(TCPX_ERR_INVALID, "peer_status: NULL argument");
    sess_lock(s);
    sess_progress_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    tcpx_status st;
    if (!p) st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "unknown peer %s", peer);
    else if (p->state == PEER_READY) st = TCPX_OK;
    else if (p->state == PEER_FAILED) st = tcpx_set_error(p->err, "peer %s: %s", peer, p->errmsg);
    else st = tcpx_set_error(TCPX_ERR_PEER, "peer %s is not connected", peer);
    sess_unlock(s);
    return st;
}
