/*
 * it_release - releasing unfinished transfers.
 *
 *   a. A releases a receive nobody matched: returns at once; a later send of
 *      that tag is matched by A's next receive (inline and chunked sizes).
 *   b. A releases a send nobody received: B's later receive of that tag must
 *      not get the withdrawn bytes (its wait times out), then matches A's
 *      next send of the tag (inline and chunked sizes).
 *   c. race: B's receive is posted, A posts the matching send and releases it
 *      at once: B gets either all bytes or TCPX_ERR_PEER, or its receive
 *      stays pending until A progresses again (A then sends the tag again:
 *      B's receive gets the new bytes, or TCPX_ERR_PEER and a fresh receive
 *      gets them) - never a hang or wrong bytes.
 *   d. A releases a 128 MiB send while its bytes are moving: bounded; B's
 *      receive completes with every byte; the connection stays usable.
 *   e. B releases a 128 MiB receive while bytes are moving: bounded; after it
 *      returns no byte of B's region changes; A's send completes; usable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define BIG (128u * MiB)
#define REGION (BIG + 2 * MiB)
#define PEER_TIMEOUT_MS 5000

typedef struct ctx {
    tcpx_session *s;
    int fd, is_a;
    const char *peer;
    hx_region snd, rcv;
    uint64_t guard;
} ctx;

static void sync_step(ctx *c, const char *name)
{
    hx_send_str(c->fd, name);
    hx_expect_str(c->fd, name, 60000);
}

static void release_bounded(tcpx_xfer *x, int bound_ms, const char *what)
{
    uint64_t t0 = hx_now_ms();
    tcpx_xfer_release(x);
    uint64_t ms = hx_now_ms() - t0;
    HX_CHECK(ms <= (uint64_t)bound_ms, "%s: tcpx_xfer_release took %" PRIu64 " ms (bound %d ms)", what, ms, bound_ms);
}

static void expect_recv(ctx *c, size_t off, size_t size, uint64_t seed, const char *what)
{
    HX_CHECK_PATTERN(what, c->rcv.ptr + off, size, seed, 0);
    hx_fill(c->rcv.ptr + off, size, c->guard, off);
    char msg[160];
    snprintf(msg, sizeof msg, "%s: guard of the receive region", what);
    HX_CHECK_PATTERN(msg, c->rcv.ptr, 8 * MiB, c->guard, 0);
}

/* a. released receive */
static void case_a(ctx *c, size_t size, uint64_t tag)
{
    char what[128];
    snprintf(what, sizeof what, "a (%zu bytes): receive after a released receive", size);
    uint64_t seed = hx_mix(hx_seed, tag);
    tcpx_xfer *x;
    if (c->is_a) {
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 100, size, tag));
        hx_progress_for(c->s, 50);
        HX_CHECK(tcpx_xfer_test(x) == TCPX_IN_PROGRESS, "%s: unmatched receive not in progress", what);
        release_bounded(x, HX_MS(1000), "releasing an unmatched receive");
        hx_send_str(c->fd, "released");
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 5000 + size, size, tag));
        HX_WAIT_OK(x, 30000, what);
        tcpx_xfer_release(x);
        expect_recv(c, 5000 + size, size, seed, what);
        HX_CHECK_PATTERN("region of the released receive", c->rcv.ptr + 100, size, c->guard, 100);
    } else {
        hx_expect_str(c->fd, "released", 30000);
        hx_fill(c->snd.ptr, size, seed, 0);
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 0, size, tag));
        HX_WAIT_OK(x, 30000, what);
        tcpx_xfer_release(x);
    }
    sync_step(c, "a");
}

