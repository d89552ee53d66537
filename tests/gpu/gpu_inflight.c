/*
 * gpu_inflight - many GPU transfers in flight at once, matched by tag.
 *
 *   phase 1: each side posts 64 sends (GPU) and 64 receives (GPU), one
 *            transfer each, so 128 transfers per side are in flight; sizes
 *            mix inline (<= 8 KiB, the boundary sizes included) and large
 *            (up to 6 MiB); tags and contents are distinct; senders post in
 *            one random order, receivers in another, and both wait for their
 *            transfers in a third.
 *   phase 2: one batch post of 128 messages A->B, GPU to GPU
 *            (tcpx_xfer_post_send_batch / _recv_batch), the receiver's batch
 *            in a shuffled order.
 *   phase 3: one transfer per side holding a 128-message send batch and a
 *            128-message receive batch, both ways at once; every message's
 *            source and destination are host or GPU memory at random.
 * Messages are packed at odd offsets with guard gaps of their own seeds
 * between them; every byte of every message and gap is verified.
 *
 *   gpu_inflight [--channels N] [--chunk BYTES] [--slots N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gt_common.h"

#define NFLIGHT 64
#define NBATCH 128

typedef struct opts {
    int channels;
    size_t chunk;
    int slots;
    gt_probe probe;
    char label[64];
} opts;

typedef struct side {
    const opts *o;
    int is_a;
    const char *me, *peer;
    tcpx_session *s;
    gt_gpu dev;
    hx_rng rng;
    int fd;
} side;

/* Message i of a direction: the same on both sides (derived from hx_seed). */
typedef struct msg {
    size_t size;
    uint64_t tag, seed;
    int kind;            /* phase 3: this side's memory kind for it */
    size_t off;          /* this side's offset */
    tcpx_xfer *x;        /* phase 1 */
} msg;

static size_t sum_sizes(const msg *m, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++) t += m[i].size;
    return t;
}

/* Phase 1 sizes: a quarter inline at random, a quarter at the inline
 * boundary, a quarter medium, a quarter large. */
static void sizes_flight(msg *m, int n, uint64_t dir)
{
    static const size_t edge[] = {1, 8191, 8192, 8193, 2 * 8192 + 3};
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, 0x1F00 + dir));
    for (int i = 0; i < n; i++) {
        size_t sz;
        switch (i % 4) {
        case 0: sz = 1 + (size_t)hx_rng_below(&r, 8192); break;
        case 1: sz = edge[hx_rng_below(&r, sizeof edge / sizeof edge[0])]; break;
        case 2: sz = 8193 + (size_t)hx_rng_below(&r, GT_MiB); break;
        default: sz = GT_MiB + (size_t)hx_rng_below(&r, 5 * GT_MiB); break;
        }
        m[i].size = sz;
        m[i].tag = (0x10000u + dir * 0x10000u) + (uint64_t)i;
        m[i].seed = hx_mix(hx_seed, m[i].tag);
    }
}

/* Batch sizes: KV-cache-like blocks (16 KiB), inline ones, and up to 1 MiB. */
static void sizes_batch(msg *m, int n, uint64_t tag_base, size_t maxsz)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, tag_base));
    for (int i = 0; i < n; i++) {
        size_t sz;
        switch (i % 3) {
        case 0: sz = 16 * GT_KiB; break;
        case 1: sz = 1 + (size_t)hx_rng_below(&r, 8192); break;
        default: sz = 4 * GT_KiB + (size_t)hx_rng_below(&r, maxsz - 4 * GT_KiB); break;
        }
        m[i].size = sz;
        m[i].tag = tag_base + (uint64_t)i;
        m[i].seed = hx_mix(hx_seed, m[i].tag);
    }
}

static size_t region_bytes(const msg *m, int n)
{
    return sum_sizes(m, n) + (size_t)n * 4100 + 8192;
}

