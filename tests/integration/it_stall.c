/*
 * it_stall - a stalled peer (SIGSTOP, alive but silent) fails the transfer
 * within peer_timeout_ms instead of hanging.
 *
 * A sends 256 MiB to B with peer_timeout_ms = 2000. As soon as bytes land at
 * B, the supervisor SIGSTOPs B. A's tcpx_xfer_wait (with a 30 s deadline of
 * its own) must return TCPX_ERR_TIMEOUT or TCPX_ERR_PEER within
 * peer_timeout_ms + 4 s of the stop; peer_status(B) is then an error. B is
 * SIGKILLed afterwards. A's session still connects to and works with C.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define BIG (256u * MiB)
#define PEER_TIMEOUT_MS 2000
#define BOUND_MS (PEER_TIMEOUT_MS + HX_MS(4000))

static int fd_ab[2], fd_ac[2], ctl_a[2], ctl_b[2];

/* C accepts A only after A has seen B stall, seconds later: its accept
 * needs the longer bound. */
static tcpx_session *make(const char *name, int connect_timeout_ms)
{
    hx_sess_opts o = {.name = name, .channels = 2, .peer_timeout_ms = PEER_TIMEOUT_MS,
                      .connect_timeout_ms = connect_timeout_ms};
    return hx_session_ex(&o);
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = make("A", 0);
    hx_region snd;
    hx_region_init(s, &snd, BIG, hx_mix(hx_seed, 1));
    hx_connect_to(s, "B", fd_ab[0]);
    hx_expect_str(fd_ab[0], "posted", 30000);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, BIG, 1));
    uint64_t ms;
    tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
    uint64_t fail_at = hx_now_ms();
    uint64_t stop_at = hx_recv_u64(ctl_a[1], 30000);
    uint64_t lat = fail_at > stop_at ? fail_at - stop_at : 0;
    HX_CHECK(st != TCPX_OK, "the send completed although the receiver was stopped mid-transfer");
    HX_CHECK(!(st == TCPX_ERR_TIMEOUT && ms >= (uint64_t)HX_MS(29000)),
             "tcpx_xfer_wait hit its own 30 s deadline: a stalled peer (SIGSTOP) was not detected within "
             "peer_timeout_ms=%d", PEER_TIMEOUT_MS);
    HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_ERR_PEER, "send to a stalled peer ended with %s: %s",
             tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(lat <= (uint64_t)BOUND_MS, "stalled peer detected %" PRIu64 " ms after the stop (bound %d ms)", lat, BOUND_MS);
    hx_log("stalled peer: %s %" PRIu64 " ms after SIGSTOP (%s)", tcpx_strerror(st), lat, tcpx_last_error());
    HX_CHECK(tcpx_session_peer_status(s, "B") != TCPX_OK, "peer B still OK after the stall was detected");
    uint64_t t0 = hx_now_ms();
    tcpx_xfer_release(x);
    HX_CHECK(hx_now_ms() - t0 <= (uint64_t)BOUND_MS, "release after the stall took %" PRIu64 " ms", hx_now_ms() - t0);
    hx_send_str(ctl_a[1], "detected");

    /* the session still works with another peer */
    hx_connect_to(s, "C", fd_ac[0]);
    const size_t size = 8 * MiB + 1;
    hx_fill(snd.ptr + 3, size, hx_mix(hx_seed, 7), 0);
    HX_OK(tcpx_xfer_create(s, "C", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 3, size, 7));
    HX_WAIT_OK(x, 30000, "send to C after B stalled");
    tcpx_xfer_release(x);
    hx_expect_str(fd_ac[0], "ok", 30000);
    hx_region_fini(s, &snd);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = make("B", 0);
    hx_region rcv;
    uint64_t guard = hx_mix(hx_seed, 2);
    hx_region_init(s, &rcv, BIG, guard);
    hx_accept_from(s, "A", fd_ab[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, BIG, 1));
    hx_send_str(fd_ab[1], "posted");
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
    for (;;) {
        tcpx_status st = tcpx_xfer_test(x);
        HX_CHECK(st == TCPX_IN_PROGRESS, "receiver: %s before the stall", tcpx_strerror(st));
        if (hx_landed(rcv.ptr, 64, guard, 0)) break;
        HX_CHECK(hx_now_ms() < deadline, "no bytes within 30 s");
    }
    hx_send_str(ctl_b[1], "moving");
    for (;;) { /* stopped, then killed, in here */
        tcpx_status st = tcpx_xfer_wait(x, 100);
        if (st != TCPX_ERR_TIMEOUT) hx_sleep_ms(100);
    }
}

static int proc_c(void *arg)
{
    (void)arg;
    tcpx_session *s = make("C", 40000);
    hx_region rcv;
    const size_t size = 8 * MiB + 1;
    hx_region_init(s, &rcv, size, 3);
    hx_accept_from(s, "A", fd_ac[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, size, 7));
    HX_WAIT_OK(x, 30000, "C: receive from A");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("C: bytes from A", rcv.ptr, size, hx_mix(hx_seed, 7), 0);
    hx_send_str(fd_ac[1], "ok");
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("stall", 100);
    hx_pair(fd_ab);
    hx_pair(fd_ac);
    hx_pair(ctl_a);
    hx_pair(ctl_b);
    pid_t pa = hx_spawn("A", 90, proc_a, NULL);
    pid_t pb = hx_spawn("B", 90, proc_b, NULL);
    pid_t pc = hx_spawn("C", 90, proc_c, NULL);
    pid_t all[3] = {pa, pb, pc};
    hx_expect_str_watch(ctl_b[0], "moving", all, 3, 60000);
    uint64_t t = hx_now_ms();
    hx_stop(pb, 5000);
    hx_send_u64(ctl_a[0], t);
    hx_log("stopped receiver B mid-transfer");
    pid_t ac[2] = {pa, pc};
    hx_expect_str_watch(ctl_a[0], "detected", ac, 2, 60000);
    kill(pb, SIGKILL);
    hx_wait_killed(pb, SIGKILL, 10000);
    hx_wait_all(ac, 2, 60000);
    hx_log("PASS");
    return 0;
}
