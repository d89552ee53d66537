/*
 * it_onesided_kill - a peer SIGKILLed in the middle of a one-sided transfer,
 * in both roles, for WRITE and READ.
 *
 * Each case: an initiator I and a target T (passive, accept_any), 256 MiB
 * moving; as soon as bytes land (watched by whichever side they land at),
 * the supervisor kills one of them.
 *   initiator killed mid-WRITE / mid-READ: T notices (peer_status fails
 *     within the peer timeout + slack), its region deregisters (the dead
 *     peer's operations let go of it), and T then serves a new initiator;
 *   target killed mid-WRITE / mid-READ: I's transfer fails with TCPX_ERR_PEER
 *     (or TIMEOUT) within the bound, and I then works with another target.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define BIG (256u * MiB)
#define PEER_TIMEOUT_MS 4000
#define BOUND_MS (PEER_TIMEOUT_MS + HX_MS(4000))
#define T_WAIT 30000

typedef struct kcase {
    int write;          /* WRITE, else READ */
    int kill_target;    /* kill T, else I */
} kcase;

static kcase g_case;
static int boot_it[2], boot_nt[2], boot_in[2]; /* I-T, new initiator N - T, I - new target U */
static int ctl_i[2], ctl_t[2];                  /* [0] supervisor */

static tcpx_session *make(const char *name)
{
    hx_sess_opts o = {.name = name, .channels = 4, .peer_timeout_ms = PEER_TIMEOUT_MS, .accept_any = 1};
    return hx_session_ex(&o);
}

/* Spin until the first bytes of r change from the guard, then tell ctl. */
static void watch(const hx_region *r, uint64_t guard, tcpx_session *s, tcpx_xfer *x, int ctl, const char *what)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(T_WAIT);
    for (;;) {
        tcpx_status st = x ? tcpx_xfer_test(x) : tcpx_session_progress(s);
        HX_CHECK(st == TCPX_IN_PROGRESS || st == TCPX_OK, "%s: failed before anyone was killed: %s", what,
                 tcpx_last_error());
        HX_CHECK(!(x && st == TCPX_OK), "%s: the 256 MiB transfer completed before it could be interrupted", what);
        if (hx_landed(r->ptr, 64, guard, 0)) break;
        HX_CHECK(hx_now_ms() < deadline, "%s: no byte arrived", what);
    }
    hx_send_str(ctl, "moving");
}

/* A short WRITE and READ between a fresh pair: the survivor still works. */
static void small_exchange(tcpx_session *s, const char *peer, const hx_region *loc, const tcpx_memdesc *d)
{
    hx_fill(loc->ptr + 7, 100000, hx_mix(hx_seed, 0x51), 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, peer, &x));
    HX_OK(tcpx_xfer_post_write(x, loc->id, 7, d, 1000, 100000));
    HX_WAIT_OK(x, T_WAIT, "survivor: write");
    tcpx_xfer_release(x);
    HX_OK(tcpx_xfer_create(s, peer, &x));
    HX_OK(tcpx_xfer_post_read(x, loc->id, 200000, d, 1000, 100000));
    HX_WAIT_OK(x, T_WAIT, "survivor: read");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("survivor: read back", loc->ptr + 200000, 100000, hx_mix(hx_seed, 0x51), 0);
}

static void connect_with(tcpx_session *s, const char *peer, int fd, tcpx_memdesc *d)
{
    size_t len;
    void *blob = hx_recv_blob(fd, &len);
    hx_recv_memdesc(fd, d);
    HX_OK(tcpx_session_load_remote(s, peer, blob, len));
    HX_OK(tcpx_session_connect(s, peer));
    free(blob);
}

static int proc_i(void *arg)
{
    (void)arg;
    tcpx_session *s = make("I");
    hx_region loc;
    uint64_t guard = hx_mix(hx_seed, 0x1);
    hx_region_init(s, &loc, BIG, guard);
    tcpx_memdesc d;
    connect_with(s, "T", boot_it[0], &d);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "T", &x));
    if (g_case.write) HX_OK(tcpx_xfer_post_write(x, loc.id, 0, &d, 0, BIG));
    else HX_OK(tcpx_xfer_post_read(x, loc.id, 0, &d, 0, BIG));
    if (!g_case.write) watch(&loc, guard, s, x, ctl_i[1], "initiator (READ)");
    else hx_send_str(ctl_i[1], "posted");
    if (!g_case.kill_target) {
        for (;;) hx_sleep_ms(100); /* killed in here */
    }
    hx_expect_str(ctl_i[1], "killed", T_WAIT);
    uint64_t t0 = hx_now_ms(), ms = 0;
    tcpx_status st = hx_wait_timed(x, HX_MS(T_WAIT), &ms);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT, "%s from a killed target ended with %s: %s",
             g_case.write ? "WRITE" : "READ", tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(hx_now_ms() - t0 <= (uint64_t)BOUND_MS, "failure seen %" PRIu64 " ms after the kill (bound %d)",
             hx_now_ms() - t0, BOUND_MS);
    tcpx_xfer_release(x);
    HX_CHECK(tcpx_session_peer_status(s, "T") != TCPX_OK, "dead target still connected");
    /* The session works with another target. */
    tcpx_memdesc du;
    connect_with(s, "U", boot_in[0], &du);
    small_exchange(s, "U", &loc, &du);
    hx_send_str(boot_in[0], "done");
    hx_region_fini(s, &loc);
    tcpx_session_destroy(s);
    return 0;
}

