/*
 * it_disconnect - tcpx_session_disconnect fails pending operations on both
 * sides with TCPX_ERR_PEER.
 *
 *   1. idle pending ops: each side has an unmatched receive and an unreceived
 *      4 MiB send; A disconnects B. A's ops fail at once with TCPX_ERR_PEER,
 *      B's within peer_timeout_ms; both peers report an error afterwards.
 *   2. mid-transfer, fresh sessions: A sends 256 MiB; as soon as bytes land
 *      at B, A disconnects: A's send and B's receive fail with TCPX_ERR_PEER.
 *   3. the same with the receiver B disconnecting.
 * After each failure the released region is never written again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define BIG (256u * MiB)
#define PEER_TIMEOUT_MS 5000

typedef struct ctx {
    tcpx_session *s;
    int fd, is_a;
    const char *peer;
} ctx;

static tcpx_session *make(int is_a)
{
    hx_sess_opts o = {.name = is_a ? "A" : "B", .channels = 4, .peer_timeout_ms = PEER_TIMEOUT_MS};
    return hx_session_ex(&o);
}

static void connect_pair(ctx *c)
{
    c->s = make(c->is_a);
    if (c->is_a) hx_connect_to(c->s, "B", c->fd);
    else hx_accept_from(c->s, "A", c->fd);
}

static void expect_peer_err(tcpx_xfer *x, int timeout_ms, uint64_t bound_ms, const char *what)
{
    uint64_t ms;
    tcpx_status st = hx_wait_timed(x, timeout_ms, &ms);
    HX_CHECK(st == TCPX_ERR_PEER,
             "%s: tcpx_xfer_wait returned %s after %" PRIu64 " ms, expected TCPX_ERR_PEER: %s", what,
             tcpx_strerror(st), ms, tcpx_last_error());
    HX_CHECK(ms <= bound_ms, "%s: TCPX_ERR_PEER came after %" PRIu64 " ms (bound %" PRIu64 " ms)", what, ms, bound_ms);
}

static void expect_peer_gone(tcpx_session *s, const char *peer, const char *what)
{
    tcpx_status st = tcpx_session_peer_status(s, peer);
    HX_CHECK(st != TCPX_OK, "%s: peer_status(%s) is still TCPX_OK", what, peer);
    tcpx_xfer *x = NULL;
    st = tcpx_xfer_create(s, peer, &x);
    HX_CHECK(st != TCPX_OK, "%s: xfer_create to the disconnected peer %s succeeded", what, peer);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_NOT_FOUND, "%s: xfer_create returned %s", what, tcpx_strerror(st));
}

static void part1(ctx *c)
{
    hx_region r;
    uint64_t guard = hx_mix(hx_seed, c->is_a ? 1 : 2);
    hx_region_init(c->s, &r, 16 * MiB, guard);
    tcpx_xfer *xr, *xs;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &xr));
    HX_OK(tcpx_xfer_create(c->s, c->peer, &xs));
    uint64_t rtag = c->is_a ? 1 : 3, stag = c->is_a ? 2 : 4;
    HX_OK(tcpx_xfer_post_recv(xr, r.id, 0, 4 * MiB, rtag));
    HX_OK(tcpx_xfer_post_send(xs, r.id, 8 * MiB, 4 * MiB, stag));
    hx_progress_for(c->s, 100);
    hx_send_str(c->fd, "posted");
    hx_expect_str(c->fd, "posted", 30000);
    hx_progress_for(c->s, 100);
    HX_CHECK(tcpx_xfer_test(xr) == TCPX_IN_PROGRESS && tcpx_xfer_test(xs) == TCPX_IN_PROGRESS,
             "part 1: unmatched operations are not in progress");
    hx_send_str(c->fd, "checked");
    hx_expect_str(c->fd, "checked", 30000);
    if (c->is_a) {
        uint64_t t0 = hx_now_ms();
        HX_OK(tcpx_session_disconnect(c->s, "B"));
        uint64_t ms = hx_now_ms() - t0;
        HX_CHECK(ms <= (uint64_t)HX_MS(2000), "part 1: tcpx_session_disconnect took %" PRIu64 " ms", ms);
        hx_send_u64(c->fd, t0);
        expect_peer_err(xr, HX_MS(10000), HX_MS(2000), "part 1: A's pending receive after A disconnected B");
        expect_peer_err(xs, HX_MS(10000), HX_MS(2000), "part 1: A's pending send after A disconnected B");
    } else {
        uint64_t t_disc = hx_recv_u64(c->fd, 30000);
        expect_peer_err(xr, HX_MS(20000), PEER_TIMEOUT_MS + HX_MS(2000), "part 1: B's pending receive after A disconnected");
        expect_peer_err(xs, HX_MS(20000), PEER_TIMEOUT_MS + HX_MS(2000), "part 1: B's pending send after A disconnected");
        uint64_t lat = hx_now_ms() - t_disc;
        HX_CHECK(lat <= (uint64_t)(PEER_TIMEOUT_MS + HX_MS(3000)), "part 1: B learned of the disconnect after %" PRIu64 " ms", lat);
        hx_log("part 1: B's ops failed %" PRIu64 " ms after A disconnected", lat);
    }
    HX_CHECK(tcpx_xfer_test(xr) == TCPX_ERR_PEER, "part 1: test() after the failure is not TCPX_ERR_PEER");
    tcpx_xfer_release(xr);
    tcpx_xfer_release(xs);
    expect_peer_gone(c->s, c->peer, "part 1");
    hx_fill(r.ptr, r.size, guard, 0);
    hx_progress_for(c->s, 200);
    HX_CHECK_PATTERN("part 1: region after the failed ops were released", r.ptr, r.size, guard, 0);
    hx_region_fini(c->s, &r);
    hx_send_str(c->fd, "part1");
    hx_expect_str(c->fd, "part1", 30000);
}

/* parts 2 and 3: A sends 256 MiB; `a_disconnects` picks who disconnects */
static void part_mid(ctx *c, int a_disconnects)
{
    const char *what = a_disconnects ? "part 2 (sender disconnects mid-transfer)"
                                     : "part 3 (receiver disconnects mid-transfer)";
    hx_region r;
    uint64_t guard = hx_mix(hx_seed, a_disconnects ? 20 : 30);
    hx_region_init(c->s, &r, BIG, guard);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    int i_disconnect = c->is_a == a_disconnects;
    if (c->is_a) {
        hx_fill(r.ptr, BIG, hx_mix(hx_seed, 77), 0);
        hx_expect_str(c->fd, "posted", 30000);
        HX_OK(tcpx_xfer_post_send(x, r.id, 0, BIG, 9));
    } else {
        HX_OK(tcpx_xfer_post_recv(x, r.id, 0, BIG, 9));
        hx_send_str(c->fd, "posted");
    }
    /* the receiver watches for bytes, the sender for the receiver's word */
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
    tcpx_status early = TCPX_IN_PROGRESS; /* sender: a failure seen right after B's word */
    for (;;) {
        tcpx_status st = tcpx_xfer_test(x);
        if (c->is_a) {
            if (st != TCPX_IN_PROGRESS) {
                /* legitimate only when B disconnected right after telling us */
                HX_CHECK(!a_disconnects && hx_poll_readable(c->fd, 2000),
                         "%s: send reported %s before any disconnect", what, tcpx_strerror(st));
                hx_expect_str(c->fd, "moving", 1000);
                early = st;
                break;
            }
            if (hx_poll_readable(c->fd, 0)) {
                hx_expect_str(c->fd, "moving", 1000);
                break;
            }
        } else {
            HX_CHECK(st == TCPX_IN_PROGRESS, "%s: receive reported %s before the disconnect", what,
                     tcpx_strerror(st));
            if (hx_landed(r.ptr, 64, guard, 0)) {
                hx_send_str(c->fd, "moving");
                break;
            }
        }
        HX_CHECK(hx_now_ms() < deadline, "%s: no bytes moved within 30 s", what);
    }
    if (i_disconnect) {
        tcpx_status st = tcpx_xfer_test(x);
        HX_CHECK(st == TCPX_IN_PROGRESS, "%s: transfer finished (%s) before the disconnect", what, tcpx_strerror(st));
        uint64_t t0 = hx_now_ms();
        HX_OK(tcpx_session_disconnect(c->s, c->peer));
        HX_CHECK(hx_now_ms() - t0 <= (uint64_t)(PEER_TIMEOUT_MS + HX_MS(2000)), "%s: disconnect took %" PRIu64 " ms", what,
                 hx_now_ms() - t0);
        expect_peer_err(x, HX_MS(10000), HX_MS(2000), what);
    } else {
        uint64_t ms = 0;
        tcpx_status st = early != TCPX_IN_PROGRESS ? early : hx_wait_timed(x, HX_MS(20000), &ms);
        if (st == TCPX_OK && !c->is_a) {
            hx_log("%s: note: every byte had arrived before the disconnect", what);
            HX_CHECK_PATTERN(what, r.ptr, BIG, hx_mix(hx_seed, 77), 0);
        } else {
            HX_CHECK(st == TCPX_ERR_PEER, "%s: the peer's pending %s ended with %s after %" PRIu64
                     " ms, expected TCPX_ERR_PEER: %s",
                     what, c->is_a ? "send" : "receive", tcpx_strerror(st), ms, tcpx_last_error());
            HX_CHECK(ms <= (uint64_t)(PEER_TIMEOUT_MS + HX_MS(3000)), "%s: TCPX_ERR_PEER after %" PRIu64 " ms", what, ms);
        }
    }
    tcpx_xfer_release(x);
    expect_peer_gone(c->s, c->peer, what);
    if (!c->is_a) {
        hx_fill(r.ptr, BIG, guard, 0);
        hx_progress_for(c->s, 300);
        HX_CHECK_PATTERN("receive region after the failed receive was released", r.ptr, BIG, guard, 0);
    }
    hx_region_fini(c->s, &r);
    hx_send_str(c->fd, "mid");
    hx_expect_str(c->fd, "mid", 30000);
}

static int child(void *arg)
{
    ctx c = {.fd = (int)(intptr_t)arg, .is_a = hx_role()[0] == 'A'};
    c.peer = c.is_a ? "B" : "A";
    connect_pair(&c);
    part1(&c);
    hx_log("part 1 ok: pending operations fail with TCPX_ERR_PEER on both sides");
    tcpx_session_destroy(c.s);
    connect_pair(&c);
    part_mid(&c, 1);
    hx_log("part 2 ok");
    tcpx_session_destroy(c.s);
    connect_pair(&c);
    part_mid(&c, 0);
    hx_log("part 3 ok");
    tcpx_session_destroy(c.s);
    return 0;
}

int main(void)
{
    hx_init("disconnect", 110);
    int fds[2];
    hx_pair(fds);
    pid_t p[2];
    p[0] = hx_spawn("A", 100, child, (void *)(intptr_t)fds[0]);
    p[1] = hx_spawn("B", 100, child, (void *)(intptr_t)fds[1]);
    hx_wait_all(p, 2, 105000);
    hx_log("PASS");
    return 0;
}
