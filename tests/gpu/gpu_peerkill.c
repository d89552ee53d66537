/*
 * gpu_peerkill - a peer SIGKILLed in the middle of a large GPU->GPU transfer.
 *
 * Four processes and the supervisor; A on GPU TCPX_TEST_GPU_A, the others
 * on TCPX_TEST_GPU_B. BIG is 1 GiB, or 512 MiB when the devices have less
 * than 12 GiB free (skipped below 5 GiB).
 *   part 1: A sends BIG from GPU memory to B's GPU memory. B watches its
 *           buffer on the device; as soon as bytes land it tells the
 *           supervisor, which SIGKILLs it. A's wait must fail with
 *           TCPX_ERR_PEER (or TIMEOUT) within peer_timeout_ms (5 s) + slack
 *           of the kill; releasing the transfer, deregistering the GPU
 *           region and later destroying the session must all succeed
 *           promptly; peer_status(B) is an error and new transfers to B are
 *           refused.
 *   part 2: D sends BIG from its GPU to A's GPU memory; A watches its buffer
 *           and has the supervisor SIGKILL D mid-transfer. A's pending
 *           receive must fail in bounded time; once it is released no byte
 *           of A's region may change.
 *   part 3: the same session of A connects to a healthy peer C and exchanges
 *           16 MiB+5 both ways (GPU to GPU, and GPU to host), verified.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gt_common.h"

#define PEER_TIMEOUT_MS 5000
#define FAIL_BOUND_MS (PEER_TIMEOUT_MS + HX_MS(3000))

static gt_probe g_probe;
static size_t g_big;
static int fd_ab[2], fd_ad[2], fd_ac[2];
static int ctl_a[2], ctl_b[2]; /* [0] supervisor, [1] child */

/* The watching receiver (B) runs without its progress thread: each of its
 * test() calls then lands at most a window of chunks, so the transfer
 * cannot finish between two looks at the buffer (with the thread it did,
 * now and then, on a loaded machine). */
static tcpx_session *make(const char *name, int gpu)
{
    gt_sess_opts o = {.name = name, .gpu = gpu, .channels = 4, .peer_timeout_ms = PEER_TIMEOUT_MS,
                      .no_progress_thread = !strcmp(name, "B")};
    return gt_session(&o);
}

/* Spin on test() until bytes of the transfer land in the first 4 KiB of r
 * (which holds the sequence of `poison` until then), then tell the
 * supervisor on ctl. */
static void watch_and_report(tcpx_xfer *x, gt_region *r, uint64_t poison, int ctl, const char *what)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(60000);
    for (;;) {
        tcpx_status st = tcpx_xfer_test(x);
        if (st != TCPX_IN_PROGRESS && st != TCPX_OK)
            HX_FAIL("%s: the transfer failed with %s before anyone was killed: %s", what, tcpx_strerror(st),
                    tcpx_last_error());
        if (gt_first_bad(r, 0, 4096, poison) != UINT64_MAX) {
            if (st == TCPX_OK)
                HX_FAIL("%s: the %zu MiB transfer completed before it could be interrupted", what, g_big / GT_MiB);
            hx_send_str(ctl, "moving");
            return;
        }
        HX_CHECK(st != TCPX_OK, "%s: the transfer completed but no byte changed at the start of the buffer", what);
        HX_CHECK(hx_now_ms() < deadline, "%s: no byte arrived within %d ms", what, HX_MS(60000));
    }
}

