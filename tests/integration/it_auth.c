/*
 * it_auth - a client with the wrong session token is refused, and the
 * acceptor keeps waiting for (and accepts) the right one.
 *
 * The wrong blob is B's real connection info decoded with the internal
 * tcpx_conninfo_decode, its token changed, and re-encoded (valid checksum).
 *
 *   B  accepts "A":  client X (name "A") connects with the wrong token, must
 *                    fail (AUTH, or TIMEOUT/PEER) within its connect timeout;
 *                    X retries with the right blob and gets in; transfers.
 *   B  accepts "C":  client Y (name "C") with the wrong token fails; then a
 *                    third process Z (name "C") with the right token gets in.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blob.h"
#include "harness.h"

#define MiB (1024u * 1024u)
#define BAD_CONNECT_MS 3000

static int fd_bx[2], fd_by[2], fd_bz[2], fd_yz[2];

/* Both directions of a verified 2 MiB + 3 byte exchange with `peer`. */
static void exchange(tcpx_session *s, const char *peer, uint64_t tag, int i_am_lower)
{
    const size_t size = 2 * MiB + 3;
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, tag + 5);
    hx_region_init(s, &snd, size + 100, 1);
    hx_region_init(s, &rcv, size + 100, guard);
    uint64_t sseed = hx_mix(hx_seed, tag * 2 + (uint64_t)i_am_lower);
    uint64_t rseed = hx_mix(hx_seed, tag * 2 + (uint64_t)!i_am_lower);
    hx_fill(snd.ptr + 50, size, sseed, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, peer, &x));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 50, size, tag));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 17, size, tag));
    char what[64];
    snprintf(what, sizeof what, "exchange with %s", peer);
    HX_WAIT_OK(x, 30000, what);
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN(what, rcv.ptr + 17, size, rseed, 0);
    HX_CHECK_PATTERN("guard before", rcv.ptr, 17, guard, 0);
    HX_CHECK_PATTERN("guard after", rcv.ptr + 17 + size, 83, guard, 17 + size);
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
}

static void *wrong_token_blob(const void *blob, size_t len, size_t *out_len)
{
    tcpx_conninfo *ci = calloc(1, sizeof *ci);
    HX_OK(tcpx_conninfo_decode(blob, len, ci));
    ci->token ^= 0x00F0F0F00000FFFFull;
    size_t cap = tcpx_conninfo_size(ci->channels);
    HX_CHECK(cap == len, "conninfo size %zu differs from the blob's %zu", cap, len);
    void *buf = malloc(cap);
    HX_OK(tcpx_conninfo_encode(ci, buf, cap, out_len));
    HX_CHECK(*out_len == len && memcmp(buf, blob, len), "re-encoded blob is not a changed copy");
    free(ci);
    return buf;
}

