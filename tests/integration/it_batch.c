/*
 * it_batch - batches, many transfers in flight, posting order, FIFO matching
 * of one tag, zero-size messages. Two processes A and B, one connection,
 * 4 channels, 64 KiB chunks.
 *
 * Phases (both processes walk them in lockstep over the bootstrap socket):
 *   1. A->B: one transfer of 128 sends (post_send_batch) of mixed sizes, some
 *      tags repeated; the sender posts first, B posts its batch later.
 *   2. B->A: the same with the receiver posting first.
 *   3. 100 send transfers and 100 receive transfers in flight on each side at
 *      once (both directions), distinct tags, waited in random order.
 *   4. receive posted strictly before / strictly after the matching send,
 *      inline and non-inline sizes.
 *   5. 12 messages with one tag and 12 different sizes: matched FIFO, part of
 *      the receives posted before the sends and part after.
 *   6. zero-size messages alone, and mixed with others.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define REGION (72u * MiB)
#define T_WAIT 30000

typedef struct msgset {
    size_t n;
    size_t size[256];
    uint64_t tag[256];
    uint64_t seed[256];
    size_t soff[256], roff[256];
} msgset;

static size_t pick_size(hx_rng *r)
{
    static const size_t fixed[] = {0, 1, 7, 100, 4095, 4096, 8191, 8192, 8193, 16384,
                                   65535, 65536, 65537, 131072, 1 * MiB, 1 * MiB + 3};
    uint64_t k = hx_rng_below(r, 3);
    if (k == 0) return fixed[hx_rng_below(r, sizeof fixed / sizeof fixed[0])];
    if (k == 1) return 1 + (size_t)hx_rng_below(r, 8192);
    return 1 + (size_t)hx_rng_below(r, 300000);
}

/* Sizes, tags, seeds and both sides' offsets, all from the shared seed. */
static void plan(msgset *m, size_t n, uint64_t salt, uint64_t tagbase, int repeat_tags)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, salt));
    m->n = n;
    size_t sc = hx_rng_below(&r, 4096), rc = hx_rng_below(&r, 4096);
    for (size_t i = 0; i < n; i++) {
        m->size[i] = pick_size(&r);
        m->tag[i] = repeat_tags && i % 5 == 3 ? tagbase + 999 : tagbase + i;
        m->seed[i] = hx_mix(hx_seed, salt * 1000 + i);
        m->soff[i] = sc;
        m->roff[i] = rc;
        sc += m->size[i] + hx_rng_below(&r, 4096);
        rc += m->size[i] + hx_rng_below(&r, 4096);
        HX_CHECK(sc <= REGION && rc <= REGION, "test bug: plan does not fit the region");
    }
}

typedef struct ctx {
    tcpx_session *s;
    int is_a, fd;
    const char *peer;
    hx_region snd, rcv;
    uint64_t guard;
    hx_rng rng;
} ctx;

static void fill_sends(ctx *c, const msgset *m)
{
    for (size_t i = 0; i < m->n; i++) hx_fill(c->snd.ptr + m->soff[i], m->size[i], m->seed[i], 0);
}

static void verify_recvs(ctx *c, const msgset *m, const char *phase)
{
    char what[160];
    for (size_t i = 0; i < m->n; i++) {
        snprintf(what, sizeof what, "%s: message %zu (tag %" PRIu64 ", %zu bytes)", phase, i, m->tag[i],
                 m->size[i]);
        HX_CHECK_PATTERN(what, c->rcv.ptr + m->roff[i], m->size[i], m->seed[i], 0);
    }
    for (size_t i = 0; i < m->n; i++) hx_fill(c->rcv.ptr + m->roff[i], m->size[i], c->guard, m->roff[i]);
    snprintf(what, sizeof what, "%s: receive region outside the messages (guard)", phase);
    HX_CHECK_PATTERN(what, c->rcv.ptr, c->rcv.size, c->guard, 0);
}

static void post_batch(ctx *c, tcpx_xfer *x, const msgset *m, int send)
{
    tcpx_mem_id ids[256];
    for (size_t i = 0; i < m->n; i++) ids[i] = send ? c->snd.id : c->rcv.id;
    if (send) HX_OK(tcpx_xfer_post_send_batch(x, m->n, ids, m->soff, m->size, m->tag));
    else HX_OK(tcpx_xfer_post_recv_batch(x, m->n, ids, m->roff, m->size, m->tag));
}

