/* handshake.c - connections being established, driven by the progress
 * engine (so a passive target needs no call):
 *
 *  - a CONNECTING peer dials its outgoing half (dial.c) and then claims the
 *    inbound comms of its incoming half (those greeted with its nonce and the
 *    role it waits for), then opens its control stream: READY; or fails at
 *    its deadline;
 *  - an INITIATE hello that no peer waits for is a peer connecting to us:
 *    with accept_any it is accepted (the peer is known by the name in the
 *    hello, or by the label under which its info was loaded), otherwise it
 *    waits for tcpx_session_accept;
 *  - both sessions connecting to each other at once: the connection opened
 *    by the lower token wins. The winner ignores the other hello until it is
 *    READY and then closes it; the loser drops its own dial and answers the
 *    winner's hello instead, on the same peer. A hello from a session we
 *    are connected to waits until that connection fails (a reconnect) or
 *    its deadline (a crossing loser that came late). A session connecting to
 *    itself takes its own INITIATE comms as its incoming half.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

static int self(const tcpx_session *s, const tcpx_peer *p) { return p->remote.token == s->token; }

tcpx_status hs_start(tcpx_session *s, tcpx_peer *p, int role, uint64_t nonce)
{
    p->state = PEER_CONNECTING;
    p->nonce = nonce;
    p->dial_role = role;
    p->connect_deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    tcpx_status st = dial_start(s, p, role);
    if (!st && self(s, p)) p->want_role = TCPX_HELLO_INITIATE; /* our own hello opens our incoming half */
    return st;
}