/* Wait for the transfer that must fail because its peer was killed. */
static void expect_killed_peer(tcpx_xfer *x, const char *what)
{
    uint64_t ms;
    tcpx_status st = hx_wait_timed(x, HX_MS(30000), &ms);
    uint64_t fail_at = hx_now_ms();
    uint64_t kill_at = hx_recv_u64(ctl_a[1], 30000);
    if (st == TCPX_OK)
        HX_FAIL("%s: tcpx_xfer_wait returned TCPX_OK although the peer was SIGKILLed mid-transfer", what);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT,
             "%s: tcpx_xfer_wait returned %s, expected TCPX_ERR_PEER: %s", what, tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(!(st == TCPX_ERR_TIMEOUT && ms >= (uint64_t)HX_MS(29000)),
             "%s: tcpx_xfer_wait hit its own 30 s deadline: the dead peer was never detected", what);
    HX_CHECK(tcpx_last_error()[0] != '\0', "%s: %s without a sentence in tcpx_last_error()", what, tcpx_strerror(st));
    uint64_t lat = fail_at > kill_at ? fail_at - kill_at : 0;
    HX_CHECK(lat <= (uint64_t)FAIL_BOUND_MS, "%s: failure reported %" PRIu64 " ms after the kill (bound %d ms)", what,
             lat, FAIL_BOUND_MS);
    hx_log("%s: %s %" PRIu64 " ms after the kill (%s)", what, tcpx_strerror(st), lat, tcpx_last_error());
    st = tcpx_xfer_test(x);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT, "%s: tcpx_xfer_test after the failure returned %s", what,
             tcpx_strerror(st));
    uint64_t t0 = hx_now_ms();
    tcpx_xfer_release(x);
    uint64_t rel = hx_now_ms() - t0;
    HX_CHECK(rel <= (uint64_t)FAIL_BOUND_MS, "%s: releasing the failed transfer took %" PRIu64 " ms (bound %d ms)",
             what, rel, FAIL_BOUND_MS);
}

static void expect_peer_dead(tcpx_session *s, const char *peer)
{
    tcpx_status st = tcpx_session_peer_status(s, peer);
    HX_CHECK(st != TCPX_OK && st != TCPX_ERR_NOT_FOUND,
             "peer_status(%s) after it was killed is %s, expected the error that failed it", peer, tcpx_strerror(st));
    tcpx_xfer *x = NULL;
    st = tcpx_xfer_create(s, peer, &x);
    HX_CHECK(st == TCPX_ERR_PEER || st == TCPX_ERR_TIMEOUT || st == TCPX_ERR_NOT_FOUND,
             "xfer_create to the killed peer %s returned %s, expected TCPX_ERR_PEER", peer, tcpx_strerror(st));
}

/* Deregister and free a region; the deregistration must succeed promptly. */
static void fini_bounded(tcpx_session *s, gt_region *r, const char *what)
{
    uint64_t t0 = hx_now_ms();
    gt_region_fini(s, r);
    uint64_t ms = hx_now_ms() - t0;
    HX_CHECK(ms <= (uint64_t)FAIL_BOUND_MS, "%s: deregistering and freeing took %" PRIu64 " ms", what, ms);
}

