/*
 * it_polling - transfers between two processes that only ever poll, as
 * NIXL's agent does: A posts WRITEs and READs and calls tcpx_xfer_test in a
 * loop until each completes; B (the target) calls tcpx_notify_poll in a
 * loop and never sleeps. No thread of either application ever waits, so
 * nothing may depend on one going to sleep (an unarmed socket left for
 * "the next poll" must be moved by that poll).
 *
 * Sizes around the transport's thresholds (256 KiB caller budget, 64 KiB
 * lazy limit) and larger, at odd offsets; each transfer must complete
 * within T_XFER ms. WRITE: B checks every byte when the notification
 * (which names the block and its seed) arrives, and tells A over the
 * bootstrap socket before A moves on. READ: A checks every byte
 * read from B's half that holds a fixed pattern. Run under different
 * TCPX_SOCKS_PER_COMM and TCPX_CALLERS_MOVE (see CMakeLists.txt).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define HALF (8u << 20)
#define T_XFER 5000
#define REPS 6

static const size_t g_sizes[] = {300u << 10, 257u << 10, 320u << 10, 1u << 20, 4u << 20, (6u << 20) + 13};
#define NSIZES (sizeof g_sizes / sizeof g_sizes[0])
static int fds[2];

/* Poll x until it completes; fail if it takes longer than T_XFER. */
static void poll_done(tcpx_xfer *x, const char *what, size_t size)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(T_XFER);
    tcpx_status st;
    while ((st = tcpx_xfer_test(x)) == TCPX_IN_PROGRESS)
        HX_CHECK(hx_now_ms() < deadline, "%s of %zu bytes not complete after %d ms of polling", what, size,
                 HX_MS(T_XFER));
    HX_CHECK(st == TCPX_OK, "%s of %zu bytes: %s: %s", what, size, tcpx_strerror(st), tcpx_last_error());
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = hx_session("A", 4, 0);
    hx_region r;
    hx_region_init(s, &r, HALF, 11);
    hx_connect_to(s, "B", fds[0]);
    tcpx_memdesc dst;
    hx_recv_memdesc(fds[0], &dst);
    uint64_t read_seed = hx_recv_u64(fds[0], 10000);
    hx_rng rng;
    hx_rng_seed(&rng, hx_mix(hx_seed, 5));
    unsigned k = 0;
    for (size_t i = 0; i < NSIZES; i++) {
        for (int rep = 0; rep < REPS; rep++, k++) {
            size_t size = g_sizes[i];
            size_t loff = (size_t)hx_rng_below(&rng, HALF - size + 1);
            size_t roff = (size_t)hx_rng_below(&rng, HALF - size + 1);
            uint64_t seed = hx_mix(hx_seed, 100 + k);
            tcpx_xfer *x;
            HX_OK(tcpx_xfer_create(s, "B", &x));
            if (rep % 2 == 0) { /* WRITE into B's second half */
                hx_fill(r.ptr + loff, size, seed, 0);
                char note[96];
                int n = snprintf(note, sizeof note, "%u %zu %zu %" PRIu64, k, roff, size, seed);
                tcpx_notif_msg m = {note, (size_t)n};
                tcpx_block b = {r.id, loff, &dst, HALF + roff, size};
                HX_OK(tcpx_xfer_post_write_list(x, 1, &b, &m));
                poll_done(x, "WRITE", size);
                /* B has checked it before the next one may overwrite it */
                hx_expect_str(fds[0], "ok", 30000);
            } else { /* READ from B's first half (pattern read_seed) */
                memset(r.ptr + loff, 0x5a, size);
                tcpx_block b = {r.id, loff, &dst, roff, size};
                HX_OK(tcpx_xfer_post_read_list(x, 1, &b, NULL));
                poll_done(x, "READ", size);
                size_t bad = hx_verify(r.ptr + loff, size, read_seed, roff);
                HX_CHECK(bad == SIZE_MAX, "READ %u of %zu bytes at %zu: byte %zu differs", k, size, roff, bad);
            }
            tcpx_xfer_release(x);
        }
    }
    hx_send_u64(fds[0], k);
    hx_expect_str(fds[0], "checked", 30000);
    tcpx_session_destroy(s);
    hx_region_fini(NULL, &r);
    hx_log("%u transfers of 257 KiB .. 6 MiB, both sides polling only", k);
    return 0;
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = hx_session("B", 4, 0);
    hx_region r;
    hx_region_init(s, &r, 2 * (size_t)HALF, 12);
    uint64_t read_seed = hx_mix(hx_seed, 3);
    hx_fill(r.ptr, HALF, read_seed, 0);
    hx_accept_from(s, "A", fds[1]);
    hx_send_memdesc(s, r.id, fds[1]);
    hx_send_u64(fds[1], read_seed);
    unsigned seen = 0;
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(120000);
    for (;;) {
        char from[TCPX_NAME_MAX], note[128];
        size_t len = 0;
        tcpx_status st = tcpx_notify_poll(s, from, sizeof from, note, sizeof note - 1, &len);
        if (st == TCPX_OK) {
            note[len] = '\0';
            unsigned k;
            size_t off, size;
            uint64_t seed;
            HX_CHECK(sscanf(note, "%u %zu %zu %" SCNu64, &k, &off, &size, &seed) == 4, "notification \"%s\"", note);
            size_t bad = hx_verify(r.ptr + HALF + off, size, seed, 0);
            HX_CHECK(bad == SIZE_MAX, "WRITE %u of %zu bytes at %zu: byte %zu differs", k, size, off, bad);
            seen++;
            hx_send_str(fds[1], "ok");
            continue;
        }
        HX_CHECK(st == TCPX_IN_PROGRESS, "tcpx_notify_poll: %s: %s", tcpx_strerror(st), tcpx_last_error());
        if (hx_poll_readable(fds[1], 0)) break;
        HX_CHECK(hx_now_ms() < deadline, "A did not finish within 120 s");
    }
    unsigned total = (unsigned)hx_recv_u64(fds[1], 1000);
    HX_CHECK(seen == (total + 1) / 2, "%u WRITE notifications checked, expected %u", seen, (total + 1) / 2);
    hx_send_str(fds[1], "checked");
    tcpx_session_destroy(s);
    hx_region_fini(NULL, &r);
    return 0;
}

int main(void)
{
    hx_init("polling", 150);
    hx_pair(fds);
    pid_t pids[2] = {hx_spawn("A", 140, proc_a, NULL), hx_spawn("B", 140, proc_b, NULL)};
    hx_wait_all(pids, 2, 140000);
    hx_log("PASS");
    return 0;
}
