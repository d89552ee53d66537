/*
 * it_transfers - two processes, one connection, many sizes, both directions.
 *
 * For each size: A->B alone, B->A alone, then both directions at once in one
 * transfer per side. Every message lands at a random offset of a registered
 * receive region larger than the message; every byte is checked, and the
 * rest of the receive region (the guard) must be unchanged.
 *
 *   it_transfers [--channels N] [--chunk BYTES] [--big] [--small]
 *       fork mode: forks A and B on 127.0.0.1.
 *   it_transfers --role A|B --bind ADDR --rendezvous DIR --seed S [...]
 *       one side only (netns.sh runs the two sides in two namespaces); B
 *       listens on DIR/boot.sock for the bootstrap, A connects to it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024u * 1024u)

typedef struct opts {
    int channels;
    size_t chunk;        /* 0 = library default */
    int big;             /* the 256 MiB case only */
    int small;           /* sizes up to 1 MiB only */
    const char *bind;
    const char *role;    /* process mode: "A" or "B" */
    const char *rdv;
    int fd;
} opts;

static size_t build_sizes(size_t chunk, int big, int small, size_t *v)
{
    size_t n = 0;
    if (big) {
        v[n++] = 256u * MiB;
        return n;
    }
    size_t base[] = {1, 7, 4095, 4096, 4097, chunk - 1, chunk, chunk + 1, 3 * chunk + 17, 1 * MiB, 16 * MiB};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        if (small && base[i] > 4 * MiB) continue;
        v[n++] = base[i];
    }
    /* plus random sizes, log-uniform in [1, 8 MiB] (same on both sides) */
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, 0x5125));
    for (int i = 0; i < 6; i++) {
        unsigned bits = (unsigned)hx_rng_below(&r, 24); /* 0..23 */
        size_t sz = ((size_t)1 << bits) + (size_t)hx_rng_below(&r, (uint64_t)1 << bits);
        if (sz > 8 * MiB) sz = 8 * MiB;
        if (small && sz > 4 * MiB) sz = 4 * MiB - 1;
        v[n++] = sz;
    }
    return n;
}

/* Check the guard: every byte of r outside [off, off+size) still holds the
 * guard pattern. Whole region when it is small enough, else windows around
 * the target and at both ends. */
static void check_guard(const hx_region *r, size_t off, size_t size, uint64_t gseed, const char *what)
{
    char msg[256];
    if (r->size <= 40u * MiB) {
        snprintf(msg, sizeof msg, "%s: guard bytes before the target [0, %zu)", what, off);
        HX_CHECK_PATTERN(msg, r->ptr, off, gseed, 0);
        snprintf(msg, sizeof msg, "%s: guard bytes after the target [%zu, %zu)", what, off + size, r->size);
        HX_CHECK_PATTERN(msg, r->ptr + off + size, r->size - off - size, gseed, off + size);
        return;
    }
    const size_t W = 1u * MiB;
    size_t lo = off > W ? off - W : 0;
    snprintf(msg, sizeof msg, "%s: guard bytes just before the target", what);
    HX_CHECK_PATTERN(msg, r->ptr + lo, off - lo, gseed, lo);
    size_t end = off + size, hi = r->size - end > W ? end + W : r->size;
    snprintf(msg, sizeof msg, "%s: guard bytes just after the target", what);
    HX_CHECK_PATTERN(msg, r->ptr + end, hi - end, gseed, end);
    size_t head = off < W ? off : W;
    HX_CHECK_PATTERN("guard at the start of the region", r->ptr, head, gseed, 0);
}

typedef struct side {
    tcpx_session *s;
    const char *me, *peer;
    int is_a;
    hx_region snd, rcv;
    uint64_t rcv_guard;
    hx_rng rng;
} side;

static void verify_recv(side *sd, size_t off, size_t size, uint64_t mseed, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: received bytes at offset %zu", what, off);
    HX_CHECK_PATTERN(msg, sd->rcv.ptr + off, size, mseed, 0);
    check_guard(&sd->rcv, off, size, sd->rcv_guard, what);
    hx_fill(sd->rcv.ptr + off, size, sd->rcv_guard, off); /* restore the guard */
}

