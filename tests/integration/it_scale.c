/*
 * it_scale - threads and idle CPU of a session with many peers.
 *
 *   - hub H (accept_any, one channel per peer) is connected by NPEER peer
 *     sessions, all living in one spoke process P; each peer WRITEs a block
 *     of random data to its own slice of H's memory with a notification,
 *     and H checks every byte of every slice;
 *   - H's thread count (every thread of the process, /proc/self/task) must
 *     stay below 2 x cores + 4 with all peers connected: the socket
 *     transport serves every socket from its pool of I/O threads;
 *   - then everything idles, connections up: over IDLE_MS H must use less
 *     than 0.5 % of a core (its I/O threads sleep in epoll, its progress
 *     thread's tick backs off);
 *   - last, each peer READs its slice back and checks it: the idle
 *     connections still work.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"

#define NPEER 32
#define SLICE (64u * 1024)
#define IDLE_MS 10000
#define T_WAIT 60000

static int boot[2];

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    HX_CHECK(d, "cannot open /proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static uint64_t slice_seed(int k) { return hx_mix(hx_seed, 0x5C00 + (uint64_t)k); }

static int proc_hub(void *arg)
{
    (void)arg;
    hx_sess_opts o = {.name = "H", .channels = 1, .accept_any = 1, .connect_timeout_ms = 30000};
    tcpx_session *s = hx_session_ex(&o);
    hx_region reg;
    uint64_t guard = hx_mix(hx_seed, 0x6);
    hx_region_init(s, &reg, (size_t)NPEER * SLICE, guard);
    hx_send_blob(s, boot[1]);
    hx_send_memdesc(s, reg.id, boot[1]);
    int seen[NPEER] = {0};
    for (int got = 0; got < NPEER; got++) {
        char buf[16], from[TCPX_NAME_MAX];
        size_t len = 0;
        uint64_t deadline = hx_now_ms() + HX_MS(T_WAIT);
        tcpx_status st;
        while ((st = tcpx_notify_poll(s, from, sizeof from, buf, sizeof buf - 1, &len)) == TCPX_IN_PROGRESS) {
            HX_CHECK(hx_now_ms() < deadline, "hub: %d of %d notifications in time", got, NPEER);
            hx_sleep_ms(1);
        }
        HX_OK(st);
        int k = -1;
        HX_CHECK(sscanf(from, "P%d", &k) == 1 && k >= 0 && k < NPEER && !seen[k], "hub: notification from %s",
                 from);
        seen[k] = 1;
        HX_CHECK_PATTERN("hub: a peer's slice", reg.ptr + (size_t)k * SLICE, SLICE, slice_seed(k), 0);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = count_threads();
    hx_log("hub: %d peers connected, %d threads, %ld cores", NPEER, threads, cores);
    HX_CHECK(threads < 2 * cores + 4, "hub: %d threads with %d peers on %ld cores (bound 2 x cores + 4)", threads,
             NPEER, cores);
    hx_send_str(boot[1], "idle");
    /* Let the last acknowledgements settle before the clock starts. */
    hx_sleep_ms(200);
    double c0 = cpu_ms();
    uint64_t t0 = hx_now_ms();
    hx_sleep_ms(IDLE_MS);
    double used = cpu_ms() - c0, wall = (double)(hx_now_ms() - t0);
    double pct = used / wall * 100;
    hx_log("hub: idle with %d connected peers: %.1f ms of CPU in %.0f ms (%.3f %% of a core)", NPEER, used, wall, pct);
    HX_CHECK(pct < 0.5 * hx_time_scale(), "hub: idle session used %.3f %% of a core (bound 0.5 %%)", pct);
    hx_send_str(boot[1], "read");
    hx_expect_str(boot[1], "bye", HX_MS(T_WAIT));
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_peers(void *arg)
{
    (void)arg;
    size_t blen;
    void *blob = hx_recv_blob(boot[0], &blen);
    tcpx_memdesc remote;
    hx_recv_memdesc(boot[0], &remote);
    tcpx_session *s[NPEER];
    hx_region reg[NPEER];
    tcpx_xfer *x[NPEER];
    for (int k = 0; k < NPEER; k++) {
        char name[8];
        snprintf(name, sizeof name, "P%d", k);
        hx_sess_opts o = {.name = name, .channels = 1, .connect_timeout_ms = 30000};
        s[k] = hx_session_ex(&o);
        hx_region_init(s[k], &reg[k], 2 * SLICE, hx_mix(hx_seed, 0x100 + (uint64_t)k));
        hx_fill(reg[k].ptr, SLICE, slice_seed(k), 0);
        HX_OK(tcpx_session_load_remote(s[k], "H", blob, blen));
        tcpx_status st = tcpx_session_connect_start(s[k], "H"); /* all 32 at once */
        HX_CHECK(st == TCPX_OK || st == TCPX_IN_PROGRESS, "connect_start: %s: %s", tcpx_strerror(st),
                 tcpx_last_error());
    }
    free(blob);
    for (int k = 0; k < NPEER; k++) {
        HX_OK(tcpx_session_connect(s[k], "H"));
        char note[8];
        snprintf(note, sizeof note, "w%d", k);
        tcpx_notif_msg nm = {note, strlen(note)};
        tcpx_block b = {reg[k].id, 0, &remote, (uint64_t)k * SLICE, SLICE};
        HX_OK(tcpx_xfer_create(s[k], "H", &x[k]));
        HX_OK(tcpx_xfer_post_write_list(x[k], 1, &b, &nm));
    }
    for (int k = 0; k < NPEER; k++) {
        HX_WAIT_OK(x[k], T_WAIT, "peer: WRITE to the hub");
        tcpx_xfer_release(x[k]);
    }
    hx_expect_str(boot[0], "idle", HX_MS(T_WAIT));
    hx_expect_str(boot[0], "read", HX_MS(T_WAIT) + IDLE_MS);
    for (int k = 0; k < NPEER; k++) {
        tcpx_block b = {reg[k].id, SLICE, &remote, (uint64_t)k * SLICE, SLICE};
        HX_OK(tcpx_xfer_create(s[k], "H", &x[k]));
        HX_OK(tcpx_xfer_post_read_list(x[k], 1, &b, NULL));
    }
    for (int k = 0; k < NPEER; k++) {
        HX_WAIT_OK(x[k], T_WAIT, "peer: READ from the hub after the idle time");
        tcpx_xfer_release(x[k]);
        HX_CHECK_PATTERN("peer: slice read back", reg[k].ptr + SLICE, SLICE, slice_seed(k), 0);
    }
    hx_send_str(boot[0], "bye");
    for (int k = 0; k < NPEER; k++) {
        hx_region_fini(s[k], &reg[k]);
        tcpx_session_destroy(s[k]);
    }
    return 0;
}

int main(void)
{
    hx_init("scale", 240);
    hx_pair(boot);
    pid_t pids[2];
    pids[0] = hx_spawn("H", 200, proc_hub, NULL);
    pids[1] = hx_spawn("P", 200, proc_peers, NULL);
    hx_wait_all(pids, 2, HX_MS(150000));
    printf("scale: OK\n");
    return 0;
}