/* T: passive; watches its region for a WRITE; after the initiator's death,
 * deregisters and serves N. */
static int proc_t(void *arg)
{
    (void)arg;
    tcpx_session *s = make("T");
    hx_region reg;
    uint64_t guard = hx_mix(hx_seed, 0x2);
    hx_region_init(s, &reg, BIG, guard);
    hx_send_blob(s, boot_it[1]);
    hx_send_memdesc(s, reg.id, boot_it[1]);
    if (g_case.write) watch(&reg, guard, s, NULL, ctl_t[1], "target (WRITE)");
    if (g_case.kill_target) {
        for (;;) {
            tcpx_session_progress(s);
            hx_sleep_ms(1); /* killed in here */
        }
    }
    hx_expect_str(ctl_t[1], "killed", T_WAIT);
    uint64_t t0 = hx_now_ms();
    while (tcpx_session_peer_status(s, "I") == TCPX_OK) {
        HX_CHECK(hx_now_ms() - t0 <= (uint64_t)BOUND_MS, "target: dead initiator still connected after %d ms",
                 BOUND_MS);
        hx_sleep_ms(5);
    }
    HX_OK(tcpx_mem_deregister(s, reg.id)); /* the dead peer's operations let go */
    reg.id = 0;
    HX_OK(tcpx_mem_register(s, reg.ptr, reg.size, TCPX_MEM_HOST, &reg.id));
    hx_send_blob(s, boot_nt[1]);
    hx_send_memdesc(s, reg.id, boot_nt[1]);
    hx_expect_str(boot_nt[1], "done", T_WAIT);
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

/* N (a new initiator of T) or U (a new target of I). */
static int proc_n(void *arg)
{
    (void)arg;
    tcpx_session *s = make("N");
    hx_region loc;
    hx_region_init(s, &loc, 1 * MiB, 0x3);
    tcpx_memdesc d;
    connect_with(s, "T", boot_nt[0], &d);
    small_exchange(s, "T", &loc, &d);
    hx_send_str(boot_nt[0], "done");
    hx_region_fini(s, &loc);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_u(void *arg)
{
    (void)arg;
    tcpx_session *s = make("U");
    hx_region reg;
    hx_region_init(s, &reg, 1 * MiB, 0x4);
    hx_send_blob(s, boot_in[1]);
    hx_send_memdesc(s, reg.id, boot_in[1]);
    hx_expect_str(boot_in[1], "done", T_WAIT);
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

static void run_case(int write, int kill_target)
{
    g_case = (kcase){write, kill_target};
    hx_pair(boot_it);
    hx_pair(boot_nt);
    hx_pair(boot_in);
    hx_pair(ctl_i);
    hx_pair(ctl_t);
    pid_t pi = hx_spawn("I", 90, proc_i, NULL);
    pid_t pt = hx_spawn("T", 90, proc_t, NULL);
    pid_t both[2] = {pi, pt};
    /* The side the bytes land at says "moving"; the other "posted" or nothing. */
    int lands_at_t = write;
    hx_expect_str_watch(lands_at_t ? ctl_t[0] : ctl_i[0], "moving", both, 2, T_WAIT);
    pid_t victim = kill_target ? pt : pi, survivor = kill_target ? pi : pt;
    HX_CHECK(kill(victim, SIGKILL) == 0, "kill");
    hx_wait_killed(victim, SIGKILL, 10000);
    hx_send_str(kill_target ? ctl_i[0] : ctl_t[0], "killed");
    pid_t other = kill_target ? hx_spawn("U", 60, proc_u, NULL) : hx_spawn("N", 60, proc_n, NULL);
    pid_t rest[2] = {survivor, other};
    hx_wait_all(rest, 2, 60000);
    hx_log("%s killed mid-%s: OK", kill_target ? "target" : "initiator", write ? "WRITE" : "READ");
    int *fds[] = {boot_it, boot_nt, boot_in, ctl_i, ctl_t};
    for (size_t i = 0; i < 5; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
}

int main(void)
{
    hx_init("onesided_kill", 400);
    for (int kill_target = 0; kill_target < 2; kill_target++)
        for (int write = 1; write >= 0; write--) run_case(write, kill_target);
    hx_log("PASS");
    return 0;
}
