/*
 * it_multipeer - one hub session, three spoke processes, all at once.
 *
 *   - the three spokes connect to the hub at the same moment; the hub accepts
 *     them in the order S3, S1, S2 (connections of the others that arrive
 *     meanwhile must be kept for their own accept);
 *   - every spoke and the hub then exchange messages with the SAME tags and
 *     sizes but different contents, in both directions, all in flight at
 *     once: matching is per peer, so no byte may cross between peers;
 *   - the hub also uses one transfer per peer holding several operations and
 *     waits in reverse order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define NSPOKE 3
#define NMSG 6

static int fd_hs[NSPOKE][2];
static const size_t sizes[NMSG] = {1, 4000, 70000, 1 * MiB + 1, 100, 3 * MiB};
#define SLOT (4 * MiB)

/* content seed of message k from `from` to `to` (0 = hub, 1..3 = spokes) */
static uint64_t seed_of(int from, int to, int k)
{
    return hx_mix(hx_seed, (uint64_t)(from * 100 + to * 10 + k));
}

static int spoke(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1..3 */
    int fd = fd_hs[id - 1][1];
    char name[8];
    snprintf(name, sizeof name, "S%d", id);
    hx_sess_opts o = {.name = name, .channels = id, .chunk = 64 * 1024, .connect_timeout_ms = 20000};
    tcpx_session *s = hx_session_ex(&o);
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, 900 + (uint64_t)id);
    hx_region_init(s, &snd, NMSG * SLOT, 1);
    hx_region_init(s, &rcv, NMSG * SLOT, guard);
    for (int k = 0; k < NMSG; k++) hx_fill(snd.ptr + (size_t)k * SLOT, sizes[k], seed_of(id, 0, k), 0);
    const void *mine;
    size_t mylen, len;
    HX_OK(tcpx_session_listen(s, &mine, &mylen));
    void *blob = hx_recv_blob(fd, &len);
    HX_OK(tcpx_session_load_remote(s, "H", blob, len));
    free(blob);
    hx_expect_str(fd, "go", 30000); /* all spokes connect at once */
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_connect(s, "H");
    HX_CHECK(st == TCPX_OK, "%s: connect to the hub returned %s after %" PRIu64 " ms: %s", name, tcpx_strerror(st),
             hx_now_ms() - t0, tcpx_last_error());
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "H", &x));
    for (int k = 0; k < NMSG; k++) {
        HX_OK(tcpx_xfer_post_recv(x, rcv.id, (size_t)k * SLOT + 1, sizes[k], (uint64_t)k));
        HX_OK(tcpx_xfer_post_send(x, snd.id, (size_t)k * SLOT, sizes[k], (uint64_t)k));
    }
    HX_WAIT_OK(x, 30000, "spoke exchange with the hub");
    tcpx_xfer_release(x);
    for (int k = 0; k < NMSG; k++) {
        char what[96];
        snprintf(what, sizeof what, "%s: message %d from the hub (%zu bytes)", name, k, sizes[k]);
        HX_CHECK_PATTERN(what, rcv.ptr + (size_t)k * SLOT + 1, sizes[k], seed_of(0, id, k), 0);
        hx_fill(rcv.ptr + (size_t)k * SLOT + 1, sizes[k], guard, (size_t)k * SLOT + 1);
    }
    HX_CHECK_PATTERN("spoke receive region outside the messages", rcv.ptr, rcv.size, guard, 0);
    hx_send_str(fd, "done");
    hx_expect_str(fd, "end", 30000);
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

static int hub(void *arg)
{
    (void)arg;
    hx_sess_opts o = {.name = "H", .channels = 4, .chunk = 128 * 1024, .connect_timeout_ms = 20000};
    tcpx_session *s = hx_session_ex(&o);
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, 999);
    hx_region_init(s, &snd, (size_t)NSPOKE * NMSG * SLOT, 2);
    hx_region_init(s, &rcv, (size_t)NSPOKE * NMSG * SLOT, guard);
    for (int p = 1; p <= NSPOKE; p++)
        for (int k = 0; k < NMSG; k++)
            hx_fill(snd.ptr + ((size_t)(p - 1) * NMSG + (size_t)k) * SLOT, sizes[k], seed_of(0, p, k), 0);
    for (int p = 0; p < NSPOKE; p++) hx_send_blob(s, fd_hs[p][0]);
    for (int p = 0; p < NSPOKE; p++) hx_send_str(fd_hs[p][0], "go");
    static const int order[NSPOKE] = {3, 1, 2};
    for (int i = 0; i < NSPOKE; i++) {
        char peer[8];
        snprintf(peer, sizeof peer, "S%d", order[i]);
        uint64_t t0 = hx_now_ms();
        tcpx_status st = tcpx_session_accept(s, peer);
        HX_CHECK(st == TCPX_OK, "accept(%s) with three spokes connecting at once returned %s after %" PRIu64
                 " ms: %s", peer, tcpx_strerror(st), hx_now_ms() - t0, tcpx_last_error());
    }
    tcpx_xfer *xs[NSPOKE];
    for (int p = 1; p <= NSPOKE; p++) {
        char peer[8];
        snprintf(peer, sizeof peer, "S%d", p);
        HX_OK(tcpx_xfer_create(s, peer, &xs[p - 1]));
        for (int k = 0; k < NMSG; k++) {
            size_t slot = ((size_t)(p - 1) * NMSG + (size_t)k) * SLOT;
            HX_OK(tcpx_xfer_post_send(xs[p - 1], snd.id, slot, sizes[k], (uint64_t)k));
            HX_OK(tcpx_xfer_post_recv(xs[p - 1], rcv.id, slot + 3, sizes[k], (uint64_t)k));
        }
    }
    for (int p = NSPOKE; p >= 1; p--) {
        char what[64];
        snprintf(what, sizeof what, "hub exchange with S%d", p);
        HX_WAIT_OK(xs[p - 1], 30000, what);
        tcpx_xfer_release(xs[p - 1]);
    }
    for (int p = 1; p <= NSPOKE; p++)
        for (int k = 0; k < NMSG; k++) {
            size_t slot = ((size_t)(p - 1) * NMSG + (size_t)k) * SLOT;
            char what[96];
            snprintf(what, sizeof what, "hub: message %d from S%d (%zu bytes)", k, p, sizes[k]);
            HX_CHECK_PATTERN(what, rcv.ptr + slot + 3, sizes[k], seed_of(p, 0, k), 0);
            hx_fill(rcv.ptr + slot + 3, sizes[k], guard, slot + 3);
        }
    HX_CHECK_PATTERN("hub receive region outside the messages", rcv.ptr, rcv.size, guard, 0);
    for (int p = 0; p < NSPOKE; p++) hx_expect_str(fd_hs[p][0], "done", 30000);
    for (int p = 0; p < NSPOKE; p++) hx_send_str(fd_hs[p][0], "end");
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("multipeer", 100);
    for (int p = 0; p < NSPOKE; p++) hx_pair(fd_hs[p]);
    pid_t pids[NSPOKE + 1];
    pids[0] = hx_spawn("H", 90, hub, NULL);
    for (int p = 1; p <= NSPOKE; p++) {
        char role[8];
        snprintf(role, sizeof role, "S%d", p);
        pids[p] = hx_spawn(role, 90, spoke, (void *)(intptr_t)p);
    }
    hx_wait_all(pids, NSPOKE + 1, 95000);
    hx_log("PASS");
    return 0;
}
