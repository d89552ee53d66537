/*
 * it_onesided - one-sided WRITE and READ of block lists between two
 * processes: A initiates, B is a passive target (its application posts
 * nothing; its progress thread serves A).
 *
 * Phases, both processes walking them in lockstep over the bootstrap:
 *   1. single blocks, WRITE then READ, sizes 1 B .. 8 MiB (--big: 256 MiB),
 *      odd offsets;
 *   2. lists of 1 .. 4096 blocks of random sizes (zero-size ones among
 *      them) at scattered offsets on both sides, WRITE and READ, with and
 *      without an attached notification (random length, empty included);
 *   3. 32 lists in flight at once, writes and reads mixed, waited in random
 *      order; the writes' notifications arrive in posting order;
 *   4. one transfer holding a WRITE list, a READ list and a two-sided send;
 *   5. standalone notifications both ways, in order, every byte checked.
 * Every byte of every block is checked where it lands, and every byte of
 * the landing region outside the blocks must still hold its guard pattern.
 *
 *   it_onesided [--channels N] [--chunk BYTES] [--big]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define T_WAIT 60000

typedef struct opts {
    int channels;
    size_t chunk;
    int big;
} opts;

static opts g_o = {4, 0, 0};
static int fds[2];
static size_t g_region = 48u * MiB;

typedef struct blk {
    size_t loff, roff, size;
    uint64_t seed;
} blk;

typedef struct plan {
    size_t n;
    blk *b;
    int write;
    int notif;              /* attach one */
    size_t notif_len;
    uint64_t nseed;
} plan;

static size_t pick_block_size(hx_rng *r, size_t max)
{
    switch (hx_rng_below(r, 10)) {
    case 0: return 0;
    case 1: return 1 + (size_t)hx_rng_below(r, 16);
    case 2: return 4096;
    case 3: return 65536 + (size_t)hx_rng_below(r, 3);
    case 4: return max / 2 + (size_t)hx_rng_below(r, max / 2);
    default: return 1 + (size_t)hx_rng_below(r, max < 20000 ? max : 20000);
    }
}

/* n blocks laid out in [base, base + span) of both regions: in order on
 * A's side, in a shuffled order on B's, with random gaps. Same on both
 * processes (the shared seed). */
static void make_plan(plan *p, uint64_t salt, size_t n, size_t max_block, size_t base, size_t span)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, salt));
    p->n = n;
    p->b = calloc(n ? n : 1, sizeof *p->b);
    HX_CHECK(p->b, "out of memory");
    size_t *order = calloc(n ? n : 1, sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = i;
    hx_shuffle(&r, order, n);
    size_t lpos = base + (size_t)hx_rng_below(&r, 4096), rpos = base + (size_t)hx_rng_below(&r, 4096);
    for (size_t i = 0; i < n; i++) {
        p->b[i].size = pick_block_size(&r, max_block);
        p->b[i].seed = hx_mix(hx_seed, salt * 100003 + i);
    }
    for (size_t i = 0; i < n; i++) {
        p->b[i].loff = lpos;
        lpos += p->b[i].size + (size_t)hx_rng_below(&r, 3) * (size_t)hx_rng_below(&r, 700);
        blk *q = &p->b[order[i]];
        q->roff = rpos;
        rpos += q->size + (size_t)hx_rng_below(&r, 3) * (size_t)hx_rng_below(&r, 700);
    }
    HX_CHECK(lpos <= base + span && rpos <= base + span, "test bug: plan %" PRIu64 " does not fit (%zu, %zu of %zu)",
             salt, lpos - base, rpos - base, span);
    p->write = (int)hx_rng_below(&r, 2);
    p->notif = (int)hx_rng_below(&r, 2);
    p->notif_len = hx_rng_below(&r, 4) ? (size_t)hx_rng_below(&r, TCPX_NOTIF_MAX + 1) : 0;
    p->nseed = hx_mix(hx_seed, salt ^ 0x40714);
    free(order);
}

static void plan_free(plan *p) { free(p->b); }

typedef struct ctx {
    tcpx_session *s;
    int is_a, fd;
    const char *peer;
    hx_region reg;
    uint64_t guard;
    tcpx_memdesc remote;    /* A: B's region */
} ctx;

