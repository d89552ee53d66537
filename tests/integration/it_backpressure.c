/*
 * it_backpressure - sends that no receive is posted for yet: bounded on the
 * receiver, queued on the sender, and all delivered once receives come.
 *
 *   flood    A posts 100,000 sends of 64 bytes (distinct tags) before B posts
 *            any receive (B holds at most its default 65,536); both peers
 *            stay OK; B then posts the receives in reverse tag order (the
 *            time to post them is logged, bounded generously) and checks
 *            every byte.
 *   small    B grants 16 sends / 64 KiB: 400 sends of mixed sizes (inline,
 *            medium, up to 1 MiB) over 7 repeated tags wait mostly on A; B
 *            posts half the receives (reverse tag order), checks both peers
 *            OK, then the rest; same-tag order holds; every byte checked.
 *   release  B grants 16: A releases a transfer whose sends wait for credit
 *            (and one whose first sends are announced): the releases finish
 *            promptly, and the credit comes back (later sends complete).
 *   kill     B grants 16 and is killed while A's sends wait for credit: A's
 *            transfer fails with a status, bounded, and A's peer is failed.
 *   sender_killed  A posts 70,000 sends and is killed while B holds 65,536
 *            of them: B's peer fails (bounded), what it held is freed (in
 *            one pass), a transfer to it is refused.
 * Under ASan each side ends with a leak check.
 * `it_backpressure CASE` runs one case.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define HX_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HX_LEAK_CHECK 1
#endif
#endif
#ifdef HX_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

#define KiB 1024u
#define MiB (1024u * 1024u)

typedef struct plan {
    size_t n;
    size_t *size, *off;
    uint64_t *tag, *seed;
    size_t total;          /* bytes of the region holding every message */
} plan;

static void plan_free(plan *p)
{
    free(p->size);
    free(p->off);
    free(p->tag);
    free(p->seed);
}

/* ntags 0: tag i for message i; else tags from a set of ntags. mixed: sizes
 * of every kind, else 64 bytes each. */
static void make_plan(plan *p, size_t n, unsigned ntags, int mixed, uint64_t salt)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, salt));
    p->n = n;
    p->size = calloc(n, sizeof *p->size);
    p->off = calloc(n, sizeof *p->off);
    p->tag = calloc(n, sizeof *p->tag);
    p->seed = calloc(n, sizeof *p->seed);
    HX_CHECK(p->size && p->off && p->tag && p->seed, "test bug: plan allocation");
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = 64;
        if (mixed) {
            uint64_t k = hx_rng_below(&r, 10);
            if (k < 7) sz = 1 + (size_t)hx_rng_below(&r, 8 * KiB);                /* inline */
            else if (k < 9) sz = 8 * KiB + 1 + (size_t)hx_rng_below(&r, 120 * KiB);
            else sz = 128 * KiB + (size_t)hx_rng_below(&r, MiB - 128 * KiB + 1);
        }
        p->size[i] = sz;
        p->off[i] = cur;
        cur += (sz + 63) & ~(size_t)63;
        p->tag[i] = ntags ? 1000 + hx_rng_below(&r, ntags) : 5000000 + i;
        p->seed[i] = hx_mix(hx_seed, salt * 1000003 + i);
    }
    p->total = cur + 64;
}

/* Receive order: tags from the highest down; within a tag, in send order
 * (the k-th receive of a tag takes the k-th send of it). */
static size_t *reverse_tag_order(const plan *p)
{
    size_t *ord = calloc(p->n, sizeof *ord);
    HX_CHECK(ord, "test bug: order allocation");
    size_t k = 0;
    uint64_t hi = 0, lo = UINT64_MAX;
    for (size_t i = 0; i < p->n; i++) {
        if (p->tag[i] > hi) hi = p->tag[i];
        if (p->tag[i] < lo) lo = p->tag[i];
    }
    if (hi - lo < 64) { /* a few tags: one pass each */
        for (uint64_t t = hi + 1; t-- > lo;)
            for (size_t i = 0; i < p->n; i++)
                if (p->tag[i] == t) ord[k++] = i;
    } else { /* distinct, increasing with i */
        for (size_t i = p->n; i-- > 0;) ord[k++] = i;
    }
    HX_CHECK(k == p->n, "test bug: order covers %zu of %zu", k, p->n);
    return ord;
}

static tcpx_mem_id *ids_of(const hx_region *r, size_t n)
{
    tcpx_mem_id *ids = calloc(n, sizeof *ids);
    HX_CHECK(ids, "test bug: ids allocation");
    for (size_t i = 0; i < n; i++) ids[i] = r->id;
    return ids;
}