static int proc_a(void *arg)
{
    (void)arg;
    gt_gpu dev;
    gt_gpu_open(&dev, g_probe.gpu_a);
    tcpx_session *s = make("A", g_probe.gpu_a);

    /* part 1: A -> B, B killed */
    gt_region snd;
    gt_region_init(s, &dev, &snd, TCPX_MEM_CUDA, g_big + 4096, hx_mix(hx_seed, 0xA0), "A-send-gpu");
    hx_connect_to(s, "B", fd_ab[0]);
    hx_expect_str(fd_ab[0], "posted", 60000);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 1, g_big, 1));
    expect_killed_peer(x, "part 1: GPU send to a receiver killed mid-transfer");
    expect_peer_dead(s, "B");
    fini_bounded(s, &snd, "part 1: the send region after the failed send");

    /* part 2: D -> A, D killed */
    hx_send_str(fd_ad[0], "go");
    hx_accept_from(s, "D", fd_ad[0]);
    gt_region rcv;
    uint64_t rpoison = hx_mix(hx_seed, 0xA1);
    gt_region_init(s, &dev, &rcv, TCPX_MEM_CUDA, g_big + 4096, rpoison, "A-recv-gpu");
    HX_OK(tcpx_xfer_create(s, "D", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, g_big, 2));
    hx_send_str(fd_ad[0], "posted");
    watch_and_report(x, &rcv, rpoison, ctl_a[1], "part 2 (receiver A)");
    expect_killed_peer(x, "part 2: GPU receive from a sender killed mid-transfer");
    expect_peer_dead(s, "D");
    /* after release, nothing may write into the region any more */
    uint64_t after = hx_mix(hx_seed, 0xA2);
    gt_fill(&rcv, 0, rcv.size, after);
    hx_progress_for(s, 300);
    hx_sleep_ms(200);
    GT_CHECK_DATA("part 2: GPU receive region after the failed receive was released", &rcv, 0, rcv.size, after);
    fini_bounded(s, &rcv, "part 2: the receive region after the failed receive");
    HX_CHECK(tcpx_session_peer_status(s, "B") != TCPX_OK, "B came back to life");

    /* part 3: a healthy peer, same session */
    hx_send_str(fd_ac[0], "go");
    hx_connect_to(s, "C", fd_ac[0]);
    const size_t size = 16 * GT_MiB + 5;
    uint64_t sseed = hx_mix(hx_seed, 31), rseed_gpu = hx_mix(hx_seed, 32), rseed_host = hx_mix(hx_seed, 34);
    gt_region s3, r3g, r3h;
    gt_region_init(s, &dev, &s3, TCPX_MEM_CUDA, size + 8192, hx_mix(hx_seed, 0xA3), "A-part3-send-gpu");
    gt_region_init(s, &dev, &r3g, TCPX_MEM_CUDA, size + 8192, hx_mix(hx_seed, 0xA4), "A-part3-recv-gpu");
    gt_region_init(s, NULL, &r3h, TCPX_MEM_HOST, size + 8192, hx_mix(hx_seed, 0xA5), "A-part3-recv-host");
    gt_fill(&s3, 11, size, sseed);
    gt_target tg, th;
    gt_target_prepare(&tg, &r3g, 4097, size, hx_mix(hx_seed, 0xA6));
    gt_target_prepare(&th, &r3h, 3, size, hx_mix(hx_seed, 0xA7));
    HX_OK(tcpx_xfer_create(s, "C", &x));
    HX_OK(tcpx_xfer_post_send(x, s3.id, 11, size, 3));
    HX_OK(tcpx_xfer_post_recv(x, r3g.id, 4097, size, 4));
    HX_OK(tcpx_xfer_post_recv(x, r3h.id, 3, size, 5));
    uint64_t t0 = gt_now_us();
    HX_WAIT_OK(x, 60000, "part 3: exchange with the healthy peer C");
    uint64_t us = gt_now_us() - t0;
    tcpx_xfer_release(x);
    gt_target_check(&tg, rseed_gpu, "part 3: GPU->GPU bytes from C");
    gt_target_check(&th, rseed_host, "part 3: GPU->host bytes from C");
    GT_CHECK_DATA("part 3: A's GPU source after the send", &s3, 11, size, sseed);
    hx_log("summary: gpu_peerkill: part 3, %zu bytes x 3 with a healthy peer after two kills: %.3f ms, %.3f GB/s", size,
           (double)us / 1e3, gt_gbps(3 * size, us));
    hx_send_str(fd_ac[0], "end");
    hx_expect_str(fd_ac[0], "end", 60000);
    fini_bounded(s, &s3, "part 3");
    fini_bounded(s, &r3g, "part 3");
    fini_bounded(s, &r3h, "part 3");
    gt_session_destroy(s, FAIL_BOUND_MS);
    gt_gpu_close(&dev);
    hx_log("ok");
    return 0;
}

static int proc_b(void *arg) /* receiver, killed */
{
    (void)arg;
    gt_gpu dev;
    gt_gpu_open(&dev, g_probe.gpu_b);
    tcpx_session *s = make("B", g_probe.gpu_b);
    gt_region rcv;
    uint64_t poison = hx_mix(hx_seed, 0xB1);
    gt_region_init(s, &dev, &rcv, TCPX_MEM_CUDA, g_big, poison, "B-recv-gpu");
    hx_accept_from(s, "A", fd_ab[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 0, g_big, 1));
    hx_send_str(fd_ab[1], "posted");
    watch_and_report(x, &rcv, poison, ctl_b[1], "part 1 (receiver B)");
    for (;;) { /* keep receiving until killed */
        tcpx_status st = tcpx_xfer_wait(x, 100);
        if (st == TCPX_OK) {
            hx_log("note: the receive completed before the kill landed");
            break;
        }
        HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS, "receiver B: wait returned %s: %s",
                 tcpx_strerror(st), tcpx_last_error());
    }
    hx_sleep_ms(120000);
    return 9;
}

static int proc_d(void *arg) /* sender, killed */
{
    (void)arg;
    gt_gpu dev;
    gt_gpu_open(&dev, g_probe.gpu_b);
    tcpx_session *s = make("D", g_probe.gpu_b);
    gt_region snd;
    gt_region_init(s, &dev, &snd, TCPX_MEM_CUDA, g_big, hx_mix(hx_seed, 0xD0), "D-send-gpu");
    hx_expect_str(fd_ad[1], "go", 120000);
    hx_connect_to(s, "A", fd_ad[1]);
    hx_expect_str(fd_ad[1], "posted", 60000);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 0, g_big, 2));
    for (;;) {
        tcpx_status st = tcpx_xfer_wait(x, 100);
        if (st == TCPX_OK) {
            hx_log("note: the send completed before the kill landed");
            break;
        }
        HX_CHECK(st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS, "sender D: wait returned %s: %s",
                 tcpx_strerror(st), tcpx_last_error());
    }
    hx_sleep_ms(120000);
    return 9;
}

