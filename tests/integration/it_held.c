/*
 * it_held - a small post made while other operations with its peer are under
 * way may be held for the caller's next round (its control messages then
 * leave with those of the next posts, in one frame). This checks that such a
 * message still leaves when the caller never comes back: A posts a receive
 * that stays pending, then 1..4 small sends, and then makes no library call
 * at all (it blocks on the bootstrap socket) until B reports that every send
 * arrived with every byte right. Only then does B answer A's receive.
 *
 * With a progress thread the held messages leave within its bound (a fraction
 * of a millisecond; checked against HOLD_MS, which allows for loaded CI
 * machines); without one (TCPX_PROGRESS_THREAD=0, see CMakeLists.txt) nothing
 * may be held, since nothing else would send it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define REPS 40
#define MAX_MSG 8192
#define MAX_SENDS 4
#define HOLD_MS 500
#define REGION (64u * 1024)

static int fds[2];

/* The message of rep `rep`, send j: 1..MAX_MSG bytes, from the run's seed. */
static size_t msg_size(unsigned rep, unsigned j)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, 1000u * rep + j));
    return rep % 5 == 0 ? (j % 2 ? MAX_MSG : 1) : 1 + (size_t)hx_rng_below(&r, MAX_MSG);
}
static uint64_t msg_seed(unsigned rep, unsigned j) { return hx_mix(hx_seed, 7000000u + 1000u * rep + j); }
static unsigned nsends(unsigned rep) { return 1 + rep % MAX_SENDS; }

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = hx_session("A", 2, 0);
    hx_region r;
    hx_region_init(s, &r, REGION, 21);
    hx_connect_to(s, "B", fds[0]);
    for (unsigned rep = 0; rep < REPS; rep++) {
        /* The receive B answers last: an operation under way while A sends. */
        size_t rsize = msg_size(rep, 99);
        uint8_t *rbuf = r.ptr + MAX_SENDS * MAX_MSG;
        memset(rbuf, 0xa5, rsize);
        tcpx_xfer *rx, *tx[MAX_SENDS];
        HX_OK(tcpx_xfer_create(s, "B", &rx));
        HX_OK(tcpx_xfer_post_recv(rx, r.id, MAX_SENDS * MAX_MSG, rsize, 1000000u + rep));
        for (unsigned j = 0; j < nsends(rep); j++) {
            size_t size = msg_size(rep, j);
            hx_fill(r.ptr + j * MAX_MSG, size, msg_seed(rep, j), 0);
            HX_OK(tcpx_xfer_create(s, "B", &tx[j]));
            HX_OK(tcpx_xfer_post_send(tx[j], r.id, j * MAX_MSG, size, 1000u * rep + j));
        }
        /* No library call until B has every byte. */
        hx_send_u64(fds[0], rep);
        hx_expect_str(fds[0], "got", HX_MS(30000));
        HX_WAIT_OK(rx, HX_MS(10000), "A's receive");
        HX_CHECK_PATTERN("A's receive", rbuf, rsize, msg_seed(rep, 99), 0);
        for (unsigned j = 0; j < nsends(rep); j++) {
            HX_WAIT_OK(tx[j], HX_MS(10000), "A's send");
            tcpx_xfer_release(tx[j]);
        }
        tcpx_xfer_release(rx);
    }
    hx_send_str(fds[0], "done");
    tcpx_session_destroy(s);
    hx_region_fini(NULL, &r);
    return 0;
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = hx_session("B", 2, 0);
    hx_region r;
    hx_region_init(s, &r, REGION, 22);
    hx_accept_from(s, "A", fds[1]);
    uint64_t worst = 0;
    for (unsigned rep = 0; rep < REPS; rep++) {
        tcpx_xfer *rx[MAX_SENDS];
        for (unsigned j = 0; j < nsends(rep); j++) {
            memset(r.ptr + j * MAX_MSG, 0x3c, MAX_MSG);
            HX_OK(tcpx_xfer_create(s, "A", &rx[j]));
            HX_OK(tcpx_xfer_post_recv(rx[j], r.id, j * MAX_MSG, msg_size(rep, j), 1000u * rep + j));
        }
        HX_CHECK(hx_recv_u64(fds[1], HX_MS(30000)) == rep, "A is at another step");
        uint64_t t0 = hx_now_ms();
        for (unsigned j = 0; j < nsends(rep); j++) {
            uint64_t ms = 0;
            tcpx_status st = hx_wait_timed(rx[j], HX_MS(HOLD_MS), &ms);
            HX_CHECK(st == TCPX_OK, "rep %u send %u of %u: not here %d ms after A posted it and stopped calling (%s: %s)",
                     rep, j, nsends(rep), HX_MS(HOLD_MS), tcpx_strerror(st), tcpx_last_error());
            size_t size = msg_size(rep, j);
            HX_CHECK_PATTERN("B's receive", r.ptr + j * MAX_MSG, size, msg_seed(rep, j), 0);
            for (size_t b = size; b < MAX_MSG; b++)
                HX_CHECK(r.ptr[j * MAX_MSG + b] == 0x3c, "rep %u send %u: byte %zu behind the %zu-byte message written",
                         rep, j, b, size);
            tcpx_xfer_release(rx[j]);
        }
        if (hx_now_ms() - t0 > worst) worst = hx_now_ms() - t0;
        hx_send_str(fds[1], "got");
        /* Now answer A's pending receive. */
        size_t rsize = msg_size(rep, 99);
        uint8_t *sbuf = r.ptr + MAX_SENDS * MAX_MSG;
        hx_fill(sbuf, rsize, msg_seed(rep, 99), 0);
        tcpx_xfer *tx;
        HX_OK(tcpx_xfer_create(s, "A", &tx));
        HX_OK(tcpx_xfer_post_send(tx, r.id, MAX_SENDS * MAX_MSG, rsize, 1000000u + rep));
        HX_WAIT_OK(tx, HX_MS(10000), "B's answer");
        tcpx_xfer_release(tx);
    }
    hx_expect_str(fds[1], "done", HX_MS(30000));
    hx_log("%d reps of 1..%d small sends held behind a pending receive: all arrived, slowest rep %" PRIu64 " ms",
           REPS, MAX_SENDS, worst);
    tcpx_session_destroy(s);
    hx_region_fini(NULL, &r);
    return 0;
}

int main(void)
{
    hx_init("held", 120);
    hx_pair(fds);
    pid_t pids[2] = {hx_spawn("A", 110, proc_a, NULL), hx_spawn("B", 110, proc_b, NULL)};
    hx_wait_all(pids, 2, 110000);
    hx_log("PASS");
    return 0;
}