/* The blocks' bytes on the sending side of the move. */
static void fill_blocks(ctx *c, const plan *p, int local)
{
    for (size_t i = 0; i < p->n; i++)
        hx_fill(c->reg.ptr + (local ? p->b[i].loff : p->b[i].roff), p->b[i].size, p->b[i].seed, 0);
}

/* The blocks where they landed; then put back to the guard pattern. */
static void check_blocks(ctx *c, const plan *p, int local, const char *what)
{
    char msg[200];
    for (size_t i = 0; i < p->n; i++) {
        size_t off = local ? p->b[i].loff : p->b[i].roff;
        snprintf(msg, sizeof msg, "%s: block %zu of %zu (%zu bytes at %zu)", what, i, p->n, p->b[i].size, off);
        HX_CHECK_PATTERN(msg, c->reg.ptr + off, p->b[i].size, p->b[i].seed, 0);
    }
    for (size_t i = 0; i < p->n; i++) {
        size_t off = local ? p->b[i].loff : p->b[i].roff;
        hx_fill(c->reg.ptr + off, p->b[i].size, c->guard, off);
    }
}

/* Every byte of the region holds its guard pattern again. */
static void check_guard(ctx *c, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: bytes outside the blocks (guard)", what);
    HX_CHECK_PATTERN(msg, c->reg.ptr, c->reg.size, c->guard, 0);
}

static void check_landed(ctx *c, const plan *p, int local, const char *what)
{
    check_blocks(c, p, local, what);
    check_guard(c, what);
}

/* The sending side puts the blocks back to its guard pattern. */
static void restore(ctx *c, const plan *p, int local)
{
    for (size_t i = 0; i < p->n; i++) {
        size_t off = local ? p->b[i].loff : p->b[i].roff;
        hx_fill(c->reg.ptr + off, p->b[i].size, c->guard, off);
    }
}

static tcpx_block *blocks_of(const ctx *c, const plan *p)
{
    tcpx_block *v = calloc(p->n ? p->n : 1, sizeof *v);
    for (size_t i = 0; i < p->n; i++)
        v[i] = (tcpx_block){c->reg.id, p->b[i].loff, &c->remote, p->b[i].roff, p->b[i].size};
    return v;
}

static void notif_bytes(const plan *p, uint8_t *buf) { hx_fill(buf, p->notif_len, p->nseed, 0); }

/* A posts the plan's list on x. */
static void post_plan(ctx *c, tcpx_xfer *x, const plan *p)
{
    tcpx_block *v = blocks_of(c, p);
    uint8_t nb[TCPX_NOTIF_MAX];
    notif_bytes(p, nb);
    tcpx_notif_msg nm = {nb, p->notif_len};
    if (p->write) HX_OK(tcpx_xfer_post_write_list(x, p->n, v, p->notif ? &nm : NULL));
    else HX_OK(tcpx_xfer_post_read_list(x, p->n, v, p->notif ? &nm : NULL));
    free(v);
}

static void expect_notif(ctx *c, const plan *p, const char *what)
{
    uint8_t buf[TCPX_NOTIF_MAX];
    size_t len = hx_wait_notif(c->s, c->peer, buf, sizeof buf, T_WAIT);
    HX_CHECK(len == p->notif_len, "%s: notification of %zu bytes, expected %zu", what, len, p->notif_len);
    HX_CHECK_PATTERN(what, buf, len, p->nseed, 0);
}

/* One plan, A initiating, moved and checked by both. */
static void run_plan(ctx *c, const plan *p, const char *what)
{
    if (c->is_a) {
        if (p->write) fill_blocks(c, p, 1);
        else hx_expect_str(c->fd, "filled", T_WAIT);
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        post_plan(c, x, p);
        HX_WAIT_OK(x, T_WAIT, what);
        tcpx_xfer_release(x);
        if (p->write) {
            restore(c, p, 1);
            if (!p->notif) hx_send_str(c->fd, "written");
        } else {
            check_landed(c, p, 1, what);
            if (!p->notif) hx_send_str(c->fd, "read");
        }
        hx_expect_str(c->fd, "checked", T_WAIT);
    } else {
        if (!p->write) {
            fill_blocks(c, p, 0);
            HX_OK(tcpx_session_progress(c->s)); /* orders the fill before the READ we serve */
            hx_send_str(c->fd, "filled");
        }
        /* The notification of a write comes only when every byte is in
         * place: check them at once. */
        if (p->notif) {
            expect_notif(c, p, what);
        } else {
            hx_expect_str(c->fd, p->write ? "written" : "read", T_WAIT);
            /* Told by A, not by the session: a call on the session orders
             * our reads after the transport's writes (the notification
             * path does this itself). */
            HX_OK(tcpx_session_progress(c->s));
        }
        if (p->write) check_landed(c, p, 0, what);
        else restore(c, p, 0);
        hx_no_notif(c->s);
        hx_send_str(c->fd, "checked");
    }
}

