/*
 * it_peerkill - a peer SIGKILLed in the middle of a 256 MiB transfer.
 *
 * Four processes and the supervisor:
 *   part 1: A sends 256 MiB to B. B watches its receive buffer; as soon as
 *           bytes land it tells the supervisor, which SIGKILLs it. A's wait
 *           must fail with TCPX_ERR_PEER (or TIMEOUT) within peer_timeout_ms
 *           (+ slack) of the kill; peer_status(B) is an error; new transfers
 *           to B are refused.
 *   part 2: D connects to A and sends 256 MiB; A watches its buffer and has
 *           the supervisor SIGKILL D mid-transfer. A's receive must fail with
 *           TCPX_ERR_PEER (or TIMEOUT) in bounded time, and once released no
 *           byte of its region may change.
 *   part 3: A connects to a healthy peer C and exchanges 16 MiB both ways.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define BIG (256u * MiB)
#define PEER_TIMEOUT_MS 5000
#define FAIL_BOUND_MS (PEER_TIMEOUT_MS + HX_MS(3000))

static int fd_ab[2], fd_ad[2], fd_ac[2];
static int ctl_a[2], ctl_b[2]; /* [0] supervisor, [1] child */

static tcpx_session *make(const char *name)
{
    hx_sess_opts o = {.name = name, .channels = 4, .peer_timeout_ms = PEER_TIMEOUT_MS, .connect_timeout_ms = 10000};
    return hx_session_ex(&o);
}

/* Post nothing more; spin on test() until bytes land, then tell the
 * supervisor. Returns the status of the test that saw them (IN_PROGRESS
 * expected). */
static tcpx_status watch_and_report(tcpx_xfer *x, const hx_region *r, uint64_t guard, int ctl, const char *what)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
    for (;;) {
        tcpx_status st = tcpx_xfer_test(x);
        if (st != TCPX_IN_PROGRESS && st != TCPX_OK)
            HX_FAIL("%s: the transfer failed with %s before anyone was killed: %s", what, tcpx_strerror(st),
                    tcpx_last_error());
        if (hx_landed(r->ptr, 64, guard, 0)) {
            if (st == TCPX_OK) HX_FAIL("%s: the 256 MiB transfer completed before it could be interrupted", what);
            hx_send_str(ctl, "moving");
            return st;
        }
        HX_CHECK(hx_now_ms() < deadline, "%s: no byte arrived within 30 s", what);
    }
}

/* Wait for the transfer that must fail because its peer was killed. */
static void expect_killed_peer(tcpx_xfer *x, const char *what)
{
    uint64_t ms;
    tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
    uint64_t fail_at = hx_now_ms();
    uint64_t kill_at = hx_recv_u64(ctl_a[1], 30000);
    if (st == TCPX_OK) HX_FAIL("%s: tcpx_xfer_wait returned TCPX_OK although the peer was SIGKILLed mid-transfer", what);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT, "%s: tcpx_xfer_wait returned %s, expected TCPX_ERR_PEER: %s",
             what, tcpx_strerror(st), tcpx_last_error());
    uint64_t lat = fail_at > kill_at ? fail_at - kill_at : 0;
    HX_CHECK(!(st == TCPX_ERR_TIMEOUT && ms >= (uint64_t)HX_MS(29000)),
             "%s: tcpx_xfer_wait hit its own 30 s deadline: the dead peer was never detected", what);
    HX_CHECK(lat <= (uint64_t)FAIL_BOUND_MS, "%s: failure reported %" PRIu64 " ms after the kill (bound %d ms)", what, lat,
             FAIL_BOUND_MS);
    hx_log("%s: %s %" PRIu64 " ms after the kill (%s)", what, tcpx_strerror(st), lat, tcpx_last_error());
    st = tcpx_xfer_test(x);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT, "%s: tcpx_xfer_test after the failure returned %s", what,
             tcpx_strerror(st));
    uint64_t t0 = hx_now_ms();
    tcpx_xfer_release(x);
    HX_CHECK(hx_now_ms() - t0 <= (uint64_t)FAIL_BOUND_MS, "%s: releasing the failed transfer took %" PRIu64 " ms", what,
             hx_now_ms() - t0);
}

