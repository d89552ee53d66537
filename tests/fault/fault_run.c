/*
 * fault_run - one fault of the shim (fault_shim.c, LD_PRELOAD) against a
 * pair of sessions moving random data, and the outcome it must have.
 *
 *   fault_run <spec> <expect> <workload> [early]
 *
 * A (the faulty side) arms the shim with <spec> once connected to B (or,
 * with `early`, before its session exists, so the handshake is faulted
 * too), then both run a plan known to both: two-sided sends A->B and B->A,
 * one-sided WRITE lists A->B with a notification and READs of B's memory,
 * sizes from the workload (`small`: every message inline, up to 8 KiB, so
 * only control streams carry bytes; `medium`: up to 192 KiB, a few chunks
 * each; `mixed`: up to 4 MiB). Every
 * byte of every transfer that completes is checked, whatever the fault.
 * Expectations (bound: peer_timeout_ms 2000 + 3 s of the arming):
 *   ok      every transfer completes on both sides
 *   fail    the fault fired; B sees a transfer fail; every failure on either
 *           side is PEER, TRANSPORT, TIMEOUT or PROTOCOL, within the bound
 *   stall   B's waiting transfers fail with TIMEOUT within the bound, saying
 *           the peer stalled (A is stuck for good and is killed)
 *   detect  B fails with PROTOCOL naming a digest within the bound
 * Each side prints its time to the first error (the fault matrix of
 * docs/RELIABILITY.md).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PEER_TIMEOUT_MS 2000
#define MAXOPS 64

typedef struct op_plan {
    size_t size, off_a, off_b;
} op_plan;

typedef struct plan {
    int nsend, nback, nwrite, nread;
    op_plan send[MAXOPS], back[MAXOPS], write[MAXOPS], read[MAXOPS];
    size_t a_src, a_dst, b_src, b_dst; /* region sizes */
} plan;

static const char *g_spec, *g_expect;
static int g_early;
static plan g_plan;
static int fd_ab[2], ctl[2];

/* workload: 0 small (inline only), 1 medium (up to 192 KiB), 2 mixed (up to 4 MiB) */
static size_t big_max(int w) { return w == 1 ? 192u << 10 : 4u << 20; }

static size_t pick(hx_rng *r, int w)
{
    if (!w || hx_rng_below(r, 2)) return 1 + (size_t)hx_rng_below(r, 8192);
    return 8192 + (size_t)hx_rng_below(r, big_max(w) - 8192);
}

static void make_plan(int w)
{
    int small = w == 0;
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, 99));
    plan *p = &g_plan;
    memset(p, 0, sizeof *p);
    p->nsend = small ? 32 : 12;
    p->nback = small ? 16 : 6;
    p->nwrite = 4;
    p->nread = 4;
    for (int i = 0; i < p->nsend; i++) {
        p->send[i] = (op_plan){pick(&r, w), p->a_src, p->b_dst};
        p->a_src += p->send[i].size, p->b_dst += p->send[i].size;
    }
    for (int i = 0; i < p->nwrite; i++) {
        size_t size = small ? 1 + (size_t)hx_rng_below(&r, 2000) : 8192 + (size_t)hx_rng_below(&r, big_max(w) / 2);
        p->write[i] = (op_plan){size, p->a_src, p->b_dst};
        p->a_src += size, p->b_dst += size;
    }
    for (int i = 0; i < p->nback; i++) {
        p->back[i] = (op_plan){pick(&r, w), p->a_dst, p->b_src};
        p->a_dst += p->back[i].size, p->b_src += p->back[i].size;
    }
    for (int i = 0; i < p->nread; i++) {
        size_t size = small ? 1 + (size_t)hx_rng_below(&r, 8192) : 8192 + (size_t)hx_rng_below(&r, big_max(w) / 2);
        p->read[i] = (op_plan){size, p->a_dst, p->b_src};
        p->a_dst += size, p->b_src += size;
    }
}

