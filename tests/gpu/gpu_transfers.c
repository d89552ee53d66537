/*
 * gpu_transfers - two processes, host and GPU memory, many sizes, every
 * direction, every byte verified.
 *
 * Side A runs on GPU TCPX_TEST_GPU_A (default 0), side B on TCPX_TEST_GPU_B
 * (default 1 when two devices are visible, else 0): the same test covers one
 * GPU shared by two processes and two GPUs. For each size, rounds:
 *   host->GPU A->B, GPU->host A->B, GPU->GPU A->B, GPU->GPU B->A, and
 *   GPU<->GPU both ways at once (one transfer per side holding both ops).
 * Every message lands at a random odd offset of a registered region larger
 * than the message; the bytes before and after it are guards of their own
 * seeds and must be unchanged; the sender's bytes must be unchanged too.
 * Device memory is filled and compared on the device.
 *
 *   gpu_transfers [--channels N] [--chunk BYTES] [--slots N] [--mode M]
 *     --mode normal    sizes 1, 7, 8191, 8192, 8193 (inline boundary),
 *                      chunk-1, chunk, chunk+1, 3*chunk+17, 16 MiB+5 and
 *                      4 random sizes up to 8 MiB (default)
 *     --mode hostpeer  side A is a host-only session (gpu_id -1): host->GPU,
 *                      GPU->host and both at once, same sizes
 *     --mode big       256 MiB: host->GPU, GPU->host, GPU->GPU
 *     --mode huge      1 GiB GPU->GPU (skipped, exit 77, when a device has
 *                      less than 8 GiB free)
 *   One summary line per case and receiving side: size, direction, GB/s
 *   (informational; no timing is asserted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gt_common.h"

#define H TCPX_MEM_HOST
#define C TCPX_MEM_CUDA

typedef struct flow {
    int from_a;               /* 1: A sends, B receives */
    tcpx_mem_kind src, dst;
} flow;

typedef struct round_def {
    const char *name;
    int n;
    flow f[2];
} round_def;

static const round_def R_NORMAL[] = {
    {"host->GPU A->B", 1, {{1, H, C}}},
    {"GPU->host A->B", 1, {{1, C, H}}},
    {"GPU->GPU A->B", 1, {{1, C, C}}},
    {"GPU->GPU B->A", 1, {{0, C, C}}},
    {"GPU<->GPU both ways", 2, {{1, C, C}, {0, C, C}}},
};
static const round_def R_HOSTPEER[] = {
    {"host->GPU A(host-only)->B", 1, {{1, H, C}}},
    {"GPU->host B->A(host-only)", 1, {{0, C, H}}},
    {"host<->GPU both ways", 2, {{1, H, C}, {0, C, H}}},
};
static const round_def R_BIG[] = {
    {"host->GPU A->B", 1, {{1, H, C}}},
    {"GPU->host A->B", 1, {{1, C, H}}},
    {"GPU->GPU A->B", 1, {{1, C, C}}},
};
static const round_def R_HUGE[] = {
    {"GPU->GPU A->B", 1, {{1, C, C}}},
};

enum { M_NORMAL, M_HOSTPEER, M_BIG, M_HUGE };

typedef struct opts {
    int channels;
    size_t chunk;
    int slots;
    int mode;
    gt_probe probe;
    char label[64];
} opts;

static const round_def *rounds_of(int mode, int *n)
{
    switch (mode) {
    case M_HOSTPEER: *n = (int)(sizeof R_HOSTPEER / sizeof R_HOSTPEER[0]); return R_HOSTPEER;
    case M_BIG: *n = (int)(sizeof R_BIG / sizeof R_BIG[0]); return R_BIG;
    case M_HUGE: *n = (int)(sizeof R_HUGE / sizeof R_HUGE[0]); return R_HUGE;
    default: *n = (int)(sizeof R_NORMAL / sizeof R_NORMAL[0]); return R_NORMAL;
    }
}

