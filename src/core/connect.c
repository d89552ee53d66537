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

/* A new IDLE peer `label` with the connection info ci, or NULL. */
static tcpx_peer *peer_with_info(tcpx_session *s, const char *label, const tcpx_conninfo *ci)
{
    tcpx_peer *p = peer_new(s, label);
    if (p) {
        p->remote = *ci;
        p->has_remote = 1;
    }
    return p;
}

/* Another peer connected (or connecting) to the session of `token`. */
static tcpx_peer *other_with_token(tcpx_session *s, const tcpx_peer *p, uint64_t token)
{
    for (tcpx_peer *q = s->peers; q; q = q->next)
        if (q != p && q->has_remote && q->remote.token == token &&
            (q->state == PEER_READY || q->state == PEER_CONNECTING))
            return q;
    return NULL;
}

tcpx_status tcpx_session_load_remote(tcpx_session *s, const char *peer, const void *blob, size_t len)
{
    if (!s || !valid_name(peer) || !blob)
        return tcpx_set_error(TCPX_ERR_INVALID, "load_remote: NULL session/blob or bad peer name");
    tcpx_conninfo ci;
    tcpx_status st = tcpx_conninfo_decode(blob, len, &ci);
    if (st) return st;
    sess_lock(s);
    tcpx_peer *p = peer_find(s, peer);
    if (strcmp(ci.transport, s->net->name)) {
        st = tcpx_set_error(TCPX_ERR_INVALID, "peer %s uses transport \"%s\", this session \"%s\"", peer, ci.transport,
                            s->net->name);
    } else if (p && (p->state == PEER_READY || p->state == PEER_CONNECTING)) {
        if (!p->has_remote || p->remote.token != ci.token)
            st = tcpx_set_error(TCPX_ERR_INVALID, "peer %s is connected to another session; disconnect it first",
                                peer);
        /* else: the same session again, nothing to do */
    } else {
        if (p) peer_unlink(s, p); /* a failed or closed earlier connection */
        if (!peer_with_info(s, peer, &ci)) st = tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    sess_unlock(s);
    return st;
}

/* The one wait of connect and accept: progress (which drives every
 * handshake) until p is READY, failed, or the deadline passed. */
static tcpx_status wait_ready(tcpx_session *s, tcpx_peer *p, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        sess_progress_locked(s);
        if (p->state == PEER_READY) return TCPX_OK;
        if (p->state != PEER_CONNECTING)
            return tcpx_set_error(p->err ? p->err : TCPX_ERR_PEER, "%s %s: %s", what, p->name,
                                  p->errmsg[0] ? p->errmsg : "aborted");
        if (tcpx_past(deadline)) {
            char why[160];
            snprintf(why, sizeof why, "not established within %d ms", s->cfg.connect_timeout_ms);
            peer_fail(p, TCPX_ERR_TIMEOUT, "%s", why);
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "%s %s: %s", what, p->name, why);
        }
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
    }
}

/* Begin connecting `peer` (under the lock): *out is the peer, CONNECTING
 * or READY; TCPX_OK, or an error (nothing started). */
static tcpx_status connect_begin(tcpx_session *s, const char *peer, tcpx_peer **out)
{
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer), *q = NULL;
    if (!st && (!p || !p->has_remote)) {
        st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "connect: no connection info loaded for peer %s", peer);
    } else if (!st && p->state == PEER_READY) {
        *out = p;
        return TCPX_OK;
    } else if (!st && p->state != PEER_CONNECTING && (q = other_with_token(s, p, p->remote.token))) {
        st = tcpx_set_error(TCPX_ERR_INVALID, "connect: that session is already connected as peer %s", q->name);
    }
    if (!st && (p->state == PEER_FAILED || p->state == PEER_CLOSED)) {
        /* Connect again with the same info. */
        tcpx_conninfo ci = p->remote;
        peer_unlink(s, p);
        if (!(p = peer_with_info(s, peer, &ci))) st = tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    if (st) return st;
    if (p->state == PEER_IDLE && (st = hs_start(s, p, TCPX_HELLO_INITIATE, tcpx_random_u64()))) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", tcpx_last_error());
        peer_fail(p, st, "%s", keep);
        return tcpx_set_error(st, "%s", keep);
    }
    *out = p;
    return TCPX_OK;
}