/* The bytes of op i of a kind (0 send, 1 write, 2 back, 3 read). */
static uint64_t op_seed(int kind, int i) { return hx_mix(hx_seed, (uint64_t)(kind * 1000 + i)); }

typedef struct outcome {
    int n, nfail;
    uint64_t first_err_ms;
    tcpx_status first_st;
    char first_msg[300];
    int digest_named;
} outcome;

static uint64_t g_t0;

/* Wait for x and record its outcome; returns its status. */
static tcpx_status settle(tcpx_xfer *x, outcome *o, const char *what, int i)
{
    uint64_t left = g_t0 + (uint64_t)HX_MS(30000) - hx_now_ms();
    tcpx_status st = tcpx_xfer_wait(x, (int)left);
    uint64_t at = hx_now_ms() - g_t0;
    o->n++;
    if (st == TCPX_OK) return st;
    const char *msg = tcpx_last_error();
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TRANSPORT || st == TCPX_ERR_TIMEOUT || st == TCPX_ERR_PROTOCOL,
             "%s %d ended with %s: %s", what, i, tcpx_strerror(st), msg);
    HX_CHECK(!(st == TCPX_ERR_TIMEOUT && strstr(msg, "transfer not complete")),
             "%s %d still pending after 30 s (hung): %s", what, i, msg);
    if (strstr(msg, "digest")) o->digest_named = 1;
    if (!o->nfail++) {
        o->first_err_ms = at;
        o->first_st = st;
        snprintf(o->first_msg, sizeof o->first_msg, "%s", msg);
    }
    return st;
}

/* peer_digest: the other side saw a digest mismatch (a flipped data bit
 * fails only the transfer it hit, on whichever side received it). */
static void judge(const char *side, const outcome *o, int must_fail, int peer_digest)
{
    int bound = HX_MS(PEER_TIMEOUT_MS + 3000);
    if (o->nfail)
        hx_log("%s: %d of %d transfers failed, first after %" PRIu64 " ms: %s: %s", side, o->nfail, o->n,
               o->first_err_ms, tcpx_strerror(o->first_st), o->first_msg);
    else
        hx_log("%s: all %d transfers completed", side, o->n);
    if (!strcmp(g_expect, "ok")) {
        HX_CHECK(o->nfail == 0, "%s: %d transfers failed under fault %s", side, o->nfail, g_spec);
        return;
    }
    if (!must_fail) return;
    if (!strcmp(g_expect, "detect") && peer_digest && !o->nfail) return; /* caught over there */
    HX_CHECK(o->nfail > 0, "%s: no transfer failed under fault %s", side, g_spec);
    HX_CHECK(!o->nfail || o->first_err_ms <= (uint64_t)bound, "%s: first failure after %" PRIu64 " ms (bound %d)",
             side, o->first_err_ms, bound);
    if (!strcmp(g_expect, "stall"))
        HX_CHECK(o->first_st == TCPX_ERR_TIMEOUT && strstr(o->first_msg, "stalled"),
                 "%s: a stalled sender must fail with TIMEOUT saying so, got %s: %s", side,
                 tcpx_strerror(o->first_st), o->first_msg);
    if (!strcmp(g_expect, "detect"))
        HX_CHECK(o->first_st == TCPX_ERR_PROTOCOL && (o->digest_named || peer_digest),
                 "%s: a flipped bit must be caught by a digest (PROTOCOL), got %s: %s", side,
                 tcpx_strerror(o->first_st), o->first_msg);
}

/* A post under a fault may find the peer already failed: that counts as
 * the transfer failing at once (the slot is then NULL), with the status
 * that failed the peer, which the post's TCPX_ERR_PEER names in its text
 * ("peer B failed (TCPX_ERR_PROTOCOL): ..."). */