static size_t build_sizes(int mode, size_t chunk, size_t *v)
{
    size_t n = 0;
    if (mode == M_BIG) {
        v[n++] = 256 * GT_MiB;
        return n;
    }
    if (mode == M_HUGE) {
        v[n++] = GT_GiB;
        return n;
    }
    size_t base[] = {1, 7, 8191, 8192, 8193, chunk - 1, chunk, chunk + 1, 3 * chunk + 17, 16 * GT_MiB + 5};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) v[n++] = base[i];
    /* plus random sizes, log-uniform in [1, 8 MiB] (same on both sides: hx_seed) */
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, 0x5125));
    for (int i = 0; i < 4; i++) {
        unsigned bits = (unsigned)hx_rng_below(&r, 24);
        size_t sz = ((size_t)1 << bits) + (size_t)hx_rng_below(&r, (uint64_t)1 << bits);
        if (sz > 8 * GT_MiB) sz = 8 * GT_MiB;
        v[n++] = sz;
    }
    return n;
}

typedef struct side {
    const opts *o;
    int is_a, gpu;
    const char *me, *peer;
    tcpx_session *s;
    gt_gpu dev;
    gt_region reg[2][2];   /* [0 send / 1 recv][H / C] */
    int have[2][2];
    hx_rng rng;
} side;