/* Phases 1 and 2: a 128-message batch; `sender_is_a`, `sender_first`. */
static void phase_batch(ctx *c, int sender_is_a, int sender_first, uint64_t salt, const char *name)
{
    msgset *m = calloc(1, sizeof *m);
    plan(m, 128, salt, salt * 100000, 1);
    int i_send = c->is_a == sender_is_a;
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    if (i_send) {
        fill_sends(c, m);
        if (!sender_first) hx_expect_str(c->fd, "posted", 20000);
        post_batch(c, x, m, 1);
        if (sender_first) hx_send_str(c->fd, "posted");
    } else {
        if (sender_first) {
            hx_expect_str(c->fd, "posted", 20000);
            hx_progress_for(c->s, 50); /* let the sends arrive unexpected */
        }
        post_batch(c, x, m, 0);
        if (!sender_first) hx_send_str(c->fd, "posted");
    }
    HX_WAIT_OK(x, T_WAIT, name);
    tcpx_xfer_release(x);
    if (!i_send) verify_recvs(c, m, name);
    hx_send_str(c->fd, name);
    hx_expect_str(c->fd, name, T_WAIT);
    free(m);
}

/* Phase 3: 100 one-message transfers each way, all in flight. */
static void phase_inflight(ctx *c)
{
    const size_t N = 100;
    msgset *ab = calloc(1, sizeof *ab), *ba = calloc(1, sizeof *ba);
    plan(ab, N, 31, 310000, 0);
    plan(ba, N, 32, 320000, 0);
    msgset *out = c->is_a ? ab : ba, *in = c->is_a ? ba : ab;
    fill_sends(c, out);
    tcpx_xfer *xs[200];
    size_t order[200];
    for (size_t i = 0; i < 2 * N; i++) order[i] = i;
    hx_shuffle(&c->rng, order, 2 * N);
    /* post in random order, interleaving sends and receives */
    for (size_t k = 0; k < 2 * N; k++) {
        size_t i = order[k];
        HX_OK(tcpx_xfer_create(c->s, c->peer, &xs[i]));
        if (i < N) HX_OK(tcpx_xfer_post_send(xs[i], c->snd.id, out->soff[i], out->size[i], out->tag[i]));
        else HX_OK(tcpx_xfer_post_recv(xs[i], c->rcv.id, in->roff[i - N], in->size[i - N], in->tag[i - N]));
    }
    hx_shuffle(&c->rng, order, 2 * N);
    char what[96];
    for (size_t k = 0; k < 2 * N; k++) {
        size_t i = order[k];
        snprintf(what, sizeof what, "in-flight transfer %zu (%s)", i % N, i < N ? "send" : "recv");
        HX_WAIT_OK(xs[i], T_WAIT, what);
    }
    for (size_t i = 0; i < 2 * N; i++) tcpx_xfer_release(xs[i]);
    verify_recvs(c, in, "100 in flight");
    hx_send_str(c->fd, "inflight");
    hx_expect_str(c->fd, "inflight", T_WAIT);
    free(ab);
    free(ba);
}

/* Phase 4: receive strictly before / strictly after the send (A sends). */
static void phase_order(ctx *c)
{
    static const size_t sizes[] = {100, 300000};
    for (int recv_first = 1; recv_first >= 0; recv_first--) {
        for (size_t k = 0; k < 2; k++) {
            size_t size = sizes[k];
            uint64_t tag = 40000 + (uint64_t)recv_first * 10 + k, seed = hx_mix(hx_seed, tag);
            size_t off = 1 + (size_t)hx_rng_below(&c->rng, 100000);
            char what[96];
            snprintf(what, sizeof what, "%s first, %zu bytes", recv_first ? "receive" : "send", size);
            tcpx_xfer *x;
            HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
            if (c->is_a) {
                hx_fill(c->snd.ptr + off, size, seed, 0);
                if (recv_first) hx_expect_str(c->fd, "posted", 20000);
                HX_OK(tcpx_xfer_post_send(x, c->snd.id, off, size, tag));
                if (!recv_first) hx_send_str(c->fd, "posted");
            } else {
                if (!recv_first) {
                    hx_expect_str(c->fd, "posted", 20000);
                    hx_progress_for(c->s, 100);
                }
                HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, off, size, tag));
                if (recv_first) {
                    /* the receive must stay pending until the send exists */
                    hx_progress_for(c->s, 50);
                    tcpx_status st = tcpx_xfer_test(x);
                    HX_CHECK(st == TCPX_IN_PROGRESS, "%s: receive reports %s before any send was posted", what,
                             tcpx_strerror(st));
                    hx_send_str(c->fd, "posted");
                }
            }
            HX_WAIT_OK(x, T_WAIT, what);
            tcpx_xfer_release(x);
            if (!c->is_a) {
                HX_CHECK_PATTERN(what, c->rcv.ptr + off, size, seed, 0);
                hx_fill(c->rcv.ptr + off, size, c->guard, off);
                HX_CHECK_PATTERN("guard after ordered receive", c->rcv.ptr, c->rcv.size, c->guard, 0);
            }
        }
    }
    hx_send_str(c->fd, "order");
    hx_expect_str(c->fd, "order", T_WAIT);
}