/* Connect with the wrong token as `label`; must fail within the bound. */
static void bad_connect(tcpx_session *s, const char *label, const void *blob, size_t len)
{
    size_t blen;
    void *bad = wrong_token_blob(blob, len, &blen);
    HX_OK(tcpx_session_load_remote(s, label, bad, blen));
    free(bad);
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_connect(s, label);
    uint64_t ms = hx_now_ms() - t0;
    if (st == TCPX_OK) HX_FAIL("connect with a wrong token succeeded (after %" PRIu64 " ms)", ms);
    HX_CHECK(st == TCPX_ERR_AUTH || st == TCPX_ERR_TIMEOUT || st == TCPX_ERR_PEER,
             "connect with a wrong token returned %s, expected TCPX_ERR_AUTH (or TIMEOUT/PEER): %s",
             tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(ms <= (uint64_t)HX_MS(BAD_CONNECT_MS + 2000), "connect with a wrong token took %" PRIu64 " ms (connect timeout %d ms)",
             ms, BAD_CONNECT_MS);
    hx_log("wrong token refused: %s after %" PRIu64 " ms (%s)", tcpx_strerror(st), ms, tcpx_last_error());
    HX_CHECK(tcpx_session_peer_status(s, label) != TCPX_OK, "peer status OK after a refused connect");
    tcpx_xfer *x = NULL;
    st = tcpx_xfer_create(s, label, &x);
    HX_CHECK(st != TCPX_OK, "xfer_create to a refused peer succeeded");
}

static int proc_b(void *arg)
{
    (void)arg;
    hx_sess_opts o = {.name = "B", .channels = 3, .connect_timeout_ms = 20000};
    tcpx_session *s = hx_session_ex(&o);
    hx_send_blob(s, fd_bx[0]);
    hx_send_blob(s, fd_by[0]);
    hx_send_blob(s, fd_bz[0]);
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_accept(s, "A");
    HX_CHECK(st == TCPX_OK, "accept(\"A\") after a wrong-token attempt returned %s after %" PRIu64 " ms: %s",
             tcpx_strerror(st), hx_now_ms() - t0, tcpx_last_error());
    exchange(s, "A", 11, 0);
    hx_send_str(fd_by[0], "go");
    t0 = hx_now_ms();
    st = tcpx_session_accept(s, "C");
    HX_CHECK(st == TCPX_OK, "accept(\"C\") after a wrong-token attempt returned %s after %" PRIu64 " ms: %s",
             tcpx_strerror(st), hx_now_ms() - t0, tcpx_last_error());
    exchange(s, "C", 12, 0);
    /* A is still fine too */
    exchange(s, "A", 13, 0);
    hx_send_str(fd_bx[0], "end");
    hx_send_str(fd_bz[0], "end");
    hx_expect_str(fd_bx[0], "end", 30000);
    hx_expect_str(fd_bz[0], "end", 30000);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_x(void *arg) /* name "A": wrong token, then retry right */
{
    (void)arg;
    hx_sess_opts o = {.name = "A", .channels = 2, .connect_timeout_ms = BAD_CONNECT_MS};
    tcpx_session *s = hx_session_ex(&o);
    size_t len;
    void *blob = hx_recv_blob(fd_bx[1], &len);
    bad_connect(s, "Bwrong", blob, len);
    HX_OK(tcpx_session_load_remote(s, "B", blob, len));
    HX_OK(tcpx_session_connect(s, "B"));
    free(blob);
    exchange(s, "B", 11, 1);
    exchange(s, "B", 13, 1);
    hx_expect_str(fd_bx[1], "end", 30000);
    hx_send_str(fd_bx[1], "end");
    tcpx_session_destroy(s);
    return 0;
}

static int proc_y(void *arg) /* name "C": wrong token only */
{
    (void)arg;
    hx_sess_opts o = {.name = "C", .channels = 1, .connect_timeout_ms = BAD_CONNECT_MS};
    size_t len;
    void *blob = hx_recv_blob(fd_by[1], &len);
    hx_expect_str(fd_by[1], "go", 30000);
    tcpx_session *s = hx_session_ex(&o);
    bad_connect(s, "B", blob, len);
    free(blob);
    tcpx_session_destroy(s);
    hx_send_str(fd_yz[0], "go");
    return 0;
}

static int proc_z(void *arg) /* name "C", right token, after Y failed */
{
    (void)arg;
    hx_sess_opts o = {.name = "C", .channels = 4};
    size_t len;
    void *blob = hx_recv_blob(fd_bz[1], &len);
    hx_expect_str(fd_yz[1], "go", 40000);
    tcpx_session *s = hx_session_ex(&o);
    HX_OK(tcpx_session_load_remote(s, "B", blob, len));
    HX_OK(tcpx_session_connect(s, "B"));
    free(blob);
    exchange(s, "B", 12, 1);
    hx_expect_str(fd_bz[1], "end", 30000);
    hx_send_str(fd_bz[1], "end");
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("auth", 100);
    hx_pair(fd_bx);
    hx_pair(fd_by);
    hx_pair(fd_bz);
    hx_pair(fd_yz);
    pid_t pb = hx_spawn("B", 90, proc_b, NULL);
    pid_t px = hx_spawn("X", 90, proc_x, NULL);
    pid_t py = hx_spawn("Y", 90, proc_y, NULL);
    pid_t pz = hx_spawn("Z", 90, proc_z, NULL);
    pid_t all[4] = {pb, px, py, pz};
    hx_wait_all(all, 4, 95000);
    hx_log("PASS");
    return 0;
}