static tcpx_xfer *posted(tcpx_xfer *x, tcpx_status st, outcome *o, const char *what, int i)
{
    if (st == TCPX_OK) return x;
    const char *msg = tcpx_last_error();
    HX_CHECK(strcmp(g_expect, "ok") != 0, "%s %d: post failed with %s: %s", what, i, tcpx_strerror(st), msg);
    HX_CHECK(st == TCPX_ERR_PEER, "%s %d: post under a fault failed with %s: %s", what, i, tcpx_strerror(st), msg);
    const tcpx_status causes[] = {TCPX_ERR_PEER, TCPX_ERR_TRANSPORT, TCPX_ERR_TIMEOUT, TCPX_ERR_PROTOCOL};
    tcpx_status cause = st;
    for (size_t k = 0; k < sizeof causes / sizeof causes[0]; k++) {
        char named[64];
        snprintf(named, sizeof named, "failed (%s)", tcpx_strerror(causes[k]));
        if (strstr(msg, named)) cause = causes[k];
    }
    if (strstr(msg, "digest")) o->digest_named = 1;
    o->n++;
    if (!o->nfail++) {
        o->first_err_ms = hx_now_ms() - g_t0;
        o->first_st = cause;
        snprintf(o->first_msg, sizeof o->first_msg, "%s", msg);
    }
    if (x) tcpx_xfer_release(x);
    return NULL;
}

static int (*arm_fn(void))(const char *)
{
    int (*arm)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "tcpx_fault_arm");
    HX_CHECK(arm != NULL, "tcpx_fault_arm not found: run under LD_PRELOAD=libtcpx_fault.so");
    return arm;
}

/* Faults that must not fail anything run with the default peer timeout:
 * 1..7 bytes per system call moves a chunk in seconds, which is slow, not
 * stalled (a chunk still owed counts as silence until it is whole). */
static tcpx_session *make(const char *name)
{
    int pto = strcmp(g_expect, "ok") ? PEER_TIMEOUT_MS : 30000;
    hx_sess_opts o = {.name = name, .channels = 2, .peer_timeout_ms = pto, .chunk = 64 * 1024};
    return hx_session_ex(&o);
}