/* Phase 5: FIFO per tag. 12 sends of one tag with 12 different sizes. */
static void phase_fifo(ctx *c)
{
    const size_t N = 12;
    msgset *m = calloc(1, sizeof *m);
    plan(m, N, 51, 0, 0);
    static const size_t sizes[12] = {100, 200000, 5000, 70000, 1, 9000, 300000, 8192, 64 * 1024, 3, 150000, 777};
    /* offsets: recompute the layout for these sizes */
    size_t sc = 17, rc = 33;
    for (size_t i = 0; i < N; i++) {
        m->size[i] = sizes[i];
        m->tag[i] = 7777;
        m->soff[i] = sc;
        m->roff[i] = rc;
        sc += sizes[i] + 123;
        rc += sizes[i] + 321;
    }
    tcpx_xfer *xs[12];
    if (c->is_a) {
        fill_sends(c, m);
        hx_expect_str(c->fd, "first6", 20000);
        /* sends 0..3 in one transfer, the rest one per transfer */
        HX_OK(tcpx_xfer_create(c->s, c->peer, &xs[0]));
        for (size_t i = 0; i < 4; i++) HX_OK(tcpx_xfer_post_send(xs[0], c->snd.id, m->soff[i], m->size[i], 7777));
        for (size_t i = 4; i < N; i++) {
            HX_OK(tcpx_xfer_create(c->s, c->peer, &xs[i]));
            HX_OK(tcpx_xfer_post_send(xs[i], c->snd.id, m->soff[i], m->size[i], 7777));
        }
        hx_send_str(c->fd, "sent12");
        HX_WAIT_OK(xs[0], T_WAIT, "FIFO sends 0..3");
        tcpx_xfer_release(xs[0]);
        for (size_t i = 4; i < N; i++) {
            HX_WAIT_OK(xs[i], T_WAIT, "FIFO send");
            tcpx_xfer_release(xs[i]);
        }
    } else {
        for (size_t i = 0; i < 6; i++) {
            HX_OK(tcpx_xfer_create(c->s, c->peer, &xs[i]));
            HX_OK(tcpx_xfer_post_recv(xs[i], c->rcv.id, m->roff[i], m->size[i], 7777));
        }
        hx_send_str(c->fd, "first6");
        hx_expect_str(c->fd, "sent12", 20000);
        hx_progress_for(c->s, 50);
        for (size_t i = 6; i < N; i++) {
            HX_OK(tcpx_xfer_create(c->s, c->peer, &xs[i]));
            HX_OK(tcpx_xfer_post_recv(xs[i], c->rcv.id, m->roff[i], m->size[i], 7777));
        }
        for (size_t i = N; i-- > 0;) { /* wait newest first */
            char what[64];
            snprintf(what, sizeof what, "FIFO receive %zu (%zu bytes)", i, m->size[i]);
            HX_WAIT_OK(xs[i], T_WAIT, what);
            tcpx_xfer_release(xs[i]);
        }
        verify_recvs(c, m, "FIFO one tag");
    }
    hx_send_str(c->fd, "fifo");
    hx_expect_str(c->fd, "fifo", T_WAIT);
    free(m);
}