static void peer_ok(tcpx_session *s, const char *peer, const char *when)
{
    tcpx_status st = tcpx_session_peer_status(s, peer);
    HX_CHECK(st == TCPX_OK, "%s: peer %s is %s: %s", when, peer, tcpx_strerror(st), tcpx_last_error());
}

/* Post every send of the plan in one transfer. */
static tcpx_xfer *send_all(tcpx_session *s, hx_region *r, const plan *p)
{
    for (size_t i = 0; i < p->n; i++) hx_fill(r->ptr + p->off[i], p->size[i], p->seed[i], 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    tcpx_mem_id *ids = ids_of(r, p->n);
    HX_OK(tcpx_xfer_post_send_batch(x, p->n, ids, p->off, p->size, p->tag));
    free(ids);
    return x;
}

/* Post the receives ord[from, to) in one transfer; the milliseconds the
 * post took in *ms. */
static tcpx_xfer *recv_some(tcpx_session *s, hx_region *r, const plan *p, const size_t *ord, size_t from, size_t to,
                            uint64_t *ms)
{
    size_t n = to - from;
    tcpx_mem_id *ids = ids_of(r, n);
    size_t *offs = calloc(n, sizeof *offs), *sizes = calloc(n, sizeof *sizes);
    uint64_t *tags = calloc(n, sizeof *tags);
    HX_CHECK(offs && sizes && tags, "test bug: allocation");
    for (size_t k = 0; k < n; k++) {
        size_t i = ord[from + k];
        offs[k] = p->off[i];
        sizes[k] = p->size[i];
        tags[k] = p->tag[i];
    }
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    uint64_t t0 = hx_now_ms();
    HX_OK(tcpx_xfer_post_recv_batch(x, n, ids, offs, sizes, tags));
    if (ms) *ms = hx_now_ms() - t0;
    free(ids);
    free(offs);
    free(sizes);
    free(tags);
    return x;
}

static void check_all(const hx_region *r, const plan *p, const char *what)
{
    for (size_t i = 0; i < p->n; i++) {
        char w[96];
        snprintf(w, sizeof w, "%s: message %zu (tag %" PRIu64 ", %zu bytes)", what, i, p->tag[i], p->size[i]);
        HX_CHECK_PATTERN(w, r->ptr + p->off[i], p->size[i], p->seed[i], 0);
    }
}

/* Wait for a transfer while checking the peer stays OK. */
static void wait_ok_watch(tcpx_session *s, const char *peer, tcpx_xfer *x, int timeout_ms, const char *what)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        tcpx_status st = tcpx_xfer_wait(x, 200);
        if (st == TCPX_OK) return;
        HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS, "%s: %s: %s", what, tcpx_strerror(st),
                 tcpx_last_error());
        peer_ok(s, peer, what);
        HX_CHECK(hx_now_ms() < deadline, "%s: not done after %d ms", what, timeout_ms);
    }
}

static const char *g_case;

static tcpx_session *open_side(int is_a, int fd, int small_budget)
{
    if (!is_a && small_budget) {
        setenv("TCPX_UNEXPECTED_MAX", "16", 1);
        setenv("TCPX_UNEXPECTED_MAX_BYTES", "65536", 1);
    }
    tcpx_session *s = hx_session(is_a ? "A" : "B", 4, 256 * KiB);
    if (is_a) hx_connect_to(s, "B", fd);
    else hx_accept_from(s, "A", fd);
    return s;
}

/* ------------------------------------------------------------ flood, small */

static void run_flood(int is_a, int fd, int small)
{
    tcpx_session *s = open_side(is_a, fd, small);
    plan p;
    if (small) make_plan(&p, 400, 7, 1, 2);
    else make_plan(&p, 100000, 0, 0, 1);
    hx_region r;
    hx_region_init(s, &r, p.total, 9);
    if (is_a) {
        tcpx_xfer *x = send_all(s, &r, &p);
        hx_progress_for(s, 300);
        peer_ok(s, "B", "sends posted, nothing received yet");
        hx_send_str(fd, "posted");
        wait_ok_watch(s, "B", x, HX_MS(60000), "sends");
        tcpx_xfer_release(x);
        hx_send_str(fd, "sends done");
    } else {
        hx_expect_str(fd, "posted", HX_MS(60000));
        hx_progress_for(s, 500); /* every RTS the budget allows is in */
        peer_ok(s, "A", "holding the unexpected sends");
        hx_fill(r.ptr, r.size, 5, 0);
        size_t *ord = reverse_tag_order(&p);
        uint64_t ms1 = 0, ms2 = 0;
        size_t half = small ? p.n / 2 : p.n;
        tcpx_xfer *x1 = recv_some(s, &r, &p, ord, 0, half, &ms1);
        if (small) {
            hx_progress_for(s, 200);
            peer_ok(s, "A", "half the receives posted");
        }
        tcpx_xfer *x2 = half < p.n ? recv_some(s, &r, &p, ord, half, p.n, &ms2) : NULL;
        uint64_t t0 = hx_now_ms();
        wait_ok_watch(s, "A", x1, HX_MS(60000), "receives");
        if (x2) wait_ok_watch(s, "A", x2, HX_MS(60000), "second half of the receives");
        hx_log("%zu receives posted in reverse tag order in %" PRIu64 " ms, all in %" PRIu64 " ms later", p.n,
               ms1 + ms2, hx_now_ms() - t0);
        HX_CHECK(ms1 + ms2 < (uint64_t)HX_MS(5000), "posting %zu receives took %" PRIu64 " ms", p.n, ms1 + ms2);
        check_all(&r, &p, small ? "small budget" : "flood");
        peer_ok(s, "A", "after every receive");
        free(ord);
        tcpx_xfer_release(x1);
        if (x2) tcpx_xfer_release(x2);
        hx_expect_str(fd, "sends done", HX_MS(60000));
    }
    hx_send_str(fd, "bye");
    hx_expect_str(fd, "bye", HX_MS(30000));
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    plan_free(&p);
}