static void check_sent(side *sd, gt_region *const *regs, msg *m, int n, const char *what)
{
    char w[200];
    for (int i = 0; i < n; i++) {
        snprintf(w, sizeof w, "%s: sender's bytes of message %d (tag %" PRIu64 ") changed", what, i, m[i].tag);
        GT_CHECK_DATA(w, regs[m[i].kind], m[i].off, m[i].size, m[i].seed);
    }
    (void)sd;
}

static void check_received(gt_region *const *regs, msg *m, int n, gt_layout *L, const char *what)
{
    char w[200];
    for (int i = 0; i < n; i++) {
        snprintf(w, sizeof w, "%s: message %d (tag %" PRIu64 ", %zu bytes, %s memory)", what, i, m[i].tag, m[i].size,
                 gt_kind_name((tcpx_mem_kind)m[i].kind));
        GT_CHECK_DATA(w, regs[m[i].kind], m[i].off, m[i].size, m[i].seed);
    }
    gt_layout_check_gaps(L, what);
}

/* ------------------------------------------------------------- phase 1 */

static void phase_flight(side *sd)
{
    static msg out[NFLIGHT], in[NFLIGHT];
    uint64_t dir_out = sd->is_a ? 0 : 1;
    sizes_flight(out, NFLIGHT, dir_out);
    sizes_flight(in, NFLIGHT, 1 - dir_out);
    for (int i = 0; i < NFLIGHT; i++) out[i].kind = in[i].kind = TCPX_MEM_CUDA;

    gt_region snd, rcv;
    gt_region_init(sd->s, &sd->dev, &snd, TCPX_MEM_CUDA, region_bytes(out, NFLIGHT), hx_mix(hx_seed, 0x51 + dir_out),
                   "flight-send");
    gt_region_init(sd->s, &sd->dev, &rcv, TCPX_MEM_CUDA, region_bytes(in, NFLIGHT), hx_mix(hx_seed, 0x61 + dir_out),
                   "flight-recv");
    gt_region *sregs[2] = {NULL, &snd}, *rregs[2] = {NULL, &rcv};

    gt_layout Ls, Lr;
    gt_layout_init(&Ls, hx_mix(hx_seed, 0x71 + dir_out));
    gt_layout_init(&Lr, hx_mix(hx_seed, 0x81 + dir_out));
    gt_layout_add_region(&Ls, &snd);
    gt_layout_add_region(&Lr, &rcv);
    for (int i = 0; i < NFLIGHT; i++) {
        out[i].off = gt_layout_place(&Ls, &sd->rng, 0, out[i].size);
        in[i].off = gt_layout_place(&Lr, &sd->rng, 0, in[i].size);
    }
    gt_layout_finish(&Ls);
    gt_layout_finish(&Lr);
    gt_layout_fill_gaps(&Lr);
    for (int i = 0; i < NFLIGHT; i++) {
        gt_fill(&snd, out[i].off, out[i].size, out[i].seed);
        gt_fill(&rcv, in[i].off, in[i].size, hx_mix(in[i].seed, 0x9e));   /* poison */
    }

    /* posting orders: sends in one random order, receives in another */
    size_t so[NFLIGHT], ro[NFLIGHT], wo[2 * NFLIGHT];
    for (size_t i = 0; i < NFLIGHT; i++) so[i] = ro[i] = i;
    for (size_t i = 0; i < 2 * NFLIGHT; i++) wo[i] = i;
    hx_shuffle(&sd->rng, so, NFLIGHT);
    hx_shuffle(&sd->rng, ro, NFLIGHT);
    hx_shuffle(&sd->rng, wo, 2 * NFLIGHT);

    gt_barrier(sd->fd, "flight");
    uint64_t t0 = gt_now_us();
    for (int k = 0; k < NFLIGHT; k++) {
        /* interleave: A starts with a send, B with a receive */
        for (int pass = 0; pass < 2; pass++) {
            int send = sd->is_a ? pass == 0 : pass == 1;
            msg *m = send ? &out[so[k]] : &in[ro[k]];
            HX_OK(tcpx_xfer_create(sd->s, sd->peer, &m->x));
            tcpx_status st = send ? tcpx_xfer_post_send(m->x, snd.id, m->off, m->size, m->tag)
                                  : tcpx_xfer_post_recv(m->x, rcv.id, m->off, m->size, m->tag);
            if (st != TCPX_OK)
                HX_FAIL("phase 1: post_%s of tag %" PRIu64 " (%zu bytes, %d-th posted) returned %s: %s",
                        send ? "send" : "recv", m->tag, m->size, k, tcpx_strerror(st), tcpx_last_error());
        }
    }
    for (int k = 0; k < 2 * NFLIGHT; k++) {
        size_t w = wo[k];
        msg *m = w < NFLIGHT ? &out[w] : &in[w - NFLIGHT];
        char what[160];
        snprintf(what, sizeof what, "phase 1: %s of tag %" PRIu64 " (%zu bytes), waited %d-th",
                 w < NFLIGHT ? "send" : "receive", m->tag, m->size, k);
        HX_WAIT_OK(m->x, 120000, what);
    }
    uint64_t us = gt_now_us() - t0;
    for (int i = 0; i < NFLIGHT; i++) {
        tcpx_xfer_release(out[i].x);
        tcpx_xfer_release(in[i].x);
        out[i].x = in[i].x = NULL;
    }
    check_received(rregs, in, NFLIGHT, &Lr, "phase 1 (64 in flight each way)");
    check_sent(sd, sregs, out, NFLIGHT, "phase 1");
    size_t bytes = sum_sizes(in, NFLIGHT) + sum_sizes(out, NFLIGHT);
    hx_log("summary: %s: phase 1, %d+%d transfers in flight GPU<->GPU, %zu bytes both ways: %.3f ms, %.3f GB/s",
           sd->o->label, NFLIGHT, NFLIGHT, bytes, (double)us / 1e3, gt_gbps(bytes, us));
    gt_layout_free(&Ls);
    gt_layout_free(&Lr);
    gt_region_fini(sd->s, &snd);
    gt_region_fini(sd->s, &rcv);
}