static int proc_c(void *arg) /* healthy */
{
    (void)arg;
    gt_gpu dev;
    gt_gpu_open(&dev, g_probe.gpu_b);
    tcpx_session *s = make("C", g_probe.gpu_b);
    const size_t size = 16 * GT_MiB + 5;
    gt_region snd, rcv;
    gt_region_init(s, &dev, &snd, TCPX_MEM_CUDA, 2 * size + 64, hx_mix(hx_seed, 0xC0), "C-send-gpu");
    gt_region_init(s, &dev, &rcv, TCPX_MEM_CUDA, size + 2, hx_mix(hx_seed, 0xC1), "C-recv-gpu");
    gt_fill(&snd, 1, size, hx_mix(hx_seed, 32));
    gt_fill(&snd, size + 33, size, hx_mix(hx_seed, 34));
    gt_target t;
    gt_target_prepare(&t, &rcv, 1, size, hx_mix(hx_seed, 0xC2));
    hx_expect_str(fd_ac[1], "go", 150000);
    hx_accept_from(s, "A", fd_ac[1]);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "A", &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 1, size, 3));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 1, size, 4));
    HX_OK(tcpx_xfer_post_send(x, snd.id, size + 33, size, 5));
    HX_WAIT_OK(x, 60000, "C: exchange with A");
    tcpx_xfer_release(x);
    gt_target_check(&t, hx_mix(hx_seed, 31), "C: GPU->GPU bytes from A");
    hx_expect_str(fd_ac[1], "end", 60000);
    hx_send_str(fd_ac[1], "end");
    gt_region_fini(s, &snd);
    gt_region_fini(s, &rcv);
    gt_session_destroy(s, FAIL_BOUND_MS);
    gt_gpu_close(&dev);
    return 0;
}

static void kill_now(pid_t victim, const char *who)
{
    uint64_t t = hx_now_ms();
    HX_CHECK(kill(victim, SIGKILL) == 0, "kill %s", who);
    hx_wait_killed(victim, SIGKILL, 10000);
    hx_send_u64(ctl_a[0], t);
    hx_log("killed %s mid-transfer", who);
}

int main(void)
{
    hx_init("gpu_peerkill", 170);
    gt_probe_or_skip(&g_probe);
    size_t free_min = gt_probe_min_free(&g_probe);
    if (free_min >= 12 * GT_GiB) g_big = GT_GiB;
    else if (free_min >= 5 * GT_GiB) g_big = 512 * GT_MiB;
    else
        gt_skip("gpu_peerkill needs 5 GiB free on its devices; GPU %d has %.1f GiB, GPU %d has %.1f GiB",
                g_probe.gpu_a, (double)g_probe.free_a / (double)GT_GiB, g_probe.gpu_b,
                (double)g_probe.free_b / (double)GT_GiB);
    hx_log("transfers of %zu MiB, peer_timeout_ms %d, failures must be reported within %d ms of a kill",
           g_big / GT_MiB, PEER_TIMEOUT_MS, FAIL_BOUND_MS);
    hx_pair(fd_ab);
    hx_pair(fd_ad);
    hx_pair(fd_ac);
    hx_pair(ctl_a);
    hx_pair(ctl_b);
    pid_t pa = hx_spawn("A", 160, proc_a, NULL);
    pid_t pb = hx_spawn("B", 160, proc_b, NULL);
    pid_t pd = hx_spawn("D", 160, proc_d, NULL);
    pid_t pc = hx_spawn("C", 160, proc_c, NULL);
    pid_t all[4] = {pa, pb, pd, pc};
    hx_expect_str_watch(ctl_b[0], "moving", all, 4, 90000);
    kill_now(pb, "receiver B");
    pid_t rest[3] = {pa, pd, pc};
    hx_expect_str_watch(ctl_a[0], "moving", rest, 3, 90000);
    kill_now(pd, "sender D");
    pid_t live[2] = {pa, pc};
    hx_wait_all(live, 2, 90000);
    hx_log("PASS");
    return 0;
}