static int proc_a(void *arg)
{
    (void)arg;
    int (*arm)(const char *) = arm_fn();
    if (g_early) HX_CHECK(arm(g_spec) == 0, "arming %s", g_spec);
    tcpx_session *s = make("A");
    const plan *p = &g_plan;
    hx_region src, dst;
    hx_region_init(s, &src, p->a_src, 1);
    hx_region_init(s, &dst, p->a_dst, hx_mix(hx_seed, 5));
    for (int i = 0; i < p->nsend; i++) hx_fill(src.ptr + p->send[i].off_a, p->send[i].size, op_seed(0, i), 0);
    for (int i = 0; i < p->nwrite; i++) hx_fill(src.ptr + p->write[i].off_a, p->write[i].size, op_seed(1, i), 0);
    hx_connect_to(s, "B", fd_ab[0]);
    tcpx_memdesc bmem, bsrc; /* WRITE targets, READ sources */
    hx_recv_memdesc(fd_ab[0], &bmem);
    hx_recv_memdesc(fd_ab[0], &bsrc);
    hx_expect_str(fd_ab[0], "posted", 30000);
    if (!g_early) HX_CHECK(arm(g_spec) == 0, "arming %s", g_spec);
    g_t0 = hx_now_ms();
    tcpx_xfer *xs[4 * MAXOPS];
    int nx = 0;
    outcome o = {0};
    for (int i = 0; i < p->nsend; i++, nx++) {
        tcpx_status st = tcpx_xfer_create(s, "B", &xs[nx]);
        if (!st) st = tcpx_xfer_post_send(xs[nx], src.id, p->send[i].off_a, p->send[i].size, (uint64_t)i + 1);
        xs[nx] = posted(xs[nx], st, &o, "send", i);
    }
    for (int i = 0; i < p->nback; i++, nx++) {
        tcpx_status st = tcpx_xfer_create(s, "B", &xs[nx]);
        if (!st) st = tcpx_xfer_post_recv(xs[nx], dst.id, p->back[i].off_a, p->back[i].size, (uint64_t)i + 1000);
        xs[nx] = posted(xs[nx], st, &o, "receive", i);
    }
    for (int i = 0; i < p->nwrite; i++, nx++) {
        tcpx_block b = {src.id, p->write[i].off_a, &bmem, p->write[i].off_b, p->write[i].size};
        char note[32];
        int nl = snprintf(note, sizeof note, "write %d", i);
        tcpx_notif_msg nm = {note, (size_t)nl};
        tcpx_status st = tcpx_xfer_create(s, "B", &xs[nx]);
        if (!st) st = tcpx_xfer_post_write_list(xs[nx], 1, &b, &nm);
        xs[nx] = posted(xs[nx], st, &o, "WRITE", i);
    }
    for (int i = 0; i < p->nread; i++, nx++) {
        tcpx_status st = tcpx_xfer_create(s, "B", &xs[nx]);
        if (!st) st = tcpx_xfer_post_read(xs[nx], dst.id, p->read[i].off_a, &bsrc, p->read[i].off_b, p->read[i].size);
        xs[nx] = posted(xs[nx], st, &o, "READ", i);
    }
    char writes_ok[MAXOPS + 1] = {0};
    int k = 0;
    for (int i = 0; i < p->nsend; i++, k++)
        if (xs[k]) settle(xs[k], &o, "send", i);
    for (int i = 0; i < p->nback; i++, k++)
        if (xs[k] && settle(xs[k], &o, "receive", i) == TCPX_OK)
            HX_CHECK_PATTERN("A: received bytes", dst.ptr + p->back[i].off_a, p->back[i].size, op_seed(2, i), 0);
    for (int i = 0; i < p->nwrite; i++, k++) writes_ok[i] = xs[k] && settle(xs[k], &o, "WRITE", i) == TCPX_OK ? 'y' : 'n';
    for (int i = 0; i < p->nread; i++, k++)
        if (xs[k] && settle(xs[k], &o, "READ", i) == TCPX_OK)
            HX_CHECK_PATTERN("A: read bytes", dst.ptr + p->read[i].off_a, p->read[i].size, op_seed(3, i), 0);
    for (int i = 0; i < nx; i++)
        if (xs[i]) tcpx_xfer_release(xs[i]);
    unsigned long (*fired)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "tcpx_fault_fired");
    unsigned long nfired = fired ? fired() : 0;
    hx_log("A: fault %s took effect %lu times", g_spec, nfired);
    if (strcmp(g_expect, "ok") || strcmp(g_spec, "partial")) /* partial on small messages may not cut one */
        HX_CHECK(nfired > 0, "the fault %s never took effect", g_spec);
    judge("A", &o, 0, 0);
    writes_ok[p->nwrite] = o.digest_named ? 'd' : '-';
    hx_send_str(fd_ab[0], writes_ok);
    uint64_t t = hx_now_ms();
    tcpx_session_destroy(s);
    HX_CHECK(hx_now_ms() - t < (uint64_t)HX_MS(5000), "A: session destroy took %" PRIu64 " ms", hx_now_ms() - t);
    return 0;
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = make("B");
    const plan *p = &g_plan;
    hx_region src, dst;
    uint64_t guard = hx_mix(hx_seed, 6);
    hx_region_init(s, &src, p->b_src, 2);
    hx_region_init(s, &dst, p->b_dst, guard);
    for (int i = 0; i < p->nback; i++) hx_fill(src.ptr + p->back[i].off_b, p->back[i].size, op_seed(2, i), 0);
    for (int i = 0; i < p->nread; i++) hx_fill(src.ptr + p->read[i].off_b, p->read[i].size, op_seed(3, i), 0);
    hx_accept_from(s, "A", fd_ab[1]);
    hx_send_memdesc(s, dst.id, fd_ab[1]);
    hx_send_memdesc(s, src.id, fd_ab[1]);
    tcpx_xfer *xs[2 * MAXOPS];
    int nx = 0;
    for (int i = 0; i < p->nsend; i++) {
        HX_OK(tcpx_xfer_create(s, "A", &xs[nx]));
        HX_OK(tcpx_xfer_post_recv(xs[nx++], dst.id, p->send[i].off_b, p->send[i].size, (uint64_t)i + 1));
    }
    hx_send_str(fd_ab[1], "posted");
    g_t0 = hx_now_ms();
    outcome o = {0};
    for (int i = 0; i < p->nback; i++, nx++) {
        tcpx_status st = tcpx_xfer_create(s, "A", &xs[nx]);
        if (!st) st = tcpx_xfer_post_send(xs[nx], src.id, p->back[i].off_b, p->back[i].size, (uint64_t)i + 1000);
        xs[nx] = posted(xs[nx], st, &o, "send", i);
    }
    int k = 0;
    for (int i = 0; i < p->nsend; i++, k++)
        if (settle(xs[k], &o, "receive", i) == TCPX_OK)
            HX_CHECK_PATTERN("B: received bytes", dst.ptr + p->send[i].off_b, p->send[i].size, op_seed(0, i), 0);
    for (int i = 0; i < p->nback; i++, k++)
        if (xs[k]) settle(xs[k], &o, "send", i);
    for (int i = 0; i < nx; i++)
        if (xs[i]) tcpx_xfer_release(xs[i]);
    if (!strcmp(g_expect, "ok")) { /* every WRITE's notification, after its bytes */
        for (int i = 0; i < p->nwrite; i++) {
            char note[64];
            size_t n = hx_wait_notif(s, "A", note, sizeof note - 1, 30000);
            note[n] = 0;
            HX_CHECK(!strncmp(note, "write ", 6), "B: notification \"%s\"", note);
        }
    }
    if (strcmp(g_expect, "stall")) { /* A reports which WRITEs completed: their bytes must be here */
        size_t len;
        char *w = hx_recv(fd_ab[1], &len, 60000);
        /* A's word comes from another process: a call into our session
         * orders our reads after the engine thread that saw the WRITEs land. */
        HX_OK(tcpx_session_progress(s));
        for (int i = 0; i < p->nwrite && i < (int)len; i++)
            if (w[i] == 'y')
                HX_CHECK_PATTERN("B: written bytes", dst.ptr + p->write[i].off_b, p->write[i].size, op_seed(1, i), 0);
        judge("B", &o, 1, (int)len > p->nwrite && w[p->nwrite] == 'd');
        free(w);
    } else {
        judge("B", &o, 1, 0);
    }
    hx_send_str(ctl[1], "B done");
    tcpx_session_destroy(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fault_run <spec> ok|fail|stall|detect small|medium|mixed [early]\n");
        return 2;
    }
    g_spec = argv[1];
    g_expect = argv[2];
    g_early = argc > 4 && !strcmp(argv[4], "early");
    hx_init("fault", 120);
    make_plan(!strcmp(argv[3], "small") ? 0 : !strcmp(argv[3], "medium") ? 1 : 2);
    hx_pair(fd_ab);
    hx_pair(ctl);
    pid_t pa = hx_spawn("A", 100, proc_a, NULL);
    pid_t pb = hx_spawn("B", 100, proc_b, NULL);
    pid_t all[2] = {pa, pb};
    hx_expect_str_watch(ctl[0], "B done", &pb, 1, 90000); /* A may be done first */
    if (!strcmp(g_expect, "stall")) {
        kill(pa, SIGKILL);
        hx_wait_killed(pa, SIGKILL, 10000);
        hx_wait_all(&pb, 1, 30000);
    } else {
        hx_wait_all(all, 2, 30000);
    }
    hx_log("PASS: %s %s %s", g_spec, g_expect, argv[3]);
    return 0;
}