/* ----------------------------------------------------- phases 2 and 3 */

/* Post n messages as one batch; `order` permutes them. */
static void post_batch(tcpx_xfer *x, int send, gt_region *const *regs, const msg *m, const size_t *order, int n,
                       const char *what)
{
    tcpx_mem_id mems[NBATCH];
    size_t offs[NBATCH], sizes[NBATCH];
    uint64_t tags[NBATCH];
    HX_CHECK(n <= NBATCH, "batch too large");
    for (int k = 0; k < n; k++) {
        const msg *e = &m[order[k]];
        mems[k] = regs[e->kind]->id;
        offs[k] = e->off;
        sizes[k] = e->size;
        tags[k] = e->tag;
    }
    tcpx_status st = send ? tcpx_xfer_post_send_batch(x, (size_t)n, mems, offs, sizes, tags)
                          : tcpx_xfer_post_recv_batch(x, (size_t)n, mems, offs, sizes, tags);
    if (st != TCPX_OK)
        HX_FAIL("%s: tcpx_xfer_post_%s_batch(%d messages) returned %s: %s", what, send ? "send" : "recv", n,
                tcpx_strerror(st), tcpx_last_error());
}

/* mixed = 0: every message GPU to GPU, A -> B only (phase 2).
 * mixed = 1: host or GPU at random on each side, both ways (phase 3). */