static int run_side(const opts *o, const char *role, int fd)
{
    side sd;
    memset(&sd, 0, sizeof sd);
    sd.is_a = role[0] == 'A';
    sd.me = sd.is_a ? "A" : "B";
    sd.peer = sd.is_a ? "B" : "A";
    hx_sess_opts so = {.name = sd.me, .channels = o->channels, .chunk = o->chunk, .bind = o->bind,
                       .connect_timeout_ms = 10000, .peer_timeout_ms = 10000};
    sd.s = hx_session_ex(&so);
    const char *want = getenv("HX_TRANSPORT") && *getenv("HX_TRANSPORT") ? "TCPXSock" : "socket";
    HX_CHECK(strcmp(tcpx_session_transport(sd.s), want) == 0, "transport is \"%s\", expected \"%s\"",
             tcpx_session_transport(sd.s), want);
    const tcpx_config *cfg = tcpx_session_config(sd.s);
    HX_CHECK(cfg->channels == o->channels, "session has %d channels, asked for %d", cfg->channels, o->channels);
    size_t chunk = cfg->chunk_bytes;

    size_t sizes[32];
    size_t n = build_sizes(chunk, o->big, o->small, sizes);
    size_t maxsz = 0;
    for (size_t i = 0; i < n; i++)
        if (sizes[i] > maxsz) maxsz = sizes[i];

    hx_rng_seed(&sd.rng, hx_mix(hx_seed, sd.is_a ? 0xA : 0xB));
    sd.rcv_guard = hx_mix(hx_seed, sd.is_a ? 0xA1 : 0xB1);
    size_t slack = 64 * 1024 + 4097;
    hx_region_init(sd.s, &sd.snd, maxsz + slack, hx_mix(hx_seed, sd.is_a ? 0xA2 : 0xB2));
    hx_region_init(sd.s, &sd.rcv, maxsz + slack, sd.rcv_guard);

    if (sd.is_a) hx_connect_to(sd.s, "B", fd);
    else hx_accept_from(sd.s, "A", fd);
    hx_log("connected: %d channels, chunk %zu, %zu sizes up to %zu bytes", cfg->channels, chunk, n, maxsz);

    const int T = 60000;
    for (size_t i = 0; i < n; i++) {
        size_t size = sizes[i];
        char what[128];
        /* round k: 0 = A->B alone, 1 = B->A alone, 2 = both at once */
        int rounds = o->big ? 2 : 3;
        for (int k = 0; k < rounds; k++) {
            uint64_t tag_ab = (uint64_t)i * 8 + (uint64_t)k * 2, tag_ba = tag_ab + 1;
            uint64_t seed_ab = hx_mix(hx_seed, tag_ab + 77), seed_ba = hx_mix(hx_seed, tag_ba + 77);
            int i_send = (k == 0 && sd.is_a) || (k == 1 && !sd.is_a) || k == 2;
            int i_recv = (k == 0 && !sd.is_a) || (k == 1 && sd.is_a) || k == 2;
            uint64_t stag = sd.is_a ? tag_ab : tag_ba, rtag = sd.is_a ? tag_ba : tag_ab;
            uint64_t sseed = sd.is_a ? seed_ab : seed_ba, rseed = sd.is_a ? seed_ba : seed_ab;
            size_t soff = (size_t)hx_rng_below(&sd.rng, sd.snd.size - size + 1);
            size_t roff = (size_t)hx_rng_below(&sd.rng, sd.rcv.size - size + 1);
            snprintf(what, sizeof what, "size %zu round %d (%s) %s", size, k,
                     k == 0 ? "A->B" : k == 1 ? "B->A" : "both ways", sd.me);
            tcpx_xfer *x = NULL;
            uint64_t t0 = hx_now_ms();
            if (i_send || i_recv) {
                HX_OK(tcpx_xfer_create(sd.s, sd.peer, &x));
                if (i_send) hx_fill(sd.snd.ptr + soff, size, sseed, 0);
                /* A posts its send first, B its receive first */
                if (sd.is_a) {
                    if (i_send) HX_OK(tcpx_xfer_post_send(x, sd.snd.id, soff, size, stag));
                    if (i_recv) HX_OK(tcpx_xfer_post_recv(x, sd.rcv.id, roff, size, rtag));
                } else {
                    if (i_recv) HX_OK(tcpx_xfer_post_recv(x, sd.rcv.id, roff, size, rtag));
                    if (i_send) HX_OK(tcpx_xfer_post_send(x, sd.snd.id, soff, size, stag));
                }
                HX_WAIT_OK(x, T, what);
                HX_CHECK(tcpx_xfer_test(x) == TCPX_OK, "%s: tcpx_xfer_test after completion is not OK", what);
                tcpx_xfer_release(x);
            }
            uint64_t ms = hx_now_ms() - t0;
            if (i_recv) verify_recv(&sd, roff, size, rseed, what);
            if (i_send) {
                char msg[200];
                snprintf(msg, sizeof msg, "%s: sender's bytes changed by the send", what);
                HX_CHECK_PATTERN(msg, sd.snd.ptr + soff, size, sseed, 0);
            }
            if (size >= 64u * MiB && i_recv)
                hx_log("%s: %zu bytes in %" PRIu64 " ms (%.2f GB/s)", what, size, ms,
                       ms ? (double)size / (double)ms / 1e6 : 0.0);
        }
    }
    /* everything in the receive region must be the guard again */
    if (sd.rcv.size <= 40u * MiB) HX_CHECK_PATTERN("receive region after all rounds", sd.rcv.ptr, sd.rcv.size,
                                                   sd.rcv_guard, 0);
    HX_CHECK(tcpx_session_peer_status(sd.s, sd.peer) == TCPX_OK, "peer status not OK at the end");

    hx_send_str(fd, "done");
    hx_expect_str(fd, "done", 60000);
    hx_region_fini(sd.s, &sd.snd);
    hx_region_fini(sd.s, &sd.rcv);
    tcpx_session_destroy(sd.s);
    hx_log("ok: %zu sizes x %d rounds verified", n, o->big ? 2 : 3);
    return 0;
}

