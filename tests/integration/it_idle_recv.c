/*
 * it_idle_recv - remote completion must not depend on the receiver calling
 * into the library after its own receives completed.
 *
 * "A send completes when the receiver has the bytes": once B's wait has
 * returned TCPX_OK for all of its receives, B's application may go idle
 * (here: block on the bootstrap socket, not calling tcpx_*), and A's sends
 * must still complete. A library that queues B's acknowledgements and only
 * puts them on the wire at B's next progress call deadlocks this common
 * pattern (receiver done -> waits for an out-of-band "sender done").
 *
 *   1. 64 inline-size sends posted first (they arrive unexpected), then one
 *      batch of 64 receives: all complete at once on B.
 *   2. 48 sends of 20-200 KB, receives posted first.
 *   3. 100 one-message transfers each side, receiver waits all, goes idle.
 * `it_idle_recv N` runs case N only (no argument: all).
 * In each, B verifies its bytes and then blocks for A's verdict; A's wait
 * has 10 s.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define SEND_WAIT_MS 10000

typedef struct plan {
    size_t n;
    size_t size[128], off[128];
    uint64_t tag[128], seed[128];
} plan;

static void make_plan(plan *p, size_t n, size_t lo, size_t hi, uint64_t salt)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, salt));
    p->n = n;
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        p->size[i] = lo + (size_t)hx_rng_below(&r, hi - lo + 1);
        p->off[i] = cur;
        cur += p->size[i] + 64;
        p->tag[i] = salt * 1000 + i;
        p->seed[i] = hx_mix(hx_seed, salt * 1000 + i);
    }
}

static void run_case(tcpx_session *s, int is_a, int fd, hx_region *r, const plan *p, int sender_first,
                     int separate, const char *name)
{
    tcpx_mem_id ids[128];
    for (size_t i = 0; i < p->n; i++) ids[i] = r->id;
    tcpx_xfer *xs[128];
    size_t nx = separate ? p->n : 1;
    for (size_t i = 0; i < nx; i++) HX_OK(tcpx_xfer_create(s, is_a ? "B" : "A", &xs[i]));
    if (is_a) {
        for (size_t i = 0; i < p->n; i++) hx_fill(r->ptr + p->off[i], p->size[i], p->seed[i], 0);
        if (!sender_first) hx_expect_str(fd, "posted", 30000);
        if (separate) {
            for (size_t i = 0; i < p->n; i++)
                HX_OK(tcpx_xfer_post_send(xs[i], r->id, p->off[i], p->size[i], p->tag[i]));
        } else {
            HX_OK(tcpx_xfer_post_send_batch(xs[0], p->n, ids, p->off, p->size, p->tag));
        }
        if (sender_first) {
            hx_progress_for(s, 50);
            hx_send_str(fd, "posted");
        }
        for (size_t i = 0; i < nx; i++) {
            uint64_t ms;
            tcpx_status st = hx_wait_timed(xs[i], HX_MS(SEND_WAIT_MS), &ms);
            if (st != TCPX_OK) {
                hx_send_str(fd, "failed");
                HX_FAIL("%s: send transfer %zu of %zu ended with %s after %" PRIu64 " ms although B reported all "
                        "its receives complete (B is now idle, blocked outside the library): %s",
                        name, i, nx, tcpx_strerror(st), ms, tcpx_last_error());
            }
        }
        hx_send_str(fd, "sends done");
    } else {
        if (sender_first) {
            hx_expect_str(fd, "posted", 30000);
            hx_progress_for(s, 100);
        }
        hx_fill(r->ptr, r->size, 5, 0);
        if (separate) {
            for (size_t i = 0; i < p->n; i++)
                HX_OK(tcpx_xfer_post_recv(xs[i], r->id, p->off[i], p->size[i], p->tag[i]));
        } else {
            HX_OK(tcpx_xfer_post_recv_batch(xs[0], p->n, ids, p->off, p->size, p->tag));
        }
        if (!sender_first) hx_send_str(fd, "posted");
        for (size_t i = 0; i < nx; i++) HX_WAIT_OK(xs[i], 30000, name);
        for (size_t i = 0; i < p->n; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s: message %zu", name, i);
            HX_CHECK_PATTERN(what, r->ptr + p->off[i], p->size[i], p->seed[i], 0);
        }
        /* idle: no tcpx_ call until A has its verdict */
        char *v = hx_recv(fd, NULL, SEND_WAIT_MS + 10000);
        HX_CHECK(!strcmp(v, "sends done"), "%s: A reports its sends %s", name, v);
        free(v);
    }
    for (size_t i = 0; i < nx; i++) tcpx_xfer_release(xs[i]);
    hx_send_str(fd, name);
    hx_expect_str(fd, name, 30000);
}

static int g_case; /* 0 = all, else only that case */

static int child(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int is_a = hx_role()[0] == 'A';
    tcpx_session *s = hx_session(is_a ? "A" : "B", 4, 64 * 1024);
    hx_region r;
    hx_region_init(s, &r, 24 * MiB, 9);
    if (is_a) hx_connect_to(s, "B", fd);
    else hx_accept_from(s, "A", fd);
    plan *p = calloc(1, sizeof *p);
    if (!g_case || g_case == 1) {
        make_plan(p, 64, 1, 2000, 1);
        run_case(s, is_a, fd, &r, p, 1, 0, "64 inline sends, sender first, one batch each side");
        hx_log("case 1 ok");
    }
    if (!g_case || g_case == 2) {
        make_plan(p, 48, 20000, 200000, 2);
        run_case(s, is_a, fd, &r, p, 0, 0, "48 sends of 20-200 KB, receiver first, one batch each side");
        hx_log("case 2 ok");
    }
    if (!g_case || g_case == 3) {
        make_plan(p, 100, 1, 100000, 3);
        run_case(s, is_a, fd, &r, p, 0, 1, "100 one-message transfers, receiver first");
        hx_log("case 3 ok");
    }
    free(p);
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    return 0;
}

int main(int argc, char **argv)
{
    g_case = argc > 1 ? atoi(argv[1]) : 0;
    hx_init("idle_recv", 110);
    int fds[2];
    hx_pair(fds);
    pid_t p[2];
    p[0] = hx_spawn("A", 100, child, (void *)(intptr_t)fds[0]);
    p[1] = hx_spawn("B", 100, child, (void *)(intptr_t)fds[1]);
    hx_wait_all(p, 2, 105000);
    hx_log("PASS");
    return 0;
}
