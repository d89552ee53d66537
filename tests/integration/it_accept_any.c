/*
 * it_accept_any - a passive target with accept_any, connections in every
 * shape:
 *   1. target T (accept_any, never calls accept or posts anything) serves
 *      three initiators at once; each WRITEs a list with a notification and
 *      READs a list back; T's application only polls notifications, checks
 *      the bytes each one announces and who sent it;
 *   2. simultaneous connect: two accept_any sessions load each other's info
 *      and connect at the same instant, 6 times with fresh sessions (both
 *      tie-break outcomes); both calls succeed, and one connection carries a
 *      WRITE each way and a two-sided message each way;
 *   3. connect and load_remote again on a connected peer are no-ops; one
 *      initiator connects with connect_start and watches peer_status;
 *   4. a session connected to itself: WRITE, READ and a send/receive pair
 *      between two places of its own memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define NINIT 3
#define REGION (16u * MiB)
#define T_WAIT 30000

static int boot[NINIT][2];

static tcpx_session *make(const char *name, int accept_any)
{
    hx_sess_opts o = {.name = name, .channels = 2, .chunk = 256 * 1024, .accept_any = accept_any};
    return hx_session_ex(&o);
}

/* Block i of initiator k's list: disjoint pieces of T's region per k. */
static void block_of(int k, int i, size_t *off, size_t *len, uint64_t *seed)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, (uint64_t)(k * 1000 + i)));
    *len = 1 + (size_t)hx_rng_below(&r, 20000);
    *off = (size_t)k * (REGION / NINIT) + (size_t)i * 24000 + (size_t)hx_rng_below(&r, 3000);
    *seed = hx_mix(hx_seed, 0xB10C + (uint64_t)(k * 1000 + i));
}
#define NBLOCKS 100

static int proc_target(void *arg)
{
    (void)arg;
    tcpx_session *s = make("T", 1);
    hx_region reg;
    uint64_t guard = hx_mix(hx_seed, 0x7);
    hx_region_init(s, &reg, REGION, guard);
    for (int k = 0; k < NINIT; k++) {
        hx_send_blob(s, boot[k][1]);
        hx_send_memdesc(s, reg.id, boot[k][1]);
    }
    /* Each initiator WRITEs its list (notification "w<k>"), then READs it
     * back (notification "r<k>"): both checked here, in order per peer. */
    int seen_w[NINIT] = {0}, seen_r[NINIT] = {0};
    for (int got = 0; got < 2 * NINIT; got++) {
        char buf[64], from[TCPX_NAME_MAX];
        size_t len = 0;
        uint64_t deadline = hx_now_ms() + HX_MS(T_WAIT);
        tcpx_status st;
        while ((st = tcpx_notify_poll(s, from, sizeof from, buf, sizeof buf - 1, &len)) == TCPX_IN_PROGRESS) {
            HX_CHECK(hx_now_ms() < deadline, "target: %d of %d notifications in %d ms", got, 2 * NINIT, T_WAIT);
            hx_sleep_ms(1);
        }
        HX_OK(st);
        buf[len] = '\0';
        int k = -1;
        HX_CHECK(len == 2 && (buf[0] == 'w' || buf[0] == 'r') && (k = buf[1] - '0') >= 0 && k < NINIT,
                 "target: notification \"%s\"", buf);
        char want[8];
        snprintf(want, sizeof want, "I%d", k);
        HX_CHECK(!strcmp(from, want), "target: notification %s from %s", buf, from);
        if (buf[0] == 'w') {
            HX_CHECK(!seen_w[k] && !seen_r[k], "target: %s out of order", buf);
            seen_w[k] = 1;
            for (int i = 0; i < NBLOCKS; i++) {
                size_t off, blen;
                uint64_t seed;
                block_of(k, i, &off, &blen, &seed);
                HX_CHECK_PATTERN("target: written block", reg.ptr + off, blen, seed, 0);
            }
        } else {
            HX_CHECK(seen_w[k] && !seen_r[k], "target: %s out of order", buf);
            seen_r[k] = 1;
        }
    }
    for (int k = 0; k < NINIT; k++) hx_send_str(boot[k][1], "checked");
    for (int k = 0; k < NINIT; k++) hx_expect_str(boot[k][1], "bye", T_WAIT);
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_init(void *arg)
{
    int k = (int)(intptr_t)arg;
    int fd = boot[k][0];
    char name[8];
    snprintf(name, sizeof name, "I%d", k);
    tcpx_session *s = make(name, 0);
    hx_region reg;
    hx_region_init(s, &reg, REGION, hx_mix(hx_seed, 0x100 + (uint64_t)k));
    size_t blen;
    void *blob = hx_recv_blob(fd, &blen);
    tcpx_memdesc remote;
    hx_recv_memdesc(fd, &remote);
    HX_OK(tcpx_session_load_remote(s, "T", blob, blen));
    if (k == NINIT - 1) { /* without waiting: connect_start, then peer_status until it is up */
        tcpx_status st = tcpx_session_connect_start(s, "T");
        HX_CHECK(st == TCPX_OK || st == TCPX_IN_PROGRESS, "connect_start: %s: %s", tcpx_strerror(st),
                 tcpx_last_error());
        uint64_t deadline = hx_now_ms() + HX_MS(T_WAIT);
        while ((st = tcpx_session_peer_status(s, "T")) == TCPX_IN_PROGRESS) {
            HX_CHECK(hx_now_ms() < deadline, "connect_start: not connected in time");
            hx_sleep_ms(1);
        }
        HX_OK(st);
        HX_OK(tcpx_session_connect_start(s, "T")); /* connected: OK at once */
    }
    HX_OK(tcpx_session_connect(s, "T"));
    HX_OK(tcpx_session_load_remote(s, "T", blob, blen)); /* same info again: no-op */
    HX_OK(tcpx_session_connect(s, "T"));                 /* connected: no-op */
    free(blob);
    tcpx_block b[NBLOCKS];
    for (int i = 0; i < NBLOCKS; i++) {
        size_t off, len;
        uint64_t seed;
        block_of(k, i, &off, &len, &seed);
        size_t loff = (size_t)i * 30000 + 7;
        hx_fill(reg.ptr + loff, len, seed, 0);
        b[i] = (tcpx_block){reg.id, loff, &remote, off, len};
    }
    char note[3] = {'w', (char)('0' + k), 0};
    tcpx_notif_msg nm = {note, 2};
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "T", &x));
    HX_OK(tcpx_xfer_post_write_list(x, NBLOCKS, b, &nm));
    HX_WAIT_OK(x, T_WAIT, "initiator: WRITE list to the passive target");
    tcpx_xfer_release(x);
    /* Read it back elsewhere. */
    for (int i = 0; i < NBLOCKS; i++) b[i].local_offset += 6 * MiB;
    note[0] = 'r';
    HX_OK(tcpx_xfer_create(s, "T", &x));
    HX_OK(tcpx_xfer_post_read_list(x, NBLOCKS, b, &nm));
    HX_WAIT_OK(x, T_WAIT, "initiator: READ list from the passive target");
    tcpx_xfer_release(x);
    for (int i = 0; i < NBLOCKS; i++) {
        size_t off, len;
        uint64_t seed;
        block_of(k, i, &off, &len, &seed);
        HX_CHECK_PATTERN("initiator: read back", reg.ptr + b[i].local_offset, len, seed, 0);
    }
    hx_expect_str(fd, "checked", T_WAIT);
    hx_send_str(fd, "bye");
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