/* b. released send */
static void case_b(ctx *c, size_t size, uint64_t tag)
{
    char what[128];
    snprintf(what, sizeof what, "b (%zu bytes): receive after the matching send was released", size);
    uint64_t old_seed = hx_mix(hx_seed, tag), new_seed = hx_mix(hx_seed, tag + 1);
    tcpx_xfer *x;
    if (c->is_a) {
        hx_fill(c->snd.ptr + 10, size, old_seed, 0);
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 10, size, tag));
        hx_progress_for(c->s, 50); /* the announcement reaches B */
        HX_CHECK(tcpx_xfer_test(x) == TCPX_IN_PROGRESS, "%s: unreceived send not in progress", what);
        release_bounded(x, HX_MS(1000), "releasing an unreceived send");
        hx_send_str(c->fd, "released");
        hx_expect_str(c->fd, "send again", 30000);
        hx_fill(c->snd.ptr + 10 + size, size, new_seed, 0);
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 10 + size, size, tag));
        HX_WAIT_OK(x, 30000, what);
        tcpx_xfer_release(x);
    } else {
        hx_expect_str(c->fd, "released", 30000);
        hx_progress_for(c->s, 300); /* let the withdrawal arrive */
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 777, size, tag));
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, 400, &ms);
        if (st == TCPX_OK) {
            size_t bad = hx_verify(c->rcv.ptr + 777, size, old_seed, 0);
            HX_FAIL("%s: the receive matched the send that A had released (%s) - a withdrawn send was delivered", what,
                    bad == SIZE_MAX ? "its exact bytes arrived" : "bytes arrived");
        }
        HX_CHECK(st == TCPX_ERR_TIMEOUT,
                 "%s: the receive ended with %s after %" PRIu64 " ms; expected it to stay pending (TIMEOUT) because "
                 "the only send of its tag had been released before it was posted: %s",
                 what, tcpx_strerror(st), ms, tcpx_last_error());
        HX_CHECK_PATTERN("receive region while nothing may arrive", c->rcv.ptr, 8 * MiB, c->guard, 0);
        /* Still pending. This call also orders the read above before the
         * progress thread's later write of the new bytes for the race
         * detector, which cannot see that A sends them only after our
         * "send again" below. */
        HX_CHECK(tcpx_xfer_test(x) == TCPX_IN_PROGRESS, "%s: the receive ended before A sent again: %s", what,
                 tcpx_last_error());
        hx_send_str(c->fd, "send again");
        HX_WAIT_OK(x, 30000, what);
        tcpx_xfer_release(x);
        expect_recv(c, 777, size, new_seed, what);
    }
    sync_step(c, "b");
}

/* c. post + immediate release racing with a posted receive */
static void case_c(ctx *c, size_t size, uint64_t tag)
{
    char what[128];
    snprintf(what, sizeof what, "c (%zu bytes): send released right after posting", size);
    uint64_t seed = hx_mix(hx_seed, tag), seed2 = hx_mix(hx_seed, tag + 1);
    tcpx_xfer *x;
    if (c->is_a) {
        hx_expect_str(c->fd, "posted", 30000);
        hx_fill(c->snd.ptr, size, seed, 0);
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 0, size, tag));
        release_bounded(x, PEER_TIMEOUT_MS + HX_MS(2000), "releasing a just-posted send");
        char *outcome = hx_recv(c->fd, NULL, 30000);
        if (!strcmp(outcome, "resend")) {
            hx_fill(c->snd.ptr, size, seed2, 0);
            HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
            HX_OK(tcpx_xfer_post_send(x, c->snd.id, 0, size, tag));
            HX_WAIT_OK(x, 30000, what);
            tcpx_xfer_release(x);
        }
        free(outcome);
    } else {
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 64, size, tag));
        hx_send_str(c->fd, "posted");
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, HX_MS(2000), &ms);
        if (st == TCPX_OK) {
            expect_recv(c, 64, size, seed, what);
            hx_send_str(c->fd, "done");
            hx_log("%s: the receive got every byte", what);
        } else if (st == TCPX_ERR_PEER) {
            HX_CHECK(tcpx_session_peer_status(c->s, c->peer) == TCPX_OK,
                     "%s: a withdrawn send failed the whole connection", what);
            hx_send_str(c->fd, "done");
            hx_log("%s: the receive failed with TCPX_ERR_PEER (withdrawn)", what);
        } else {
            /* still pending: either the announcement never left A, or it
             * matched here and A has not yet answered the CTS (it will
             * when it next makes progress). A sends again: this receive then
             * gets the new bytes or fails with TCPX_ERR_PEER, and in the
             * latter case a fresh receive gets them. */
            HX_CHECK(st == TCPX_ERR_TIMEOUT, "%s: receive ended with %s: %s", what, tcpx_strerror(st),
                     tcpx_last_error());
            hx_send_str(c->fd, "resend");
            tcpx_status st2 = hx_wait_timed(x, HX_MS(30000), &ms);
            if (st2 == TCPX_ERR_PEER) {
                hx_log("%s: the receive had matched the withdrawn send: TCPX_ERR_PEER once A progressed", what);
                tcpx_xfer_release(x);
                hx_fill(c->rcv.ptr + 64, size, c->guard, 64);
                HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
                HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 64, size, tag));
                st2 = hx_wait_timed(x, HX_MS(30000), &ms);
            } else {
                hx_log("%s: the send never reached B; the resend matched", what);
            }
            HX_CHECK(st2 == TCPX_OK, "%s: receive of the resent message ended with %s after %" PRIu64 " ms: %s", what,
                     tcpx_strerror(st2), ms, tcpx_last_error());
            expect_recv(c, 64, size, seed2, what);
        }
        tcpx_xfer_release(x);
        if (st != TCPX_OK && st != TCPX_ERR_TIMEOUT) hx_fill(c->rcv.ptr + 64, size, c->guard, 64);
    }
    sync_step(c, "c");
}