static int run_side(const opts *o, int is_a, int fd)
{
    side sd;
    memset(&sd, 0, sizeof sd);
    sd.o = o;
    sd.is_a = is_a;
    sd.me = is_a ? "A" : "B";
    sd.peer = is_a ? "B" : "A";
    sd.gpu = is_a ? (o->mode == M_HOSTPEER ? -1 : o->probe.gpu_a) : o->probe.gpu_b;
    sd.dev.dev = -1;
    if (sd.gpu >= 0) gt_gpu_open(&sd.dev, sd.gpu);

    gt_sess_opts so = {.name = sd.me, .gpu = sd.gpu, .channels = o->channels, .chunk = o->chunk, .slots = o->slots};
    sd.s = gt_session(&so);
    const tcpx_config *cfg = tcpx_session_config(sd.s);
    size_t chunk = cfg->chunk_bytes;

    size_t sizes[32];
    size_t nsizes = build_sizes(o->mode, chunk, sizes);
    size_t maxsz = 0;
    for (size_t i = 0; i < nsizes; i++)
        if (sizes[i] > maxsz) maxsz = sizes[i];
    int nrounds;
    const round_def *rounds = rounds_of(o->mode, &nrounds);

    /* regions this side needs: send regions of its source kinds, receive
     * regions of its destination kinds */
    for (int k = 0; k < nrounds; k++)
        for (int f = 0; f < rounds[k].n; f++) {
            const flow *fl = &rounds[k].f[f];
            if (fl->from_a == is_a) sd.have[0][fl->src] = 1;
            else sd.have[1][fl->dst] = 1;
        }
    const size_t cap = maxsz + 64 * GT_KiB + 4099;
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++) {
            if (!sd.have[d][k]) continue;
            HX_CHECK(k == H || sd.gpu >= 0, "side %s needs GPU memory but has no GPU", sd.me);
            char name[48];
            snprintf(name, sizeof name, "%s-%s-%s", sd.me, d ? "recv" : "send", k == C ? "gpu" : "host");
            gt_region_init(sd.s, &sd.dev, &sd.reg[d][k], (tcpx_mem_kind)k, cap,
                           hx_mix(hx_seed, (uint64_t)(is_a * 16 + d * 4 + k)), name);
        }

    hx_rng_seed(&sd.rng, hx_mix(hx_seed, is_a ? 0xA : 0xB));
    if (is_a) hx_connect_to(sd.s, "B", fd);
    else hx_accept_from(sd.s, "A", fd);
    hx_log("connected: gpu %d, %d channels, chunk %zu, %d staging slots, window %d; %zu sizes up to %zu bytes, "
           "%d rounds each",
           sd.gpu, cfg->channels, chunk, cfg->staging_slots, cfg->window, nsizes, maxsz, nrounds);

    const int T = 120000;
    for (size_t i = 0; i < nsizes; i++) {
        size_t size = sizes[i];
        for (int k = 0; k < nrounds; k++) {
            const round_def *rd = &rounds[k];
            uint64_t tag[2] = {0, 0}, mseed[2] = {0, 0};
            size_t off[2] = {0, 0};
            gt_target tgt[2];
            int sending[2] = {0, 0}, receiving[2] = {0, 0};
            memset(tgt, 0, sizeof tgt);
            char what[200];
            snprintf(what, sizeof what, "size %zu, %s, side %s", size, rd->name, sd.me);
            for (int f = 0; f < rd->n; f++) {
                const flow *fl = &rd->f[f];
                tag[f] = (uint64_t)i * 64 + (uint64_t)k * 4 + (uint64_t)f;
                mseed[f] = hx_mix(hx_seed, tag[f] + 0x77);
                sending[f] = fl->from_a == is_a;
                receiving[f] = !sending[f];
                if (sending[f]) {
                    gt_region *r = &sd.reg[0][fl->src];
                    off[f] = gt_odd_offset(&sd.rng, r->size, size);
                    gt_fill(r, off[f], size, mseed[f]);
                } else {
                    gt_region *r = &sd.reg[1][fl->dst];
                    off[f] = gt_odd_offset(&sd.rng, r->size, size);
                    gt_target_prepare(&tgt[f], r, off[f], size, hx_mix(hx_seed, tag[f] * 2 + (uint64_t)is_a));
                }
            }
            gt_barrier(fd, "ready");

            uint64_t t0 = gt_now_us();
            tcpx_xfer *x = NULL;
            HX_OK(tcpx_xfer_create(sd.s, sd.peer, &x));
            /* A posts its sends first, B its receives first */
            for (int pass = 0; pass < 2; pass++) {
                int want_send = is_a ? pass == 0 : pass == 1;
                for (int f = 0; f < rd->n; f++) {
                    if (sending[f] != want_send) continue;
                    const flow *fl = &rd->f[f];
                    tcpx_status st;
                    if (sending[f]) st = tcpx_xfer_post_send(x, sd.reg[0][fl->src].id, off[f], size, tag[f]);
                    else st = tcpx_xfer_post_recv(x, sd.reg[1][fl->dst].id, off[f], size, tag[f]);
                    if (st != TCPX_OK)
                        HX_FAIL("%s: tcpx_xfer_post_%s(offset %zu, tag %" PRIu64 ") returned %s: %s", what,
                                sending[f] ? "send" : "recv", off[f], tag[f], tcpx_strerror(st), tcpx_last_error());
                }
            }
            HX_WAIT_OK(x, T, what);
            uint64_t us = gt_now_us() - t0;
            tcpx_status st = tcpx_xfer_test(x);
            HX_CHECK(st == TCPX_OK, "%s: tcpx_xfer_test after completion returned %s: %s", what, tcpx_strerror(st),
                     tcpx_last_error());
            tcpx_xfer_release(x);

            for (int f = 0; f < rd->n; f++) {
                const flow *fl = &rd->f[f];
                char fw[400];
                if (receiving[f]) {
                    snprintf(fw, sizeof fw, "%s (%s->%s, tag %" PRIu64 ")", what, gt_kind_name(fl->src),
                             gt_kind_name(fl->dst), tag[f]);
                    gt_target_check(&tgt[f], mseed[f], fw);
                    hx_log("summary: %s: size %zu %s->%s %s->%s c%d k%zu s%d: %.3f ms, %.3f GB/s%s", o->label, size,
                           fl->from_a ? "A" : "B", fl->from_a ? "B" : "A", gt_kind_name(fl->src),
                           gt_kind_name(fl->dst), cfg->channels, chunk / 1024, cfg->staging_slots, (double)us / 1e3,
                           gt_gbps(size, us), rd->n > 1 ? " (both ways at once)" : "");
                } else {
                    snprintf(fw, sizeof fw, "%s: sender's bytes changed by the send (tag %" PRIu64 ")", what, tag[f]);
                    GT_CHECK_DATA(fw, &sd.reg[0][fl->src], off[f], size, mseed[f]);
                }
            }
        }
    }
    tcpx_status pst = tcpx_session_peer_status(sd.s, sd.peer);
    HX_CHECK(pst == TCPX_OK, "peer status at the end is %s: %s", tcpx_strerror(pst), tcpx_last_error());

    gt_barrier(fd, "done");
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++)
            if (sd.have[d][k]) gt_region_fini(sd.s, &sd.reg[d][k]);
    gt_session_destroy(sd.s, 20000);
    gt_gpu_close(&sd.dev);
    hx_log("ok: %zu sizes x %d rounds verified", nsizes, nrounds);
    return 0;
}