/* ------------------------------------------------------------ release */

static void run_release(int is_a, int fd)
{
    tcpx_session *s = open_side(is_a, fd, 1);
    plan p1, p2, p3; /* 40 announced or waiting, 30 all waiting, 40 received */
    make_plan(&p1, 40, 0, 1, 11);
    make_plan(&p2, 30, 0, 1, 12);
    make_plan(&p3, 40, 0, 1, 13);
    for (size_t i = 0; i < p2.n; i++) p2.tag[i] += 100000;
    for (size_t i = 0; i < p3.n; i++) p3.tag[i] += 200000;
    hx_region r;
    hx_region_init(s, &r, p1.total + p2.total + p3.total, 9);
    if (is_a) {
        tcpx_xfer *x1 = send_all(s, &r, &p1);
        hx_progress_for(s, 200);
        for (size_t i = 0; i < p2.n; i++) p2.off[i] += p1.total;
        tcpx_xfer *x2 = send_all(s, &r, &p2);
        hx_progress_for(s, 100);
        HX_EXPECT(tcpx_xfer_test(x1), TCPX_IN_PROGRESS);
        HX_EXPECT(tcpx_xfer_test(x2), TCPX_IN_PROGRESS);
        uint64_t t0 = hx_now_ms();
        tcpx_xfer_release(x2); /* every send waits for credit */
        uint64_t t1 = hx_now_ms();
        tcpx_xfer_release(x1); /* 16 announced (withdrawn: CANCEL), the rest waiting */
        uint64_t t2 = hx_now_ms();
        hx_log("released 30 waiting sends in %" PRIu64 " ms, 40 partly announced in %" PRIu64 " ms", t1 - t0, t2 - t1);
        HX_CHECK(t2 - t0 < (uint64_t)HX_MS(4000), "releases took %" PRIu64 " ms", t2 - t0);
        peer_ok(s, "B", "after the releases");
        for (size_t i = 0; i < p3.n; i++) p3.off[i] += p1.total + p2.total;
        tcpx_xfer *x3 = send_all(s, &r, &p3);
        hx_send_str(fd, "posted");
        wait_ok_watch(s, "B", x3, HX_MS(30000), "sends after the releases (the credit came back)");
        tcpx_xfer_release(x3);
        hx_send_str(fd, "sends done");
    } else {
        hx_expect_str(fd, "posted", HX_MS(30000));
        for (size_t i = 0; i < p3.n; i++) p3.off[i] += p1.total + p2.total;
        hx_fill(r.ptr, r.size, 5, 0);
        size_t *ord = reverse_tag_order(&p3);
        tcpx_xfer *x = recv_some(s, &r, &p3, ord, 0, p3.n, NULL);
        wait_ok_watch(s, "A", x, HX_MS(30000), "receives after the releases");
        for (size_t i = 0; i < p3.n; i++)
            HX_CHECK_PATTERN("after release", r.ptr + p3.off[i], p3.size[i], p3.seed[i], 0);
        tcpx_xfer_release(x);
        free(ord);
        hx_expect_str(fd, "sends done", HX_MS(30000));
    }
    hx_send_str(fd, "bye");
    hx_expect_str(fd, "bye", HX_MS(30000));
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    plan_free(&p1);
    plan_free(&p2);
    plan_free(&p3);
}

/* ------------------------------------------------------------ kill */

