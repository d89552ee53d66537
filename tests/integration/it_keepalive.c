/*
 * it_keepalive - a quiet peer is not a stalled one, and a stalled one is
 * caught even when no byte of ours is left unacknowledged.
 *
 * Both sessions run with peer_timeout_ms = 1000.
 *   quiet: B posts a receive; A's application does nothing for 3.5 peer
 *      timeouts (its progress thread runs), then sends. B's receive completes
 *      with every byte right: a live peer answers B's keepalive asks. The
 *      connection also sits idle (nothing outstanding) as long, then works.
 *   stalled: B posts a receive from A and a one-sided READ of A's memory; the
 *      supervisor SIGSTOPs A while the connection is idle (nothing unacked,
 *      so TCP's user timeout cannot fire; A's kernel ACKs B's asks). Both of
 *      B's transfers must fail with TCPX_ERR_TIMEOUT within peer_timeout_ms +
 *      1.5 s of the stop, saying the peer is stalled; B's session then still
 *      works with C.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PEER_TIMEOUT_MS 1000
#define SIZE (3u * 1024 * 1024 + 5)

static int fd_ab[2], fd_bc[2], ctl_b[2];

static tcpx_session *make(const char *name)
{
    hx_sess_opts o = {.name = name, .channels = 2, .peer_timeout_ms = PEER_TIMEOUT_MS};
    return hx_session_ex(&o);
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = make("A");
    hx_region snd;
    hx_region_init(s, &snd, SIZE, hx_mix(hx_seed, 1));
    hx_fill(snd.ptr, SIZE, hx_mix(hx_seed, 11), 0);
    hx_connect_to(s, "B", fd_ab[0]);
    hx_send_memdesc(s, snd.id, fd_ab[0]);
    /* quiet: B waits on us; we say nothing for 3.5 timeouts */
    hx_expect_str(fd_ab[0], "posted", 30000);
    hx_sleep_ms(3500);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, SIZE, 1));
    HX_WAIT_OK(x, 30000, "send after a quiet spell");
    tcpx_xfer_release(x);
    /* idle: nothing outstanding either way for 3.5 timeouts */
    hx_sleep_ms(3500);
    HX_CHECK(tcpx_session_peer_status(s, "B") == TCPX_OK, "peer B failed over an idle spell: %s", tcpx_last_error());
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 7, SIZE - 7, 2));
    HX_WAIT_OK(x, 30000, "send after an idle spell");
    tcpx_xfer_release(x);
    hx_expect_str(fd_ab[0], "stop me", 30000);
    for (;;) hx_sleep_ms(100); /* stopped, then killed, in here */
}

static void expect_stalled(tcpx_xfer *x, uint64_t stop_at, const char *what)
{
    uint64_t ms;
    tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
    uint64_t lat = hx_now_ms() - stop_at;
    HX_CHECK(st == TCPX_ERR_TIMEOUT && ms < (uint64_t)HX_MS(29000), "%s from a stopped peer ended with %s after %" PRIu64
             " ms: %s", what, tcpx_strerror(st), ms, tcpx_last_error());
    HX_CHECK(strstr(tcpx_last_error(), "stalled") != NULL, "%s: the sentence does not say the peer stalled: %s", what,
             tcpx_last_error());
    HX_CHECK(lat <= (uint64_t)(PEER_TIMEOUT_MS + HX_MS(1500)), "%s: stalled peer detected %" PRIu64
             " ms after the stop (bound %d ms)", what, lat, PEER_TIMEOUT_MS + HX_MS(1500));
    hx_log("%s: %s %" PRIu64 " ms after SIGSTOP (%s)", what, tcpx_strerror(st), lat, tcpx_last_error());
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = make("B");
    hx_region rcv;
    uint64_t guard = hx_mix(hx_seed, 2);
    hx_region_init(s, &rcv, SIZE, guard);
    hx_accept_from(s, "A", fd_ab[1]);
    tcpx_memdesc a_mem;
    hx_recv_memdesc(fd_ab[1], &a_mem);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, SIZE, 1));
    hx_send_str(fd_ab[1], "posted");
    HX_WAIT_OK(x, 30000, "receive across A's quiet spell");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("bytes after the quiet spell", rcv.ptr, SIZE, hx_mix(hx_seed, 11), 0);
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, SIZE - 7, 2));
    HX_WAIT_OK(x, 30000, "receive after the idle spell");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("bytes after the idle spell", rcv.ptr, SIZE - 7, hx_mix(hx_seed, 11), 7);

    /* stalled: wait on A, then have it stopped */
    tcpx_xfer *rx, *rd;
    HX_OK(tcpx_xfer_create(s, "A", &rx));
    HX_OK(tcpx_xfer_post_recv(rx, rcv.id, 0, SIZE, 3));
    hx_progress_for(s, 200);
    hx_send_str(fd_ab[1], "stop me");
    hx_send_str(ctl_b[1], "stop A");
    uint64_t stop_at = hx_recv_u64(ctl_b[1], 30000);
    HX_OK(tcpx_xfer_create(s, "A", &rd));
    HX_OK(tcpx_xfer_post_read(rd, rcv.id, 0, &a_mem, 0, 4096));
    expect_stalled(rx, stop_at, "receive");
    expect_stalled(rd, stop_at, "READ");
    tcpx_xfer_release(rx);
    tcpx_xfer_release(rd);
    HX_CHECK(tcpx_session_peer_status(s, "A") == TCPX_ERR_TIMEOUT, "peer A status %s after the stall",
             tcpx_strerror(tcpx_session_peer_status(s, "A")));
    hx_send_str(ctl_b[1], "detected");

    /* the session still works with another peer */
    hx_accept_from(s, "C", fd_bc[1]);
    HX_OK(tcpx_xfer_create(s, "C", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, SIZE, 4));
    HX_WAIT_OK(x, 30000, "receive from C after A stalled");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("bytes from C", rcv.ptr, SIZE, hx_mix(hx_seed, 13), 0);
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_c(void *arg)
{
    (void)arg;
    tcpx_session *s = make("C");
    hx_region snd;
    hx_region_init(s, &snd, SIZE, 3);
    hx_fill(snd.ptr, SIZE, hx_mix(hx_seed, 13), 0);
    hx_connect_to(s, "B", fd_bc[0]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, SIZE, 4));
    HX_WAIT_OK(x, 30000, "C: send to B");
    tcpx_xfer_release(x);
    hx_region_fini(s, &snd);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("keepalive", 120);
    hx_pair(fd_ab);
    hx_pair(fd_bc);
    hx_pair(ctl_b);
    pid_t pa = hx_spawn("A", 100, proc_a, NULL);
    pid_t pb = hx_spawn("B", 100, proc_b, NULL);
    pid_t pc = hx_spawn("C", 100, proc_c, NULL);
    pid_t all[3] = {pa, pb, pc};
    hx_expect_str_watch(ctl_b[0], "stop A", all, 3, 60000);
    hx_sleep_ms(100); /* A is in its sleep loop, the connection idle */
    uint64_t t = hx_now_ms();
    hx_stop(pa, 5000);
    hx_send_u64(ctl_b[0], t);
    hx_log("stopped A while B waits on it");
    pid_t bc[2] = {pb, pc};
    hx_expect_str_watch(ctl_b[0], "detected", bc, 2, 60000);
    kill(pa, SIGKILL);
    hx_wait_killed(pa, SIGKILL, 10000);
    hx_wait_all(bc, 2, 60000);
    hx_log("PASS");
    return 0;
}
