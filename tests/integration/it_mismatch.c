/*
 * it_mismatch - a send and a receive of one tag with different sizes fail on
 * both sides with TCPX_ERR_PROTOCOL, the receiver's buffer is untouched, and
 * the connection stays usable.
 *
 * Cases (A sends, B receives, tag 5 and friends):
 *   1000 vs 900 bytes (inline), receive posted first
 *   1000 vs 900 bytes, send posted first (receiver finds it unexpected)
 *   900 vs 1000 bytes (receive larger than the send)
 *   4 MiB vs 4 MiB - 1 (chunked path), both orders
 * after each: a correct transfer with the same tag, both directions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define REGION (8u * MiB)

typedef struct mcase {
    size_t send, recv;
    int recv_first;
    uint64_t tag;
} mcase;

static const mcase cases[] = {
    {1000, 900, 1, 5},           {1000, 900, 0, 5},          {900, 1000, 1, 6},
    {4 * MiB, 4 * MiB - 1, 1, 7}, {4 * MiB, 4 * MiB - 1, 0, 8}, {20000, 8000, 0, 9},
};

static void good_transfer(tcpx_session *s, int is_a, const char *peer, hx_region *snd, hx_region *rcv,
                          uint64_t guard, uint64_t tag, size_t size, const char *what)
{
    /* both directions at once, same tag as the failed pair */
    uint64_t sseed = hx_mix(hx_seed, tag * 2 + (uint64_t)is_a), rseed = hx_mix(hx_seed, tag * 2 + (uint64_t)!is_a);
    size_t soff = 4099, roff = 333;
    hx_fill(snd->ptr + soff, size, sseed, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, peer, &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv->id, roff, size, tag));
    HX_OK(tcpx_xfer_post_send(x, snd->id, soff, size, tag));
    HX_WAIT_OK(x, 30000, what);
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN(what, rcv->ptr + roff, size, rseed, 0);
    hx_fill(rcv->ptr + roff, size, guard, roff);
    HX_CHECK_PATTERN("receive region after the good transfer", rcv->ptr, rcv->size, guard, 0);
}

static int child(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int is_a = hx_role()[0] == 'A';
    const char *peer = is_a ? "B" : "A";
    tcpx_session *s = hx_session(is_a ? "A" : "B", 2, 64 * 1024);
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, is_a ? 100 : 200);
    hx_region_init(s, &snd, REGION, hx_mix(hx_seed, is_a ? 101 : 201));
    hx_region_init(s, &rcv, REGION, guard);
    if (is_a) hx_connect_to(s, "B", fd);
    else hx_accept_from(s, "A", fd);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mcase *c = &cases[i];
        char what[160];
        snprintf(what, sizeof what, "case %zu: send %zu bytes vs receive %zu bytes, tag %" PRIu64 ", %s first", i,
                 c->send, c->recv, c->tag, c->recv_first ? "receive" : "send");
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(s, peer, &x));
        if (is_a) {
            hx_fill(snd.ptr + 100, c->send, hx_mix(hx_seed, 9000 + i), 0);
            if (c->recv_first) hx_expect_str(fd, "posted", 20000);
            HX_OK(tcpx_xfer_post_send(x, snd.id, 100, c->send, c->tag));
            if (!c->recv_first) hx_send_str(fd, "posted");
        } else {
            if (!c->recv_first) {
                hx_expect_str(fd, "posted", 20000);
                hx_progress_for(s, 50);
            }
            HX_OK(tcpx_xfer_post_recv(x, rcv.id, 200, c->recv, c->tag));
            if (c->recv_first) hx_send_str(fd, "posted");
        }
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, 15000, &ms);
        if (st != TCPX_ERR_PROTOCOL)
            HX_FAIL("%s: %s side: tcpx_xfer_wait returned %s after %" PRIu64 " ms, expected TCPX_ERR_PROTOCOL (%s)",
                    what, is_a ? "sender" : "receiver", tcpx_strerror(st), ms, tcpx_last_error());
        st = tcpx_xfer_test(x);
        HX_CHECK(st == TCPX_ERR_PROTOCOL, "%s: tcpx_xfer_test after the failure returned %s", what,
                 tcpx_strerror(st));
        tcpx_xfer_release(x);
        if (!is_a) {
            snprintf(what + strlen(what), sizeof what - strlen(what), ": receive buffer must be untouched");
            HX_CHECK_PATTERN(what, rcv.ptr, rcv.size, guard, 0);
        }
        HX_CHECK(tcpx_session_peer_status(s, peer) == TCPX_OK, "case %zu: peer status %s after a mismatch", i,
                 tcpx_strerror(tcpx_session_peer_status(s, peer)));
        /* the connection is still usable, with the same tag */
        hx_send_str(fd, "next");
        hx_expect_str(fd, "next", 20000);
        good_transfer(s, is_a, peer, &snd, &rcv, guard, c->tag, c->send, "correct transfer after a mismatch");
        good_transfer(s, is_a, peer, &snd, &rcv, guard, c->tag + 1000, 3 * MiB + 5, "large transfer after a mismatch");
        hx_log("case %zu ok: %zu vs %zu bytes -> TCPX_ERR_PROTOCOL on both sides, connection usable", i, c->send,
               c->recv);
        hx_send_str(fd, "case");
        hx_expect_str(fd, "case", 20000);
    }
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("mismatch", 110);
    int fds[2];
    hx_pair(fds);
    pid_t pb = hx_spawn("B", 100, child, (void *)(intptr_t)fds[1]);
    pid_t pa = hx_spawn("A", 100, child, (void *)(intptr_t)fds[0]);
    pid_t both[2] = {pa, pb};
    hx_wait_all(both, 2, 105000);
    hx_log("PASS");
    return 0;
}