static void phase_sizes(ctx *c)
{
    const size_t sizes[] = {1, 7, 4095, 4096, 65537, 1 * MiB + 3, 8 * MiB + 1};
    size_t nsizes = sizeof sizes / sizeof sizes[0];
    for (size_t k = 0; k < (g_o.big ? 1 : nsizes); k++) {
        for (int w = 1; w >= 0; w--) {
            plan p = {0};
            p.n = 1;
            p.b = calloc(1, sizeof *p.b);
            p.b[0].size = g_o.big ? 256u * MiB : sizes[k];
            p.b[0].loff = 3 + k;
            p.b[0].roff = 5 + 2 * k;
            p.b[0].seed = hx_mix(hx_seed, 0x512E + k * 2 + (size_t)w);
            p.write = w;
            p.notif = (int)(k % 2);
            p.notif_len = k * 100;
            p.nseed = hx_mix(hx_seed, 0x7070 + k);
            char what[96];
            snprintf(what, sizeof what, "%s of one %zu-byte block", w ? "WRITE" : "READ", p.b[0].size);
            run_plan(c, &p, what);
            plan_free(&p);
        }
    }
}

static void phase_lists(ctx *c)
{
    const size_t counts[] = {1, 2, 17, 499, 500, 501, 1000, 1024, 4096};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        for (int rep = 0; rep < 2; rep++) {
            size_t n = counts[k];
            size_t max_block = n <= 17 ? 1 * MiB : n <= 1024 ? 64 * 1024 : 8 * 1024;
            plan p;
            make_plan(&p, 100 + k * 2 + (size_t)rep, n, max_block, 0, g_region);
            p.write = rep == 0 ? 1 : 0;
            char what[96];
            snprintf(what, sizeof what, "%s list of %zu blocks%s", p.write ? "WRITE" : "READ", n,
                     p.notif ? " with a notification" : "");
            run_plan(c, &p, what);
            plan_free(&p);
        }
    }
}

/* 32 lists in flight: writes and reads at disjoint places, waited in random
 * order; B checks the writes as their notifications arrive (in posting
 * order), A the reads. */
#define NFLIGHT 32
static void phase_inflight(ctx *c)
{
    plan p[NFLIGHT];
    size_t span = g_region / NFLIGHT;
    for (size_t i = 0; i < NFLIGHT; i++) {
        make_plan(&p[i], 900 + i, 64, 8192, i * span, span);
        p[i].write = i % 3 != 2;
        p[i].notif = p[i].write; /* B counts writes by their notifications */
        if (p[i].notif_len < 8) p[i].notif_len = 8;
    }
    if (c->is_a) {
        for (size_t i = 0; i < NFLIGHT; i++)
            if (p[i].write) fill_blocks(c, &p[i], 1);
        hx_expect_str(c->fd, "filled", T_WAIT);
        tcpx_xfer *x[NFLIGHT];
        for (size_t i = 0; i < NFLIGHT; i++) {
            HX_OK(tcpx_xfer_create(c->s, c->peer, &x[i]));
            post_plan(c, x[i], &p[i]);
        }
        size_t order[NFLIGHT];
        for (size_t i = 0; i < NFLIGHT; i++) order[i] = i;
        hx_rng r;
        hx_rng_seed(&r, hx_mix(hx_seed, 0x0D3E));
        hx_shuffle(&r, order, NFLIGHT);
        for (size_t k = 0; k < NFLIGHT; k++) {
            size_t i = order[k];
            char what[64];
            snprintf(what, sizeof what, "in flight: list %zu (%s)", i, p[i].write ? "WRITE" : "READ");
            HX_WAIT_OK(x[i], T_WAIT, what);
            tcpx_xfer_release(x[i]);
        }
        for (size_t i = 0; i < NFLIGHT; i++)
            if (p[i].write) restore(c, &p[i], 1);
        for (size_t i = 0; i < NFLIGHT; i++) {
            char what[64];
            snprintf(what, sizeof what, "in flight: list %zu", i);
            if (!p[i].write) check_blocks(c, &p[i], 1, what);
        }
        check_guard(c, "in flight (initiator)");
        hx_send_str(c->fd, "done");
        hx_expect_str(c->fd, "checked", T_WAIT);
    } else {
        for (size_t i = 0; i < NFLIGHT; i++)
            if (!p[i].write) fill_blocks(c, &p[i], 0);
        HX_OK(tcpx_session_progress(c->s));
        hx_send_str(c->fd, "filled");
        for (size_t i = 0; i < NFLIGHT; i++) {
            if (!p[i].write) continue;
            char what[64];
            snprintf(what, sizeof what, "in flight: notification of list %zu (posting order)", i);
            expect_notif(c, &p[i], what);
            snprintf(what, sizeof what, "in flight: list %zu", i);
            check_blocks(c, &p[i], 0, what);
        }
        hx_expect_str(c->fd, "done", T_WAIT);
        HX_OK(tcpx_session_progress(c->s)); /* told by A: order our writes after the reads' sends */
        for (size_t i = 0; i < NFLIGHT; i++)
            if (!p[i].write) restore(c, &p[i], 0);
        check_guard(c, "in flight (target)");
        hx_no_notif(c->s);
        hx_send_str(c->fd, "checked");
    }
    for (size_t i = 0; i < NFLIGHT; i++) plan_free(&p[i]);
}

