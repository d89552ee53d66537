/*
 * soak - rounds of random transfers between pairs of processes until a
 * duration or a transfer count is reached; every byte of every completed
 * transfer is checked, every failure must be an error status with a
 * sentence, no wait or release may pass its bound.
 *
 *   soak [--seconds S] [--transfers N] [--round R] [--rounds K] [--max-region MiB] [--gpu]
 *
 * Each round (plan: soak_plan.c) forks A and B, which connect and run up to
 * 400 operations: two-sided sends both ways (tags 1..8, so repeated, with
 * receives posted before or after the sides sync), WRITE and READ lists of
 * 1..64 scattered blocks with or without a notification, standalone
 * notifications; sizes 1 B..64 MiB, log-uniform within classes (large ones
 * rare); about 8% of the transfers released mid-flight. A round is clean,
 * or one of the pair is SIGKILLed mid-way, or (under LD_PRELOAD of
 * libtcpx_fault.so) one is armed with a random fault; a quarter of the
 * rounds run with TCPX_DATA_DIGEST=1. Clean rounds and the harmless faults
 * (partial, eintr, eagain) must complete every transfer not released.
 * Figures of a killed (or stalled) process are not counted. With --gpu
 * each region is GPU or host memory at random (exit 77 with a SKIP line
 * when there is no CUDA device).
 * HX_SEED=<seed> --round <r> --rounds 1 replays round r of a run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "soak.h"

#define ROUND_MS 600000

static soak_plan g_plan;

typedef struct totals {
    soak_stats st;
    uint64_t rounds, clean, kills, fault_rounds, digest, faults[F_NKINDS];
    uint64_t gpu_rounds, gpu_regions, regions;
} totals;

/* Wait until fd is readable while watching the round's children: one that
 * exits non-zero, or dies of a signal it was not sent, fails the soak. */
static void watch(int fd, const pid_t *pids, const int *killed, int n, int timeout_ms)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    while (!hx_poll_readable(fd, 10)) {
        for (int i = 0; i < n; i++) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid != pids[i]) continue;
            if (si.si_code == CLD_EXITED && si.si_status != 0)
                HX_FAIL("round %d: child %c exited with status %d (see its line above)", g_plan.round, 'A' + i,
                        si.si_status);
            if (si.si_code != CLD_EXITED && !killed[i])
                HX_FAIL("round %d: child %c died of signal %d", g_plan.round, 'A' + i, si.si_status);
        }
        HX_CHECK(hx_now_ms() < deadline, "round %d (%s): no word from a child within %d ms (a hang)", g_plan.round,
                 soak_round_name(&g_plan), timeout_ms);
    }
}

static void take_stats(totals *t, int fd, const pid_t *pids, const int *killed)
{
    watch(fd, pids, killed, 2, ROUND_MS);
    size_t n = 0;
    soak_stats *s = hx_recv(fd, &n, 1000);
    HX_CHECK(n == sizeof *s, "figures of %zu bytes", n);
    soak_stats *a = &t->st;
    a->posted += s->posted, a->ok += s->ok, a->released += s->released, a->failed_post += s->failed_post;
    a->orphaned += s->orphaned;
    for (int k = 0; k < SOAK_NSTATUS; k++) a->failed[k] += s->failed[k];
    a->bytes_verified += s->bytes_verified, a->corrupted += s->corrupted;
    a->bytes_verified_gpu += s->bytes_verified_gpu;
    a->notifs_sent += s->notifs_sent, a->notifs_failed += s->notifs_failed, a->notifs_verified += s->notifs_verified;
    if (s->max_wait_ms > a->max_wait_ms) a->max_wait_ms = s->max_wait_ms;
    if (s->max_release_ms > a->max_release_ms) a->max_release_ms = s->max_release_ms;
    free(s);
}

/* Kill a child; it must die of that signal (a doomed child never exits on
 * its own, unless a check failed). */
static void kill_child(pid_t pid, int *killed)
{
    *killed = 1;
    kill(pid, SIGKILL);
    hx_wait_killed(pid, SIGKILL, 10000);
}