/* ---------------------------------------------------- simultaneous connect */

static int pair_fd[2], go_fd[2][2];

static int proc_cross(void *arg)
{
    int me = (int)(intptr_t)arg;
    int fd = pair_fd[me];
    const char *name = me ? "D" : "C", *peer = me ? "C" : "D";
    tcpx_session *s = make(name, 1);
    hx_region reg;
    hx_region_init(s, &reg, 4 * MiB, hx_mix(hx_seed, 0xC0 + (uint64_t)me));
    hx_send_blob(s, fd);
    hx_send_memdesc(s, reg.id, fd);
    size_t blen;
    void *blob = hx_recv_blob(fd, &blen);
    tcpx_memdesc remote;
    hx_recv_memdesc(fd, &remote);
    HX_OK(tcpx_session_load_remote(s, peer, blob, blen));
    free(blob);
    hx_send_str(go_fd[me][1], "ready");
    hx_expect_str(go_fd[me][1], "go", T_WAIT);
    HX_OK(tcpx_session_connect(s, peer));
    HX_OK(tcpx_session_peer_status(s, peer));
    /* A WRITE each way and a two-sided message each way over it. */
    const size_t len = 1 * MiB + 17;
    uint64_t wseed = hx_mix(hx_seed, 0xD0 + (uint64_t)me), mseed = hx_mix(hx_seed, 0xE0 + (uint64_t)me);
    hx_fill(reg.ptr, len, wseed, 0);
    hx_fill(reg.ptr + 2 * MiB + 512 * 1024, 1000, mseed, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, peer, &x));
    tcpx_block b = {reg.id, 0, &remote, MiB + 64 * 1024 + 1, len};
    char note = (char)('C' + me);
    tcpx_notif_msg nm = {&note, 1};
    HX_OK(tcpx_xfer_post_write_list(x, 1, &b, &nm));
    HX_OK(tcpx_xfer_post_send(x, reg.id, 2 * MiB + 512 * 1024, 1000, 5));
    HX_OK(tcpx_xfer_post_recv(x, reg.id, 3 * MiB, 1000, 5));
    HX_WAIT_OK(x, T_WAIT, "crossing: write + send + recv");
    tcpx_xfer_release(x);
    char got[4];
    size_t n = hx_wait_notif(s, peer, got, sizeof got, T_WAIT);
    HX_CHECK(n == 1 && got[0] == (char)('C' + !me), "crossing: notification");
    HX_CHECK_PATTERN("crossing: written to me", reg.ptr + MiB + 64 * 1024 + 1, len, hx_mix(hx_seed, 0xD0 + (uint64_t)!me), 0);
    HX_CHECK_PATTERN("crossing: message to me", reg.ptr + 3 * MiB, 1000, hx_mix(hx_seed, 0xE0 + (uint64_t)!me), 0);
    hx_send_str(fd, "done");
    hx_expect_str(fd, "done", T_WAIT);
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