typedef struct child_arg {
    const opts *o;
    const char *role;
    int fd;
} child_arg;

static int child_main(void *p)
{
    child_arg *a = p;
    return run_side(a->o, a->role, a->fd);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: it_transfers [--channels N] [--chunk BYTES] [--big] [--small]\n"
            "       it_transfers --role A|B --bind ADDR --rendezvous DIR --seed S [--channels N] ...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.channels = 4};
    const char *seed = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--channels") && v) o.channels = atoi(v), i++;
        else if (!strcmp(a, "--chunk") && v) o.chunk = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--big")) o.big = 1;
        else if (!strcmp(a, "--small")) o.small = 1;
        else if (!strcmp(a, "--bind") && v) o.bind = v, i++;
        else if (!strcmp(a, "--role") && v) o.role = v, i++;
        else if (!strcmp(a, "--rendezvous") && v) o.rdv = v, i++;
        else if (!strcmp(a, "--seed") && v) seed = v, i++;
        else usage();
    }
    char name[64];
    snprintf(name, sizeof name, "transfers.c%d.k%zu%s", o.channels, o.chunk / 1024, o.big ? ".big" : "");
    if (seed) setenv("HX_SEED", seed, 1);
    hx_init(name, 110);

    if (o.role) {
        if (!o.rdv || (strcmp(o.role, "A") && strcmp(o.role, "B"))) usage();
        hx_set_role(o.role);
        alarm((unsigned)(80 * hx_time_scale()));
        int fd = o.role[0] == 'B' ? hx_rendezvous_server(o.rdv, 30000) : hx_rendezvous_client(o.rdv, 30000);
        /* both sides must run with the same seed */
        if (o.role[0] == 'B') {
            hx_send_u64(fd, hx_seed);
        } else {
            uint64_t other = hx_recv_u64(fd, 30000);
            HX_CHECK(other == hx_seed, "the two sides run with different seeds (%" PRIu64 " vs %" PRIu64 ")",
                     other, hx_seed);
        }
        int rc = run_side(&o, o.role, fd);
        close(fd);
        return rc;
    }

    int fds[2];
    hx_pair(fds);
    child_arg ca = {&o, "A", fds[0]}, cb = {&o, "B", fds[1]};
    pid_t pb = hx_spawn("B", 100, child_main, &cb);
    pid_t pa = hx_spawn("A", 100, child_main, &ca);
    pid_t both[2] = {pa, pb};
    hx_wait_all(both, 2, 105000);
    hx_log("PASS");
    return 0;
}