static void run_round(const soak_plan *p, totals *t)
{
    int ab[2], ca[2], cb[2];
    hx_pair(ab);
    hx_pair(ca);
    hx_pair(cb);
    soak_side sa = {p, 0, ab[0], ca[1], {ab[1], ca[0], cb[0], cb[1]}, 4};
    soak_side sb = {p, 1, ab[1], cb[1], {ab[0], ca[0], ca[1], cb[0]}, 4};
    pid_t pids[2];
    int killed[2] = {0, 0}, ctl[2] = {ca[0], cb[0]};
    pids[0] = hx_spawn("A", 900, soak_peer_main, &sa);
    pids[1] = hx_spawn("B", 900, soak_peer_main, &sb);
    close(ab[0]), close(ab[1]), close(ca[1]), close(cb[1]);
    int doomed = p->type == R_KILL ? p->victim : p->type == R_FAULT && p->fault_kind == F_STALL ? p->fault_side : -1;
    if (doomed >= 0) {
        watch(ctl[doomed], pids, killed, 2, ROUND_MS);
        hx_expect_str(ctl[doomed], "go", 1000);
        if (p->type == R_KILL) {
            hx_sleep_ms(p->kill_ms);
            kill_child(pids[doomed], &killed[doomed]);
            t->kills++;
        }
        take_stats(t, ctl[!doomed], pids, killed);
        if (!killed[doomed]) kill_child(pids[doomed], &killed[doomed]);
        hx_wait_ok(pids[!doomed], 30000);
    } else {
        take_stats(t, ctl[0], pids, killed);
        take_stats(t, ctl[1], pids, killed);
        hx_wait_all(pids, 2, 30000);
    }
    close(ca[0]), close(cb[0]);
    t->rounds++;
    t->clean += p->type == R_CLEAN;
    t->fault_rounds += p->type == R_FAULT;
    if (p->type == R_FAULT) t->faults[p->fault_kind]++;
    t->digest += p->digest;
    t->gpu_rounds += p->gpu[0] >= 0 || p->gpu[1] >= 0;
    for (int k = 0; k < 4; k++) t->gpu_regions += p->kind[k / 2][k % 2] == TCPX_MEM_CUDA;
    t->regions += 4;
}

static void summary(const totals *t, uint64_t wall_ms, int fault_ok, int gpu)
{
    const soak_stats *s = &t->st;
    uint64_t nfail = 0;
    for (int k = 1; k < SOAK_NSTATUS; k++) nfail += s->failed[k];
    printf("\n== soak summary (seed %" PRIu64 ")\n", hx_seed);
    printf("rounds              %" PRIu64 " (clean %" PRIu64 ", peer killed %" PRIu64 ", fault %" PRIu64
           ", with data digest %" PRIu64 ")\n",
           t->rounds, t->clean, t->kills, t->fault_rounds, t->digest);
    if (gpu)
        printf("memory              %" PRIu64 " of %" PRIu64 " regions GPU memory, in %" PRIu64
               " rounds; %.2f GiB of the bytes verified lay in GPU memory\n",
               t->gpu_regions, t->regions, t->gpu_rounds, (double)s->bytes_verified_gpu / (1u << 30));
    else
        printf("memory              host only (--gpu: GPU memory too)\n");
    printf("transfers posted    %" PRIu64 "\n", s->posted);
    printf("  completed OK      %" PRIu64 "\n", s->ok);
    printf("  failed            %" PRIu64 " (%" PRIu64 " at post)", nfail, s->failed_post);
    for (int k = 1; k < SOAK_NSTATUS; k++)
        if (s->failed[k]) printf(", %s %" PRIu64, tcpx_strerror((tcpx_status)-k), s->failed[k]);
    printf("\n  released          %" PRIu64 " (longest release %" PRIu64 " ms; %" PRIu64
           " of them after the peer released its side, never matched)\n",
           s->released, s->max_release_ms, s->orphaned);
    printf("notifications       %" PRIu64 " sent alone (%" PRIu64 " refused: peer gone), %" PRIu64
           " received and checked (alone or attached)\n",
           s->notifs_sent, s->notifs_failed, s->notifs_verified);
    printf("bytes verified      %" PRIu64 " (%.2f GiB)\n", s->bytes_verified, (double)s->bytes_verified / (1u << 30));
    printf("corrupted bytes     %" PRIu64 "\n", s->corrupted);
    printf("longest wait        %" PRIu64 " ms\n", s->max_wait_ms);
    printf("kills               %" PRIu64 "\n", t->kills);
    printf("faults              ");
    if (!fault_ok) printf("none (libtcpx_fault.so not preloaded)");
    for (int k = 0; fault_ok && k < F_NKINDS; k++)
        printf("%s%s %" PRIu64, k ? ", " : "", soak_fault_names[k], t->faults[k]);
    printf("\nwall time           %.1f s\n", (double)wall_ms / 1000.0);
    printf("result              %s\n", s->corrupted ? "FAIL: corrupted bytes" : "PASS");
    printf("(figures of killed and stalled processes are not counted)\n");
}