static void phase_batch(side *sd, int mixed)
{
    static msg out[NBATCH], in[NBATCH];
    const char *what = mixed ? "phase 3 (batches both ways, host/GPU mixed)" : "phase 2 (batch of 128 GPU->GPU A->B)";
    int do_send = mixed || sd->is_a, do_recv = mixed || !sd->is_a;
    uint64_t dir_out = sd->is_a ? 0 : 1;
    uint64_t base = mixed ? 0x40000 : 0x30000;
    size_t maxsz = mixed ? 256 * GT_KiB : GT_MiB;
    sizes_batch(out, NBATCH, base + dir_out * 0x1000, maxsz);
    sizes_batch(in, NBATCH, base + (1 - dir_out) * 0x1000, maxsz);
    for (int i = 0; i < NBATCH; i++) {
        out[i].kind = mixed ? (int)hx_rng_below(&sd->rng, 2) : TCPX_MEM_CUDA;
        in[i].kind = mixed ? (int)hx_rng_below(&sd->rng, 2) : TCPX_MEM_CUDA;
    }

    gt_region snd[2], rcv[2];
    memset(snd, 0, sizeof snd);
    memset(rcv, 0, sizeof rcv);
    gt_region *sregs[2] = {&snd[0], &snd[1]}, *rregs[2] = {&rcv[0], &rcv[1]};
    gt_layout Ls, Lr;
    gt_layout_init(&Ls, hx_mix(hx_seed, base + 0x71 + dir_out));
    gt_layout_init(&Lr, hx_mix(hx_seed, base + 0x81 + dir_out));
    for (int k = 0; k < 2; k++) {
        if (!mixed && k == TCPX_MEM_HOST) continue;
        char name[48];
        if (do_send) {
            snprintf(name, sizeof name, "batch-send-%s", gt_kind_name((tcpx_mem_kind)k));
            gt_region_init(sd->s, &sd->dev, &snd[k], (tcpx_mem_kind)k, region_bytes(out, NBATCH),
                           hx_mix(hx_seed, base + 0x91 + (uint64_t)k), name);
            int ri = gt_layout_add_region(&Ls, &snd[k]);
            HX_CHECK(mixed ? ri == k : ri == 0, "layout index");
        }
        if (do_recv) {
            snprintf(name, sizeof name, "batch-recv-%s", gt_kind_name((tcpx_mem_kind)k));
            gt_region_init(sd->s, &sd->dev, &rcv[k], (tcpx_mem_kind)k, region_bytes(in, NBATCH),
                           hx_mix(hx_seed, base + 0xA1 + (uint64_t)k), name);
            gt_layout_add_region(&Lr, &rcv[k]);
        }
    }
    /* layout index of a kind: 0/1 when mixed, 0 for GPU only */
    for (int i = 0; i < NBATCH; i++) {
        if (do_send) out[i].off = gt_layout_place(&Ls, &sd->rng, mixed ? out[i].kind : 0, out[i].size);
        if (do_recv) in[i].off = gt_layout_place(&Lr, &sd->rng, mixed ? in[i].kind : 0, in[i].size);
    }
    gt_layout_finish(&Ls);
    gt_layout_finish(&Lr);
    if (do_recv) {
        gt_layout_fill_gaps(&Lr);
        for (int i = 0; i < NBATCH; i++) gt_fill(rregs[in[i].kind], in[i].off, in[i].size, hx_mix(in[i].seed, 0x9e));
    }
    if (do_send)
        for (int i = 0; i < NBATCH; i++) gt_fill(sregs[out[i].kind], out[i].off, out[i].size, out[i].seed);

    size_t so[NBATCH], ro[NBATCH];
    for (size_t i = 0; i < NBATCH; i++) so[i] = ro[i] = i;
    hx_shuffle(&sd->rng, ro, NBATCH);   /* receives in a shuffled order; sends in order */

    gt_barrier(sd->fd, mixed ? "batch3" : "batch2");
    uint64_t t0 = gt_now_us();
    tcpx_xfer *x = NULL;
    HX_OK(tcpx_xfer_create(sd->s, sd->peer, &x));
    if (sd->is_a) {
        if (do_send) post_batch(x, 1, sregs, out, so, NBATCH, what);
        if (do_recv) post_batch(x, 0, rregs, in, ro, NBATCH, what);
    } else {
        if (do_recv) post_batch(x, 0, rregs, in, ro, NBATCH, what);
        if (do_send) post_batch(x, 1, sregs, out, so, NBATCH, what);
    }
    HX_WAIT_OK(x, 120000, what);
    uint64_t us = gt_now_us() - t0;
    tcpx_status st = tcpx_xfer_test(x);
    HX_CHECK(st == TCPX_OK, "%s: tcpx_xfer_test after completion returned %s", what, tcpx_strerror(st));
    tcpx_xfer_release(x);

    size_t bytes = 0;
    if (do_recv) {
        check_received(rregs, in, NBATCH, &Lr, what);
        bytes += sum_sizes(in, NBATCH);
    }
    if (do_send) {
        check_sent(sd, sregs, out, NBATCH, what);
        bytes += sum_sizes(out, NBATCH);
    }
    hx_log("summary: %s: %s: %zu bytes: %.3f ms, %.3f GB/s", sd->o->label, what, bytes, (double)us / 1e3,
           gt_gbps(bytes, us));
    gt_layout_free(&Ls);
    gt_layout_free(&Lr);
    for (int k = 0; k < 2; k++) {
        gt_region_fini(sd->s, &snd[k]);
        gt_region_fini(sd->s, &rcv[k]);
    }
}