static void expect_peer_dead(tcpx_session *s, const char *peer)
{
    tcpx_status st = tcpx_session_peer_status(s, peer);
    HX_CHECK(st != TCPX_OK && st != TCPX_ERR_NOT_FOUND,
             "peer_status(%s) after it was killed is %s, expected the error that failed it", peer, tcpx_strerror(st));
    tcpx_xfer *x = NULL;
    st = tcpx_xfer_create(s, peer, &x);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT || st == TCPX_ERR_NOT_FOUND,
             "xfer_create to the killed peer %s returned %s, expected TCPX_ERR_PEER", peer, tcpx_strerror(st));
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = make("A");
    hx_region snd, rcv;
    uint64_t rguard = hx_mix(hx_seed, 0xA1);
    hx_region_init(s, &snd, BIG + 4096, hx_mix(hx_seed, 0xA0));
    hx_region_init(s, &rcv, BIG + 4096, rguard);

    /* part 1: A -> B, B killed */
    hx_connect_to(s, "B", fd_ab[0]);
    hx_expect_str(fd_ab[0], "posted", 30000);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 1, BIG, 1));
    expect_killed_peer(x, "part 1: send to a receiver killed mid-transfer");
    expect_peer_dead(s, "B");

    /* part 2: D -> A, D killed */
    hx_accept_from(s, "D", fd_ad[0]);
    HX_OK(tcpx_xfer_create(s, "D", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, BIG, 2));
    hx_send_str(fd_ad[0], "posted");
    watch_and_report(x, &rcv, rguard, ctl_a[1], "part 2 (receiver)");
    expect_killed_peer(x, "part 2: receive from a sender killed mid-transfer");
    expect_peer_dead(s, "D");
    /* after release, nothing may write into the region any more */
    hx_fill(rcv.ptr, rcv.size, rguard, 0);
    hx_progress_for(s, 300);
    HX_CHECK_PATTERN("receive region after the failed receive was released", rcv.ptr, rcv.size, rguard, 0);
    HX_OK(tcpx_mem_deregister(s, rcv.id));
    rcv.id = 0;
    HX_CHECK(tcpx_session_peer_status(s, "B") != TCPX_OK, "B came back to life");

    /* part 3: a healthy peer */
    hx_send_str(fd_ac[0], "go");
    hx_connect_to(s, "C", fd_ac[0]);
    const size_t size = 16 * MiB + 5;
    uint64_t sseed = hx_mix(hx_seed, 31), rseed = hx_mix(hx_seed, 32);
    hx_region r3;
    uint64_t g3 = hx_mix(hx_seed, 33);
    hx_region_init(s, &r3, size + 8192, g3);
    hx_fill(snd.ptr + 10, size, sseed, 0);
    HX_OK(tcpx_xfer_create(s, "C", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 10, size, 3));
    HX_OK(tcpx_xfer_post_recv(x, r3.id, 4096, size, 4));
    HX_WAIT_OK(x, 30000, "part 3: exchange with healthy peer C");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("part 3: bytes from C", r3.ptr + 4096, size, rseed, 0);
    HX_CHECK_PATTERN("part 3: guard before", r3.ptr, 4096, g3, 0);
    HX_CHECK_PATTERN("part 3: guard after", r3.ptr + 4096 + size, 4096, g3, 4096 + size);
    hx_send_str(fd_ac[0], "end");
    hx_expect_str(fd_ac[0], "end", 30000);
    hx_region_fini(s, &r3);
    hx_region_fini(s, &snd);
    hx_region_fini(NULL, &rcv); /* deregistered above: only unmaps */
    tcpx_session_destroy(s);
    return 0;
}