static void run_kill(int is_a, int fd)
{
    tcpx_session *s = open_side(is_a, fd, 1);
    plan p;
    make_plan(&p, 200, 0, 1, 21);
    hx_region r;
    hx_region_init(s, &r, p.total, 9);
    if (is_a) {
        tcpx_xfer *x = send_all(s, &r, &p);
        hx_progress_for(s, 300);
        HX_EXPECT(tcpx_xfer_test(x), TCPX_IN_PROGRESS);
        hx_send_str(fd, "waiting");
        uint64_t ms = 0;
        tcpx_status st = hx_wait_timed(x, HX_MS(20000), &ms);
        HX_CHECK(st != TCPX_OK && st != TCPX_IN_PROGRESS && st != TCPX_ERR_TIMEOUT,
                 "sends waiting for credit of a killed peer ended with %s after %" PRIu64 " ms: %s",
                 tcpx_strerror(st), ms, tcpx_last_error());
        hx_log("sends waiting for credit failed %" PRIu64 " ms after the kill: %s: %s", ms, tcpx_strerror(st),
               tcpx_last_error());
        HX_CHECK(tcpx_session_peer_status(s, "B") != TCPX_OK, "the killed peer still reads OK");
        tcpx_xfer_release(x);
    } else {
        hx_expect_str(fd, "waiting", HX_MS(30000));
        kill(getpid(), SIGKILL);
    }
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    plan_free(&p);
}

static void run_sender_killed(int is_a, int fd)
{
    tcpx_session *s = open_side(is_a, fd, 0);
    plan p;
    make_plan(&p, 70000, 0, 0, 31);
    hx_region r;
    hx_region_init(s, &r, p.total, 9);
    if (is_a) {
        tcpx_xfer *x = send_all(s, &r, &p);
        hx_progress_for(s, 300);
        hx_send_str(fd, "posted");
        hx_expect_str(fd, "holding", HX_MS(30000));
        (void)x;
        kill(getpid(), SIGKILL);
    } else {
        hx_expect_str(fd, "posted", HX_MS(30000));
        hx_progress_for(s, 500);
        peer_ok(s, "A", "holding the unexpected sends");
        hx_send_str(fd, "holding");
        uint64_t t0 = hx_now_ms(), deadline = t0 + (uint64_t)HX_MS(20000);
        tcpx_status st;
        while ((st = tcpx_session_peer_status(s, "A")) == TCPX_OK) {
            HX_CHECK(hx_now_ms() < deadline, "the killed sender still reads OK");
            hx_progress_for(s, 10);
        }
        hx_log("killed sender's peer failed after %" PRIu64 " ms: %s", hx_now_ms() - t0, tcpx_strerror(st));
        tcpx_xfer *x;
        tcpx_status cst = tcpx_xfer_create(s, "A", &x);
        HX_CHECK(cst != TCPX_OK, "a transfer to the failed peer was created");
        uint64_t t1 = hx_now_ms();
        hx_region_fini(s, &r);
        tcpx_session_destroy(s);
        hx_log("session with the failed peer closed in %" PRIu64 " ms", hx_now_ms() - t1);
        plan_free(&p);
        return;
    }
}

static int child(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int is_a = hx_role()[0] == 'A';
    if (!strcmp(g_case, "flood")) run_flood(is_a, fd, 0);
    else if (!strcmp(g_case, "small")) run_flood(is_a, fd, 1);
    else if (!strcmp(g_case, "release")) run_release(is_a, fd);
    else if (!strcmp(g_case, "kill")) run_kill(is_a, fd);
    else if (!strcmp(g_case, "sender_killed")) run_sender_killed(is_a, fd);
    else HX_FAIL("unknown case %s", g_case);
#ifdef HX_LEAK_CHECK
    /* children leave with _exit, which skips the leak check at exit */
    __lsan_do_leak_check();
#endif
    return 0;
}

int main(int argc, char **argv)
{
    g_case = argc > 1 ? argv[1] : "flood";
    hx_init("backpressure", 3 * HX_MS(100));
    int fds[2];
    hx_pair(fds);
    pid_t p[2];
    p[0] = hx_spawn("A", HX_MS(100), child, (void *)(intptr_t)fds[0]);
    p[1] = hx_spawn("B", HX_MS(100), child, (void *)(intptr_t)fds[1]);
    if (!strcmp(g_case, "kill")) {
        hx_wait_killed(p[1], SIGKILL, HX_MS(60000));
        hx_wait_ok(p[0], HX_MS(60000));
    } else if (!strcmp(g_case, "sender_killed")) {
        hx_wait_killed(p[0], SIGKILL, HX_MS(60000));
        hx_wait_ok(p[1], HX_MS(60000));
    } else {
        hx_wait_all(p, 2, HX_MS(95000));
    }
    hx_log("PASS");
    return 0;
}