/* Phase 6: zero-size messages. */
static void phase_zero(ctx *c)
{
    /* alone, receive first then send first; then 0 between two non-empty
     * messages of the same tag (FIFO must hold with the empty one) */
    for (int round = 0; round < 2; round++) {
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
        size_t off = round ? c->snd.size / 2 : 0;
        if (c->is_a) {
            if (round == 0) hx_expect_str(c->fd, "posted", 20000);
            HX_OK(tcpx_xfer_post_send(x, c->snd.id, off, 0, 60000));
            if (round == 1) hx_send_str(c->fd, "posted");
        } else {
            if (round == 1) {
                hx_expect_str(c->fd, "posted", 20000);
                hx_progress_for(c->s, 30);
            }
            HX_OK(tcpx_xfer_post_recv(x, c->rcv.id, off, 0, 60000));
            if (round == 0) hx_send_str(c->fd, "posted");
        }
        HX_WAIT_OK(x, T_WAIT, round ? "zero-size, send first" : "zero-size, receive first");
        tcpx_xfer_release(x);
    }
    msgset *m = calloc(1, sizeof *m);
    plan(m, 3, 61, 0, 0);
    m->size[0] = 5000;
    m->size[1] = 0;
    m->size[2] = 70000;
    m->soff[1] = m->soff[0] + 5000;
    m->roff[1] = m->roff[0] + 5000;
    m->soff[2] = m->soff[1] + 10;
    m->roff[2] = m->roff[1] + 10;
    for (int i = 0; i < 3; i++) m->tag[i] = 60001;
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(c->s, c->peer, &x));
    if (c->is_a) {
        fill_sends(c, m);
        post_batch(c, x, m, 1);
    } else {
        post_batch(c, x, m, 0);
    }
    HX_WAIT_OK(x, T_WAIT, "zero-size between two messages of one tag");
    tcpx_xfer_release(x);
    if (!c->is_a) verify_recvs(c, m, "zero-size in a batch");
    free(m);
    hx_send_str(c->fd, "zero");
    hx_expect_str(c->fd, "zero", T_WAIT);
}

static int child(void *arg)
{
    int fd = (int)(intptr_t)arg;
    ctx c;
    memset(&c, 0, sizeof c);
    c.is_a = hx_role()[0] == 'A';
    c.fd = fd;
    c.peer = c.is_a ? "B" : "A";
    c.s = hx_session(c.is_a ? "A" : "B", 4, 64 * 1024);
    hx_rng_seed(&c.rng, hx_mix(hx_seed, c.is_a ? 1 : 2));
    c.guard = hx_mix(hx_seed, c.is_a ? 11 : 12);
    hx_region_init(c.s, &c.snd, REGION, hx_mix(hx_seed, c.is_a ? 13 : 14));
    hx_region_init(c.s, &c.rcv, REGION, c.guard);
    if (c.is_a) hx_connect_to(c.s, "B", fd);
    else hx_accept_from(c.s, "A", fd);

    phase_batch(&c, 1, 1, 1, "batch of 128 A->B, sender first");
    hx_log("phase 1 ok: 128-message batch, sender first");
    phase_batch(&c, 0, 0, 2, "batch of 128 B->A, receiver first");
    hx_log("phase 2 ok: 128-message batch, receiver first");
    phase_inflight(&c);
    hx_log("phase 3 ok: 100 transfers in flight each way");
    phase_order(&c);
    hx_log("phase 4 ok: receive before / after send");
    phase_fifo(&c);
    hx_log("phase 5 ok: FIFO matching of one tag");
    phase_zero(&c);
    hx_log("phase 6 ok: zero-size messages");

    HX_CHECK(tcpx_session_peer_status(c.s, c.peer) == TCPX_OK, "peer not OK at the end");
    hx_send_str(fd, "end");
    hx_expect_str(fd, "end", T_WAIT);
    hx_region_fini(c.s, &c.snd);
    hx_region_fini(c.s, &c.rcv);
    tcpx_session_destroy(c.s);
    return 0;
}

int main(void)
{
    hx_init("batch", 110);
    int fds[2];
    hx_pair(fds);
    pid_t pb = hx_spawn("B", 100, child, (void *)(intptr_t)fds[1]);
    pid_t pa = hx_spawn("A", 100, child, (void *)(intptr_t)fds[0]);
    pid_t both[2] = {pa, pb};
    hx_wait_all(both, 2, 105000);
    hx_log("PASS");
    return 0;
}