static void run_cross(int round)
{
    hx_pair(pair_fd);
    hx_pair(go_fd[0]);
    hx_pair(go_fd[1]);
    pid_t c = hx_spawn("C", 60, proc_cross, (void *)0);
    pid_t d = hx_spawn("D", 60, proc_cross, (void *)1);
    pid_t both[2] = {c, d};
    hx_expect_str_watch(go_fd[0][0], "ready", both, 2, T_WAIT);
    hx_expect_str_watch(go_fd[1][0], "ready", both, 2, T_WAIT);
    hx_send_str(go_fd[0][0], "go");
    hx_send_str(go_fd[1][0], "go");
    hx_wait_all(both, 2, 60000);
    hx_log("simultaneous connect round %d: OK", round);
    for (int i = 0; i < 2; i++) {
        close(pair_fd[i]);
        close(go_fd[0][i]);
        close(go_fd[1][i]);
    }
}

/* --------------------------------------------------------------- self */

static int proc_self(void *arg)
{
    (void)arg;
    tcpx_session *s = make("S", 0);
    hx_region reg;
    uint64_t guard = hx_mix(hx_seed, 0x5E1F);
    hx_region_init(s, &reg, 8 * MiB, guard);
    const void *blob;
    size_t blen;
    HX_OK(tcpx_session_listen(s, &blob, &blen));
    HX_OK(tcpx_session_load_remote(s, "me", blob, blen));
    HX_OK(tcpx_session_connect(s, "me"));
    tcpx_memdesc self;
    HX_OK(tcpx_memdesc_get(s, reg.id, &self));
    const size_t len = 1 * MiB + 3;
    uint64_t a = hx_mix(hx_seed, 0xAA), b = hx_mix(hx_seed, 0xBB), c = hx_mix(hx_seed, 0xCC);
    hx_fill(reg.ptr + 1, len, a, 0);
    hx_fill(reg.ptr + 3 * MiB, len, b, 0);
    hx_fill(reg.ptr + 6 * MiB, 5000, c, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "me", &x));
    /* Places that do not overlap: write [1) -> [1.5M), read [3M) -> [4.5M+9). */
    HX_OK(tcpx_xfer_post_write(x, reg.id, 1, &self, 3 * MiB / 2, len));
    HX_OK(tcpx_xfer_post_read(x, reg.id, 9 * MiB / 2 + 9, &self, 3 * MiB, len));
    HX_OK(tcpx_xfer_post_send(x, reg.id, 6 * MiB, 5000, 3));
    HX_OK(tcpx_xfer_post_recv(x, reg.id, 7 * MiB, 5000, 3));
    HX_WAIT_OK(x, T_WAIT, "self: write, read, send, recv");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("self: written", reg.ptr + 3 * MiB / 2, len, a, 0);
    HX_CHECK_PATTERN("self: read", reg.ptr + 9 * MiB / 2 + 9, len, b, 0);
    HX_CHECK_PATTERN("self: received", reg.ptr + 7 * MiB, 5000, c, 0);
    HX_OK(tcpx_notify_send(s, "me", "hi", 2));
    char got[4];
    HX_CHECK(hx_wait_notif(s, "me", got, sizeof got, T_WAIT) == 2 && !memcmp(got, "hi", 2), "self: notification");
    hx_region_fini(s, &reg);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("accept_any", 200);
    for (int k = 0; k < NINIT; k++) hx_pair(boot[k]);
    pid_t all[NINIT + 1];
    all[0] = hx_spawn("T", 60, proc_target, NULL);
    for (int k = 0; k < NINIT; k++) {
        char role[8];
        snprintf(role, sizeof role, "I%d", k);
        all[k + 1] = hx_spawn(role, 60, proc_init, (void *)(intptr_t)k);
    }
    hx_wait_all(all, NINIT + 1, 60000);
    hx_log("passive target with %d initiators: OK", NINIT);
    for (int round = 0; round < 6; round++) run_cross(round);
    pid_t me = hx_spawn("S", 60, proc_self, NULL);
    hx_wait_ok(me, 60000);
    hx_log("self connection: OK");
    hx_log("PASS");
    return 0;
}