static int run_side(const opts *o, int is_a, int fd)
{
    side sd;
    memset(&sd, 0, sizeof sd);
    sd.o = o;
    sd.is_a = is_a;
    sd.fd = fd;
    sd.me = is_a ? "A" : "B";
    sd.peer = is_a ? "B" : "A";
    int gpu = is_a ? o->probe.gpu_a : o->probe.gpu_b;
    gt_gpu_open(&sd.dev, gpu);
    gt_sess_opts so = {.name = sd.me, .gpu = gpu, .channels = o->channels, .chunk = o->chunk, .slots = o->slots};
    sd.s = gt_session(&so);
    const tcpx_config *cfg = tcpx_session_config(sd.s);
    hx_rng_seed(&sd.rng, hx_mix(hx_seed, is_a ? 0xA : 0xB));
    if (is_a) hx_connect_to(sd.s, "B", fd);
    else hx_accept_from(sd.s, "A", fd);
    hx_log("connected: gpu %d, %d channels, chunk %zu, %d staging slots, window %d", gpu, cfg->channels,
           cfg->chunk_bytes, cfg->staging_slots, cfg->window);

    phase_flight(&sd);
    phase_batch(&sd, 0);
    phase_batch(&sd, 1);

    tcpx_status pst = tcpx_session_peer_status(sd.s, sd.peer);
    HX_CHECK(pst == TCPX_OK, "peer status at the end is %s: %s", tcpx_strerror(pst), tcpx_last_error());
    gt_barrier(fd, "done");
    gt_session_destroy(sd.s, 20000);
    gt_gpu_close(&sd.dev);
    hx_log("ok");
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
    fprintf(stderr, "usage: gpu_inflight [--channels N] [--chunk BYTES] [--slots N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.channels = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--channels") && v) o.channels = atoi(v), i++;
        else if (!strcmp(a, "--chunk") && v) o.chunk = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--slots") && v) o.slots = atoi(v), i++;
        else usage();
    }
    if (o.channels < 1 || o.channels > TCPX_MAX_CHANNELS || o.slots < 0) usage();
    size_t l = (size_t)snprintf(o.label, sizeof o.label, "gpu_inflight.c%d", o.channels);
    if (o.chunk) l += (size_t)snprintf(o.label + l, sizeof o.label - l, ".k%zu", o.chunk / 1024);
    if (o.slots) snprintf(o.label + l, sizeof o.label - l, ".slots%d", o.slots);
    hx_init(o.label, 170);
    gt_probe_or_skip(&o.probe);

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