/* Claim the inbound comms of our incoming half; READY once all are here. */
static tcpx_status claim_incoming(tcpx_session *s, tcpx_peer *p)
{
    tcpx_net *n = s->net;
    if (!p->ctrl_recv) {
        tcpx_inbound *in;
        for (in = s->inbound; in; in = in->next)
            if (in->identified && in->lidx == 0 && in->msg.u.hello.nonce == p->nonce &&
                in->msg.u.hello.role == p->want_role)
                break;
        if (in) {
            in = inbound_take(s, 1, p->nonce, 0);
            p->ctrl_recv = in->comm;
            p->ctrl_urx = in->urx;
            p->nrx = in->msg.u.hello.channels;
            p->remote_max_chunk = in->msg.u.hello.max_chunk;
            p->ddgst = s->cfg.data_digest || (in->msg.u.hello.flags & TCPX_HELLO_DATA_DIGEST);
            p->credit_max = in->msg.u.hello.unx_max;
            p->credit_max_bytes = in->msg.u.hello.unx_max_bytes;
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
    if (p->ddgst && s->unpack)
        return tcpx_set_error(TCPX_ERR_INVALID,
                              "peer %s asks for a data digest, which this session's device-unpack transport cannot "
                              "check (its chunks land in GPU memory)",
                              p->name);
    tcpx_status st = ctrl_open(p);
    if (st) return st;
    p->state = PEER_READY;
    for (int c = 0; c < p->ntx; c++) p->tx[c].ddgst = p->ddgst;
    for (int c = 0; c < p->nrx; c++) p->rx[c].ddgst = p->ddgst;
    p->last_rx_ns = p->last_check_ns = p->last_data_ns = tcpx_now_ns();
    p->last_ask_ns = 0;
    return TCPX_OK;
}

/* Once READY, the other session's hello that lost the tie-break goes. */
static void discard_losers(tcpx_session *s, const tcpx_peer *p)
{
    for (tcpx_inbound *in = s->inbound; in; in = in->next)
        if (in->superseded && in->from_token == p->remote.token) {
            inbound_discard(s, in->msg.u.hello.nonce);
            in = s->inbound; /* the list changed: start again */
            if (!in) break;
        }
}

/* One step of a CONNECTING peer. */
static void step(tcpx_session *s, tcpx_peer *p)
{
    tcpx_status st = TCPX_OK;
    if (p->dial) {
        int done = 0;
        st = dial_progress(s, p, &done);
    }
    if (!st && !p->dial) st = claim_incoming(s, p);
    if (st == TCPX_OK && p->state == PEER_READY) {
        TCPX_INFO("connected with %s: %d channels out, %d in%s", p->name, p->ntx, p->nrx,
                  p->auto_accepted ? " (accepted on its own: accept_any)" : "");
        discard_losers(s, p);
        return;
    }
    if (st == TCPX_OK || st == TCPX_IN_PROGRESS) {
        if (!tcpx_past(p->connect_deadline)) return;
        st = tcpx_set_error(TCPX_ERR_TIMEOUT, "connection with %s not established within %d ms", p->name,
                            s->cfg.connect_timeout_ms);
    }
    char why[512];
    snprintf(why, sizeof why, "%s", tcpx_last_error());
    TCPX_WARN("connection with %s failed: %s", p->name, why);
    peer_fail(p, st, "%s", why);
}

/* The peer an INITIATE hello belongs to as its incoming half, if any. */
static tcpx_peer *hello_owner(tcpx_session *s, const tcpx_inbound *in)
{
    for (tcpx_peer *p = s->peers; p; p = p->next)
        if (p->state == PEER_CONNECTING && p->nonce == in->msg.u.hello.nonce && p->want_role == TCPX_HELLO_INITIATE)
            return p;
    return NULL;
}

static tcpx_peer *peer_by_token(tcpx_session *s, uint64_t token)
{
    for (tcpx_peer *p = s->peers; p; p = p->next)
        if (p->has_remote && p->remote.token == token && p->state != PEER_CLOSED) return p;
    return NULL;
}

tcpx_status hs_accept(tcpx_session *s, tcpx_inbound *in, const tcpx_conninfo *ci, const char *name, int automatic,
                      tcpx_peer **out)
{
    char label[TCPX_NAME_MAX]; /* name may belong to the peer replaced below */
    snprintf(label, sizeof label, "%s", name);
    tcpx_peer *old = peer_find(s, label);
    if (old) {
        if (old->state == PEER_READY || old->state == PEER_CONNECTING) {
            TCPX_INFO("peer %s: replaced by a new connection from %s", label, in->msg.u.hello.name);
            old->local_close = 1;
            peer_fail(old, TCPX_ERR_PEER, "replaced by a new connection from the same name");
        }
        peer_unlink(s, old);
    }
    tcpx_peer *p = peer_new(s, label);
    *out = p;
    if (!p) return tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    p->remote = *ci;
    p->has_remote = 1;
    p->auto_accepted = automatic;
    return hs_start(s, p, TCPX_HELLO_REPLY, in->msg.u.hello.nonce);
}

/* An INITIATE hello no peer waits for: a crossing connect, or (accept_any)
 * a peer connecting to us. Returns 1 when the inbound list changed. */
static int on_hello(tcpx_session *s, tcpx_inbound *in)
{
    tcpx_conninfo ci;
    if (tcpx_conninfo_decode(in->blob, in->msg.payload_len, &ci) || strcmp(ci.transport, s->net->name)) {
        TCPX_WARN("session %s: refused a connection from %s: %s", s->cfg.name, in->msg.u.hello.name,
                  tcpx_conninfo_decode(in->blob, in->msg.payload_len, &ci) ? tcpx_last_error()
                                                                           : "it uses another transport");
        inbound_discard(s, in->msg.u.hello.nonce);
        return 1;
    }
    tcpx_peer *q = peer_by_token(s, ci.token);
    if (q && q->state == PEER_CONNECTING && q->dial_role == TCPX_HELLO_INITIATE) {
        if (s->token < ci.token) { /* ours wins: theirs is closed once we are READY */
            in->superseded = 1;
            in->from_token = ci.token;
            TCPX_DEBUG("session %s: crossing connect with %s: ours wins", s->cfg.name, q->name);
            return 0;
        }
        TCPX_DEBUG("session %s: crossing connect with %s: theirs wins, answering it", s->cfg.name, q->name);
        peer_close_comms(q);
        q->remote = ci;
        tcpx_status st = hs_start(s, q, TCPX_HELLO_REPLY, in->msg.u.hello.nonce);
        if (st) peer_fail(q, st, "%s", tcpx_last_error());
        return 0;
    }
    if (q && q->state == PEER_READY) {
        /* Connected to that session already: this is the losing hello of a
         * crossing connect that arrived after we were READY (closed by its
         * sender, quietly dropped at its deadline), or the session
         * reconnecting, which closed its end of q first: wait until q fails. */
        if (!in->deferred) TCPX_DEBUG("session %s: hello from %s while connected to it: waiting", s->cfg.name, q->name);
        in->deferred = 1;
        return 0;
    }
    if (q && q->state == PEER_CONNECTING) {
        in->superseded = 1; /* already answering that session */
        in->from_token = ci.token;
        return 0;
    }
    if (!s->cfg.accept_any) return 0; /* for tcpx_session_accept */
    tcpx_peer *p = NULL;
    tcpx_status st = hs_accept(s, in, &ci, q ? q->name : in->msg.u.hello.name, 1, &p);
    if (st) {
        TCPX_WARN("session %s: cannot accept %s: %s", s->cfg.name, in->msg.u.hello.name, tcpx_last_error());
        if (p) peer_fail(p, st, "%s", tcpx_last_error());
    }
    return 0;
}

void hs_progress(tcpx_session *s, int force, uint64_t now)
{
    int connecting = 0;
    for (tcpx_peer *p = s->peers; p; p = p->next) connecting |= p->state == PEER_CONNECTING;
    inbound_progress(s, force || connecting, now);
    for (tcpx_inbound *in = s->inbound; in; in = in->next) {
        if (!in->identified || in->lidx != 0 || in->msg.u.hello.role != TCPX_HELLO_INITIATE || in->superseded ||
            hello_owner(s, in))
            continue;
        if (on_hello(s, in)) {
            in = s->inbound; /* the list changed: start again */
            if (!in) break;
        }
    }
    for (tcpx_peer *p = s->peers, *next; p; p = next) {
        next = p->next;
        if (p->state != PEER_CONNECTING) continue;
        p->refs++;
        step(s, p);
        /* A peer accepted on its own that never came up is forgotten. */
        if (p->state == PEER_FAILED && p->auto_accepted && p->linked) peer_unlink(s, p);
        peer_unref(p);
    }
}