typedef struct child_arg {
    const opts *o;
    int is_a, fd;
} child_arg;

static int child_main(void *p)
{
    child_arg *a = p;
    return run_side(a->o, a->is_a, a->fd);
}

static void usage(void)
{
    fprintf(stderr, "usage: gpu_transfers [--channels N] [--chunk BYTES] [--slots N] "
                    "[--mode normal|hostpeer|big|huge]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.channels = 4;
    o.mode = M_NORMAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--channels") && v) o.channels = atoi(v), i++;
        else if (!strcmp(a, "--chunk") && v) o.chunk = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--slots") && v) o.slots = atoi(v), i++;
        else if (!strcmp(a, "--mode") && v) {
            if (!strcmp(v, "normal")) o.mode = M_NORMAL;
            else if (!strcmp(v, "hostpeer")) o.mode = M_HOSTPEER;
            else if (!strcmp(v, "big")) o.mode = M_BIG;
            else if (!strcmp(v, "huge")) o.mode = M_HUGE;
            else usage();
            i++;
        } else usage();
    }
    if (o.channels < 1 || o.channels > TCPX_MAX_CHANNELS || o.slots < 0) usage();
    static const char *mode_names[] = {"", ".hostpeer", ".big256m", ".huge1g"};
    size_t l = (size_t)snprintf(o.label, sizeof o.label, "gpu_transfers.c%d", o.channels);
    if (o.chunk) l += (size_t)snprintf(o.label + l, sizeof o.label - l, ".k%zu", o.chunk / 1024);
    if (o.slots) l += (size_t)snprintf(o.label + l, sizeof o.label - l, ".slots%d", o.slots);
    snprintf(o.label + l, sizeof o.label - l, "%s", mode_names[o.mode]);
    hx_init(o.label, 170);
    gt_probe_or_skip(&o.probe);
    if (o.mode == M_HUGE) {
        const size_t need = 8 * GT_GiB;
        if (o.probe.free_a < need || o.probe.free_b < need)
            gt_skip("the 1 GiB GPU->GPU case needs 8 GiB free on each device: GPU %d has %.1f GiB, GPU %d has %.1f GiB",
                    o.probe.gpu_a, (double)o.probe.free_a / (double)GT_GiB, o.probe.gpu_b,
                    (double)o.probe.free_b / (double)GT_GiB);
    }

    int fds[2];
    hx_pair(fds);
    child_arg ca = {&o, 1, fds[0]}, cb = {&o, 0, fds[1]};
    pid_t pb = hx_spawn("B", 160, child_main, &cb);
    pid_t pa = hx_spawn("A", 160, child_main, &ca);
    pid_t both[2] = {pa, pb};
    hx_wait_all(both, 2, 165000);
    hx_log("PASS");
    return 0;
}