static int proc_b(void *arg) /* receiver, killed */
{
    (void)arg;
    tcpx_session *s = make("B");
    hx_region rcv;
    uint64_t guard = hx_mix(hx_seed, 0xB1);
    hx_region_init(s, &rcv, BIG, guard);
    hx_accept_from(s, "A", fd_ab[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, BIG, 1));
    hx_send_str(fd_ab[1], "posted");
    watch_and_report(x, &rcv, guard, ctl_b[1], "part 1 (receiver)");
    for (;;) { /* keep receiving until killed */
        tcpx_status st = tcpx_xfer_wait(x, 100);
        if (st == TCPX_OK) {
            hx_log("note: the receive completed before the kill landed");
            break;
        }
        HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS, "receiver: wait returned %s", tcpx_strerror(st));
    }
    hx_sleep_ms(60000);
    return 9;
}

static int proc_d(void *arg) /* sender, killed */
{
    (void)arg;
    tcpx_session *s = make("D");
    hx_region snd;
    hx_region_init(s, &snd, BIG, hx_mix(hx_seed, 0xD0));
    hx_connect_to(s, "A", fd_ad[1]);
    hx_expect_str(fd_ad[1], "posted", 30000);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, BIG, 2));
    for (;;) {
        tcpx_status st = tcpx_xfer_wait(x, 100);
        if (st == TCPX_OK) {
            hx_log("note: the send completed before the kill landed");
            break;
        }
        HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS, "sender: wait returned %s", tcpx_strerror(st));
    }
    hx_sleep_ms(60000);
    return 9;
}

static int proc_c(void *arg) /* healthy */
{
    (void)arg;
    tcpx_session *s = make("C");
    const size_t size = 16 * MiB + 5;
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, 0xC1);
    hx_region_init(s, &snd, size, hx_mix(hx_seed, 0xC0));
    hx_region_init(s, &rcv, size + 2, guard);
    hx_fill(snd.ptr, size, hx_mix(hx_seed, 32), 0);
    hx_expect_str(fd_ac[1], "go", 60000);
    hx_accept_from(s, "A", fd_ac[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 1, size, 3));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, size, 4));
    HX_WAIT_OK(x, 30000, "C: exchange with A");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("C: bytes from A", rcv.ptr + 1, size, hx_mix(hx_seed, 31), 0);
    HX_CHECK_PATTERN("C: guard", rcv.ptr, 1, guard, 0);
    HX_CHECK_PATTERN("C: guard", rcv.ptr + 1 + size, 1, guard, 1 + size);
    hx_expect_str(fd_ac[1], "end", 30000);
    hx_send_str(fd_ac[1], "end");
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

static void kill_now(pid_t victim, const char *who)
{
    uint64_t t = hx_now_ms();
    HX_CHECK(kill(victim, SIGKILL) == 0, "kill %s", who);
    hx_wait_killed(victim, SIGKILL, 10000);
    hx_send_u64(ctl_a[0], t);
    hx_log("killed %s mid-transfer", who);
}

int main(void)
{
    hx_init("peerkill", 110);
    hx_pair(fd_ab);
    hx_pair(fd_ad);
    hx_pair(fd_ac);
    hx_pair(ctl_a);
    hx_pair(ctl_b);
    pid_t pa = hx_spawn("A", 100, proc_a, NULL);
    pid_t pb = hx_spawn("B", 100, proc_b, NULL);
    pid_t pd = hx_spawn("D", 100, proc_d, NULL);
    pid_t pc = hx_spawn("C", 100, proc_c, NULL);
    pid_t all[4] = {pa, pb, pd, pc};
    hx_expect_str_watch(ctl_b[0], "moving", all, 4, 60000);
    kill_now(pb, "receiver B");
    pid_t rest[3] = {pa, pd, pc};
    hx_expect_str_watch(ctl_a[0], "moving", rest, 3, 60000);
    kill_now(pd, "sender D");
    pid_t live[2] = {pa, pc};
    hx_wait_all(live, 2, 60000);
    hx_log("PASS");
    return 0;
}