/* spin on test() until bytes appear at p (or the bootstrap says so). The
 * chunks move on several streams, so the one at p may land last: a transfer
 * that completes first has nothing left in flight, and its release is then
 * checked like any other. */
static void wait_landed(tcpx_xfer *x, const uint8_t *p, uint64_t guard, uint64_t pos, const char *what)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
    for (;;) {
        tcpx_status st = tcpx_xfer_test(x);
        if (st == TCPX_OK) {
            hx_log("%s: the transfer completed before the bytes at %" PRIu64 " were seen", what, pos);
            return;
        }
        HX_CHECK(st == TCPX_IN_PROGRESS, "%s: the transfer reported %s before it could be released mid-flight", what,
                 tcpx_strerror(st));
        if (hx_landed(p, 64, guard, pos)) return;
        HX_CHECK(hx_now_ms() < deadline, "%s: no byte arrived in 30 s", what);
    }
}

static void exchange(ctx *c, uint64_t tag, const char *what)
{
    const size_t size = 1 * MiB + 11;
    uint64_t sseed = hx_mix(hx_seed, tag * 2 + (uint64_t)c->is_a), rseed = hx_mix(hx_seed, tag * 2 + (uint64_t)!c->is_a);
    hx_fill(c->snd.ptr + 5, size, sseed, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    HX_OK(tcpx_xfer_post_send(x, c->snd.id, 5, size, tag));
    HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 9, size, tag));
    HX_WAIT_OK(x, 30000, what);
    tcpx_xfer_release(x);
    expect_recv(c, 9, size, rseed, what);
}

/* d. sender releases mid-flight */
static void case_d(ctx *c)
{
    const char *what = "d: sender released a 128 MiB send mid-flight";
    uint64_t seed = hx_mix(hx_seed, 400);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    if (c->is_a) {
        hx_fill(c->snd.ptr, BIG, seed, 0);
        hx_expect_str(c->fd, "posted", 30000);
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 0, BIG, 400));
        uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
        int early = 0;
        while (!hx_poll_readable(c->fd, 0)) {
            tcpx_status st = tcpx_xfer_test(x);
            /* A fast machine moves 128 MiB in a few ms: the send may be done
             * before B's word that bytes arrived (the release then has
             * nothing in flight; B's side is checked the same). */
            if (st == TCPX_OK && !early++) hx_log("%s: the send completed before the release", what);
            HX_CHECK(st == TCPX_IN_PROGRESS || st == TCPX_OK, "%s: send reported %s before release", what,
                     tcpx_strerror(st));
            HX_CHECK(hx_now_ms() < deadline, "%s: B never saw bytes", what);
        }
        hx_expect_str(c->fd, "moving", 1000);
        release_bounded(x, PEER_TIMEOUT_MS + HX_MS(2000), what);
        hx_log("%s: release returned", what);
    } else {
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 0, BIG, 400));
        hx_send_str(c->fd, "posted");
        wait_landed(x, c->rcv.ptr, c->guard, 0, what);
        hx_send_str(c->fd, "moving");
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
        HX_CHECK(st == TCPX_OK,
                 "%s: the receive ended with %s after %" PRIu64 " ms; expected the in-flight send to be finished "
                 "by the release (\"operations with bytes in flight are finished first\"): %s",
                 what, tcpx_strerror(st), ms, tcpx_last_error());
        tcpx_xfer_release(x);
        HX_CHECK_PATTERN(what, c->rcv.ptr, BIG, seed, 0);
        hx_fill(c->rcv.ptr, BIG, c->guard, 0);
    }
    sync_step(c, "d");
    HX_CHECK(tcpx_session_peer_status(c->s, c->peer) == TCPX_OK, "%s: peer not OK afterwards", what);
    exchange(c, 401, "exchange after case d");
}