tcpx_status tcpx_session_connect(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "connect: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_peer *p = NULL;
    tcpx_status st = connect_begin(s, peer, &p);
    if (!st && p->state != PEER_READY) {
        p->refs++; /* keep p alive across unlocked waits */
        st = wait_ready(s, p, deadline, "connect to");
        peer_unref(p);
    }
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_connect_start(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "connect_start: NULL session or bad peer name");
    sess_lock(s);
    tcpx_peer *p = NULL;
    tcpx_status st = connect_begin(s, peer, &p);
    if (!st) {
        sess_progress_locked(s);
        st = p->state == PEER_READY ? TCPX_OK : p->state == PEER_CONNECTING ? TCPX_IN_PROGRESS
                                                                             : tcpx_set_error(p->err, "%s", p->errmsg);
    }
    sess_unlock(s);
    return st;
}

/* An INITIATE hello from `name` waiting to be accepted. */
static tcpx_inbound *hello_from(tcpx_session *s, const char *name)
{
    for (tcpx_inbound *in = s->inbound; in; in = in->next)
        if (in->identified && in->lidx == 0 && in->msg.u.hello.role == TCPX_HELLO_INITIATE && !in->superseded &&
            !strcmp(in->msg.u.hello.name, name))
            return in;
    return NULL;
}

/* Accept hello as `peer` (explicit accept, without accept_any). */
static tcpx_status accept_hello(tcpx_session *s, tcpx_inbound *hello, const char *peer, tcpx_peer **out)
{
    tcpx_conninfo ci;
    tcpx_status st = tcpx_conninfo_decode(hello->blob, hello->msg.payload_len, &ci);
    if (!st && strcmp(ci.transport, s->net->name))
        st = tcpx_set_error(TCPX_ERR_PROTOCOL, "accept: peer %s uses transport \"%s\"", peer, ci.transport);
    if (st) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", tcpx_last_error());
        inbound_discard(s, hello->msg.u.hello.nonce);
        return tcpx_set_error(st, "%s", keep);
    }
    *out = NULL;
    st = hs_accept(s, hello, &ci, peer, 0, out);
    if (st && *out) peer_fail(*out, st, "%s", tcpx_last_error());
    return st;
}

tcpx_status tcpx_session_accept(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "accept: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!st && !s->cfg.accept_any && p && (p->state == PEER_READY || p->state == PEER_CONNECTING))
        st = tcpx_set_error(TCPX_ERR_INVALID, "accept: peer name %s is already connected", peer);
    /* Wait for an INITIATE hello from that name; with accept_any the engine
     * takes it itself: wait for the peer. */
    while (!st) {
        uint64_t seen = sess_wake_seq(s);
        sess_progress_locked(s);
        p = peer_find(s, peer);
        if (s->cfg.accept_any && p && (p->state == PEER_READY || p->state == PEER_CONNECTING)) break;
        tcpx_inbound *hello = s->cfg.accept_any ? NULL : hello_from(s, peer);
        if (hello) {
            st = accept_hello(s, hello, peer, &p);
            break;
        }
        if (tcpx_past(deadline)) {
            st = tcpx_set_error(TCPX_ERR_TIMEOUT, "accept: peer %s did not connect within %d ms", peer,
                                s->cfg.connect_timeout_ms);
            break;
        }
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
    }
    if (!st) {
        p->refs++;
        st = wait_ready(s, p, deadline, "accept from");
        peer_unref(p);
    }
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
    else if (p->state == PEER_CONNECTING) st = TCPX_IN_PROGRESS;
    else if (p->state == PEER_FAILED) st = tcpx_set_error(p->err, "peer %s: %s", peer, p->errmsg);
    else st = tcpx_set_error(TCPX_ERR_PEER, "peer %s is not connected", peer);
    sess_unlock(s);
    return st;
}