/* One transfer: a WRITE list, a READ list and a two-sided send of 3 MiB
 * (B posts the receive: its only call). */
static void phase_mixed(ctx *c)
{
    plan w, r;
    size_t third = g_region / 3;
    make_plan(&w, 7001, 300, 16384, 0, third);
    make_plan(&r, 7002, 300, 16384, third, third);
    w.write = 1;
    w.notif = 1;
    r.write = 0;
    r.notif = 0;
    const size_t msg = 3 * MiB + 5, soff = 2 * third + 11, roff = 2 * third + 1003;
    const uint64_t mseed = hx_mix(hx_seed, 0x5E4D);
    if (c->is_a) {
        fill_blocks(c, &w, 1);
        hx_fill(c->reg.ptr + soff, msg, mseed, 0);
        hx_expect_str(c->fd, "filled", T_WAIT);
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        post_plan(c, x, &w);
        HX_OK(tcpx_xfer_post_send(x, c->reg.id, soff, msg, 77));
        post_plan(c, x, &r);
        HX_WAIT_OK(x, T_WAIT, "mixed: write + send + read on one transfer");
        tcpx_xfer_release(x);
        restore(c, &w, 1);
        hx_fill(c->reg.ptr + soff, msg, c->guard, soff);
        check_landed(c, &r, 1, "mixed: READ list");
        hx_send_str(c->fd, "done");
        hx_expect_str(c->fd, "checked", T_WAIT);
    } else {
        fill_blocks(c, &r, 0);
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        HX_OK(tcpx_xfer_post_recv(x, c->reg.id, roff, msg, 77)); /* a call on the session: orders the fill */
        hx_send_str(c->fd, "filled");
        expect_notif(c, &w, "mixed: notification of the WRITE list");
        HX_WAIT_OK(x, T_WAIT, "mixed: the receive");
        tcpx_xfer_release(x);
        HX_CHECK_PATTERN("mixed: two-sided message", c->reg.ptr + roff, msg, mseed, 0);
        hx_fill(c->reg.ptr + roff, msg, c->guard, roff);
        check_blocks(c, &w, 0, "mixed: WRITE list");
        hx_expect_str(c->fd, "done", T_WAIT);
        HX_OK(tcpx_session_progress(c->s));
        restore(c, &r, 0);
        check_guard(c, "mixed (target)");
        hx_send_str(c->fd, "checked");
    }
    plan_free(&w);
    plan_free(&r);
}

