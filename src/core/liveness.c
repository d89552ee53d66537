/* liveness.c - telling a quiet peer from a stalled one.
 *
 * TCP_USER_TIMEOUT catches a peer whose kernel stops acknowledging; a peer
 * whose process is alive but whose sending stopped (a stuck thread, a
 * SIGSTOPped process over a connection whose kernel still ACKs) is caught
 * here. A side with operations waiting on a peer that has sent nothing (no
 * control message, no chunk) for peer_timeout_ms / 3 asks it for a
 * KEEPALIVE, again every third; a live peer's engine answers at once, and a
 * peer heard from in no way for peer_timeout_ms is failed with
 * TCPX_ERR_TIMEOUT: every pending transfer to or from it fails. So is a
 * peer that keeps answering but sends no chunk for peer_timeout_ms while
 * chunks it announced are still to come (its data path is stuck). A connection
 * with nothing outstanding exchanges nothing and is never failed for quiet.
 * Both ends must be progressed (the progress thread does it, or the
 * application at least every peer_timeout_ms / 3).
 */
#include "core/core.h"
#include "util/clock.h"

tcpx_status liveness_on_keepalive(tcpx_peer *p, const tcpx_msg *m)
{
    if (!(m->u.keepalive.flags & TCPX_KEEPALIVE_ASK)) return TCPX_OK; /* hearing it is the point */
    tcpx_msg a = {.type = TCPX_MSG_KEEPALIVE};
    return ctrl_send(p, &a);
}

/* Chunks announced to us on some data comm of p and not all in: its
 * sender has committed to sending them now. */
static int expecting_data(const tcpx_peer *p)
{
    for (int c = 0; c < p->nrx; c++)
        if (p->rx[c].tail > p->rx[c].head) return 1;
    return 0;
}

static int fail_stalled(tcpx_peer *p, uint64_t quiet, const char *what)
{
    peer_fail(p, TCPX_ERR_TIMEOUT,
              "%s from %s for %llu ms (peer_timeout_ms %d) while %zu operations waited on it: the peer is stalled",
              what, p->name, (unsigned long long)(quiet / 1000000ull), p->s->cfg.peer_timeout_ms, p->nops);
    return 1;
}

static uint64_t later(uint64_t a, uint64_t b) { return a > b ? a : b; }

int liveness_check(tcpx_peer *p, int heard, int heard_data, uint64_t now)
{
    now = later(now, later(later(p->last_check_ns, p->last_ask_ns), later(p->last_rx_ns, p->last_data_ns)));
    uint64_t timeout = (uint64_t)p->s->cfg.peer_timeout_ms * 1000000ull;
    /* Quiet is no sign without waiting ops (the clock starts with the wait),
     * nor over a stretch in which this session was not progressed at all. */
    int unwatched = now - p->last_check_ns > timeout / 3;
    p->last_check_ns = now;
    if (heard_data || unwatched || !expecting_data(p)) p->last_data_ns = now;
    if (heard || heard_data || !p->nops || unwatched) p->last_rx_ns = now;
    /* A peer whose engine answers but whose data stopped (a stuck sending
     * thread) is as stalled as a silent one. */
    if (now - p->last_data_ns > timeout) return fail_stalled(p, now - p->last_data_ns, "no announced data came");
    uint64_t quiet = now - p->last_rx_ns;
    if (quiet > timeout)
        return fail_stalled(p, quiet, "nothing came (no data, no control message, no keepalive)");
    if (quiet >= timeout / 3 && now - p->last_ask_ns >= timeout / 3) {
        tcpx_msg m = {.type = TCPX_MSG_KEEPALIVE};
        m.u.keepalive.flags = TCPX_KEEPALIVE_ASK;
        ctrl_send(p, &m); /* an error is in p->ctrl_err for the engine */
        p->last_ask_ns = now;
    }
    return 0;
}