int main(int argc, char **argv)
{
    double seconds = 0;
    uint64_t want = 0;
    int first = 0, max_rounds = 0;
    soak_opts o = {.max_region = 192u << 20};
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--gpu")) {
            o.gpu = 1;
            i--;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "soak: %s needs a value\n", argv[i]);
            return 2;
        } else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--transfers")) want = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--round")) first = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) max_rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-region")) o.max_region = strtoull(argv[i + 1], NULL, 0) << 20;
        else {
            fprintf(stderr, "usage: soak [--seconds S] [--transfers N] [--round R] [--rounds K] [--max-region MiB] "
                            "[--gpu]\n");
            return 2;
        }
    }
    if (!seconds && !want && !max_rounds) seconds = 120;
    hx_init("soak", 0);
    if (o.gpu) { /* in a child: this process must not touch CUDA before it forks */
        gt_probe pr;
        gt_probe_or_skip(&pr);
        o.gpu_dev[0] = pr.gpu_a, o.gpu_dev[1] = pr.gpu_b;
        hx_log("GPU memory: A on %s, B on %s", pr.desc_a, pr.desc_b);
    }
    o.fault_ok = dlsym(RTLD_DEFAULT, "tcpx_fault_arm") != NULL;
    hx_log("%s; %s; until %.0f s / %" PRIu64 " transfers / %d rounds (0 = no limit)",
           o.fault_ok ? "fault shim loaded" : "no fault shim (LD_PRELOAD libtcpx_fault.so for fault rounds)",
           o.gpu ? "host and GPU memory" : "host memory only", seconds,
           want, max_rounds);
    static totals t;
    uint64_t t0 = hx_now_ms();
    for (int r = first;; r++) {
        uint64_t el = hx_now_ms() - t0;
        if ((seconds > 0 && (double)el >= seconds * 1000.0) || (want && t.st.posted >= want) ||
            (max_rounds && (int)t.rounds >= max_rounds))
            break;
        soak_plan_make(&g_plan, hx_seed, r, &o);
        if (getenv("SOAK_DUMP")) soak_plan_dump(&g_plan);
        uint64_t r0 = hx_now_ms();
        run_round(&g_plan, &t);
        hx_log("round %d: %s%s%s, %d ops, ch %d, chunk %zu: %" PRIu64 " ms; total %" PRIu64
               " transfers, %.2f GiB checked",
               r, soak_round_name(&g_plan), g_plan.digest ? " +digest" : "", soak_mem_name(&g_plan), g_plan.nops,
               g_plan.channels,
               g_plan.chunk, hx_now_ms() - r0, t.st.posted, (double)t.st.bytes_verified / (1u << 30));
        HX_CHECK(!t.st.corrupted, "round %d: corrupted bytes (replay: HX_SEED=%" PRIu64 " soak --round %d --rounds 1)",
                 r, hx_seed, r);
    }
    summary(&t, hx_now_ms() - t0, o.fault_ok, o.gpu);
    return t.st.corrupted ? 1 : 0;
}