/* e. receiver releases mid-flight */
static void case_e(ctx *c)
{
    const char *what = "e: receiver released a 128 MiB receive mid-flight";
    uint64_t seed = hx_mix(hx_seed, 500);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    if (c->is_a) {
        hx_fill(c->snd.ptr, BIG, seed, 0);
        hx_expect_str(c->fd, "posted", 30000);
        HX_OK(tcpx_xfer_post_send(x, c->snd.id, 0, BIG, 500));
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
        HX_CHECK(st == TCPX_OK,
                 "%s: the send ended with %s after %" PRIu64 " ms; expected the receiver's release to finish the "
                 "in-flight receive: %s",
                 what, tcpx_strerror(st), ms, tcpx_last_error());
        tcpx_xfer_release(x);
    } else {
        HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, 0, BIG, 500));
        hx_send_str(c->fd, "posted");
        wait_landed(x, c->rcv.ptr, c->guard, 0, what);
        release_bounded(x, PEER_TIMEOUT_MS + HX_MS(2000), what);
        /* after release: nothing may write into the region */
        hx_fill(c->rcv.ptr, BIG, c->guard, 0);
        hx_progress_for(c->s, 300);
        HX_CHECK_PATTERN("receive region after release returned", c->rcv.ptr, BIG, c->guard, 0);
    }
    sync_step(c, "e");
    HX_CHECK(tcpx_session_peer_status(c->s, c->peer) == TCPX_OK, "%s: peer not OK afterwards", what);
    exchange(c, 501, "exchange after case e");
}

static int child(void *arg)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.fd = (int)(intptr_t)arg;
    c.is_a = hx_role()[0] == 'A';
    c.peer = c.is_a ? "B" : "A";
    hx_sess_opts o = {.name = c.is_a ? "A" : "B", .channels = 4, .chunk = 256 * 1024, .peer_timeout_ms = PEER_TIMEOUT_MS};
    c.s = hx_session_ex(&o);
    c.guard = hx_mix(hx_seed, c.is_a ? 0xA7 : 0xB7);
    hx_region_init(c.s, &c.snd, REGION, 3);
    hx_region_init(c.s, &c.rcv, REGION, c.guard);
    if (c.is_a) hx_connect_to(c.s, "B", c.fd);
    else hx_accept_from(c.s, "A", c.fd);

    case_a(&c, 3000, 100);
    case_a(&c, 3 * MiB + 1, 101);
    hx_log("a ok: released receives");
    case_b(&c, 1000, 200);
    case_b(&c, 4 * MiB, 210);
    hx_log("b ok: released sends are not delivered");
    for (int i = 0; i < 3; i++) {
        case_c(&c, 2000, 300 + 10 * (uint64_t)i);
        case_c(&c, 4 * MiB + 3, 350 + 10 * (uint64_t)i);
    }
    hx_log("c ok: post + immediate release");
    exchange(&c, 600, "exchange after cases a-c");
    case_d(&c);
    hx_log("d ok: sender release mid-flight");
    case_e(&c);
    hx_log("e ok: receiver release mid-flight");
    sync_step(&c, "end");
    hx_region_fini(c.s, &c.snd);
    hx_region_fini(c.s, &c.rcv);
    tcpx_session_destroy(c.s);
    return 0;
}

int main(void)
{
    hx_init("release", 110);
    int fds[2];
    hx_pair(fds);
    pid_t p[2];
    p[0] = hx_spawn("A", 100, child, (void *)(intptr_t)fds[0]);
    p[1] = hx_spawn("B", 100, child, (void *)(intptr_t)fds[1]);
    hx_wait_all(p, 2, 105000);
    hx_log("PASS");
    return 0;
}