/* Standalone notifications, 200 each way, random lengths 0..MAX. */
static void phase_notifs(ctx *c)
{
    const int n = 200;
    uint8_t buf[TCPX_NOTIF_MAX], got[TCPX_NOTIF_MAX];
    for (int dir = 0; dir < 2; dir++) {
        int sender = dir == 0 ? c->is_a : !c->is_a;
        hx_rng r;
        hx_rng_seed(&r, hx_mix(hx_seed, 0x4E0 + (uint64_t)dir));
        for (int i = 0; i < n; i++) {
            size_t len = hx_rng_below(&r, 5) ? (size_t)hx_rng_below(&r, 300) : (size_t)hx_rng_below(&r, TCPX_NOTIF_MAX + 1);
            uint64_t seed = hx_mix(hx_seed, 0xA0000 + (uint64_t)dir * 1000 + (uint64_t)i);
            if (sender) {
                hx_fill(buf, len, seed, 0);
                HX_OK(tcpx_notify_send(c->s, c->peer, buf, len));
            } else {
                size_t glen = hx_wait_notif(c->s, c->peer, got, sizeof got, T_WAIT);
                char what[64];
                snprintf(what, sizeof what, "standalone notification %d (direction %d)", i, dir);
                HX_CHECK(glen == len, "%s: %zu bytes, expected %zu", what, glen, len);
                HX_CHECK_PATTERN(what, got, glen, seed, 0);
            }
        }
        if (!sender) hx_send_str(c->fd, "got them");
        else hx_expect_str(c->fd, "got them", T_WAIT);
    }
    /* A buffer too small keeps the notification queued. */
    if (c->is_a) {
        hx_fill(buf, 100, 1, 0);
        HX_OK(tcpx_notify_send(c->s, c->peer, buf, 100));
        hx_expect_str(c->fd, "checked", T_WAIT);
    } else {
        char from[TCPX_NAME_MAX];
        size_t len = 0;
        uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(T_WAIT);
        tcpx_status st;
        while ((st = tcpx_notify_poll(c->s, from, sizeof from, got, 99, &len)) == TCPX_IN_PROGRESS)
            HX_CHECK(hx_now_ms() < deadline, "no notification");
        HX_CHECK(st == TCPX_ERR_INVALID && len == 100, "poll into 99 bytes: %s, len %zu", tcpx_strerror(st), len);
        HX_EXPECT(tcpx_notify_poll(c->s, from, 1, got, sizeof got, &len), TCPX_ERR_INVALID);
        size_t glen = hx_wait_notif(c->s, c->peer, got, sizeof got, T_WAIT);
        HX_CHECK(glen == 100, "kept notification: %zu bytes", glen);
        HX_CHECK_PATTERN("kept notification", got, glen, 1, 0);
        hx_send_str(c->fd, "checked");
    }
}

static int proc(void *arg)
{
    ctx c = {0};
    c.is_a = arg != NULL;
    c.fd = c.is_a ? fds[0] : fds[1];
    c.peer = c.is_a ? "B" : "A";
    hx_sess_opts so = {.name = c.is_a ? "A" : "B", .channels = g_o.channels, .chunk = g_o.chunk};
    c.s = hx_session_ex(&so);
    c.guard = hx_mix(hx_seed, c.is_a ? 0xA : 0xB);
    hx_region_init(c.s, &c.reg, g_region, c.guard);
    if (c.is_a) {
        hx_connect_to(c.s, "B", c.fd);
        hx_recv_memdesc(c.fd, &c.remote);
    } else {
        hx_accept_from(c.s, "A", c.fd);
        hx_send_memdesc(c.s, c.reg.id, c.fd);
    }
    phase_sizes(&c);
    hx_log("phase 1 (single blocks) done");
    if (!g_o.big) {
        phase_lists(&c);
        hx_log("phase 2 (lists) done");
        phase_inflight(&c);
        hx_log("phase 3 (in flight) done");
        phase_mixed(&c);
        hx_log("phase 4 (mixed) done");
        phase_notifs(&c);
        hx_log("phase 5 (notifications) done");
    }
    hx_send_str(c.fd, "bye");
    hx_expect_str(c.fd, "bye", T_WAIT);
    hx_region_fini(c.s, &c.reg);
    tcpx_session_destroy(c.s);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--channels") && i + 1 < argc) g_o.channels = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) g_o.chunk = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--big")) g_o.big = 1;
        else {
            fprintf(stderr, "usage: it_onesided [--channels N] [--chunk BYTES] [--big]\n");
            return 2;
        }
    }
    if (g_o.big) g_region = 256u * MiB + 64;
    hx_init("onesided", 300);
    hx_pair(fds);
    pid_t a = hx_spawn("A", 280, proc, (void *)1);
    pid_t b = hx_spawn("B", 280, proc, NULL);
    pid_t all[2] = {a, b};
    hx_wait_all(all, 2, 290000);
    hx_log("PASS");
    return 0;
}
