/* devmem_emu_util.h - helpers of test_devmem_emu.c: "device" buffers (CUDA
 * memory in CUDA mode, page-aligned heap in host mode), reading a recv
 * comm's unpack handle, checking a fragment list, gathering it the way the
 * receiver's unpack kernel does (tcpx_gpu_unpack in CUDA mode, memcpy in
 * host mode), and messages over a connected pair of comms: post, finish,
 * verify every byte, consume. */
#ifndef DEVMEM_EMU_UTIL_H
#define DEVMEM_EMU_UTIL_H

#include <stdlib.h>

#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "plugins/devmem_emu.h"
#include "test_net_socket_util.h"

static int g_cuda;                 /* CUDA mode */
static tcpx_gpu *g_gpu;
static tcpx_gpu_stream *g_stream;
static tcpx_unpack_frag *g_dfrags; /* device scratch list for gathers of a saved list */
static size_t g_pool_bytes;        /* DEVMEM_EMU_POOL_MB as the test set it */
static tcpx_net *g_net;            /* the plugin through our loader */

typedef struct dbuf {
    uint8_t *p;                    /* 4096-aligned */
    void *raw;
    size_t size;
} dbuf;

/* Zeroed, 4096-aligned "device" memory of `size` bytes. */
static int dbuf_alloc(dbuf *b, size_t size)
{
    memset(b, 0, sizeof *b);
    b->size = size;
    if (g_cuda) {
        if (tcpx_gpu_malloc(g_gpu, size + EMU_PAGE, &b->raw)) return -1;
        b->p = (uint8_t *)(((uintptr_t)b->raw + EMU_PAGE - 1) & ~(uintptr_t)(EMU_PAGE - 1));
        return tcpx_gpu_memset(g_gpu, b->p, 0, size) ? -1 : 0;
    }
    if (posix_memalign(&b->raw, EMU_PAGE, size ? size : 1)) return -1;
    b->p = b->raw;
    memset(b->p, 0, size);
    return 0;
}

static void dbuf_free(dbuf *b)
{
    if (g_cuda)
        tcpx_gpu_free(g_gpu, b->raw);
    else
        free(b->raw);
    memset(b, 0, sizeof *b);
}

static void dev_write(void *dst, const void *src, size_t n)
{
    if (g_cuda)
        CHECK(tcpx_gpu_memcpy(g_gpu, dst, src, n) == 0, "H2D copy of %zu bytes", n);
    else
        memcpy(dst, src, n);
}

static void dev_read(void *dst, const void *src, size_t n)
{
    if (g_cuda)
        CHECK(tcpx_gpu_memcpy(g_gpu, dst, src, n) == 0, "D2H copy of %zu bytes", n);
    else
        memcpy(dst, src, n);
}

/* What the receiver sees of a recv comm's device handle. */
typedef struct emu_view {
    tcpx_unpack_meta *meta;        /* host view */
    tcpx_unpack_meta *meta_dev;    /* as in the handle */
    uint8_t *bounce;
    size_t bounce_size;
} emu_view;

static int get_view(tcpx_net *n, void *rcm, emu_view *v)
{
    void *dh = n->device_handle(n, rcm);
    tcpx_unpack_handle h;
    memset(v, 0, sizeof *v);
    CHECK(dh != NULL, "recv comm without a device handle");
    if (!dh) return -1;
    if (g_cuda) {
        /* As GPUDirect-TCPX: the handle is device memory, meta is mapped
         * pinned host memory given by its device address, bounce a cudaMalloc. */
        CHECK(tcpx_gpu_check_ptr(g_gpu, dh, sizeof h) == 0, "device handle %p is not device memory", dh);
        CHECK(tcpx_gpu_memcpy(g_gpu, &h, dh, sizeof h) == 0, "reading the device handle");
        void *host = NULL, *base = NULL;
        size_t len = 0;
        CHECK(tcpx_gpu_host_view(g_gpu, h.meta, &host) == 0, "meta %p is not mapped host memory", (void *)h.meta);
        CHECK(tcpx_gpu_alloc_range(g_gpu, h.bounce_buf, &base, &len) == 0 && base == h.bounce_buf &&
                  len >= g_pool_bytes,
              "bounce %p: allocation %p + %zu", h.bounce_buf, base, len);
        v->meta = host;
        v->bounce_size = len;
    } else {
        memcpy(&h, dh, sizeof h);
        v->meta = h.meta;
        v->bounce_size = g_pool_bytes;
    }
    CHECK(h.head == UINT64_MAX && h.meta && h.bounce_buf, "handle {meta %p, bounce %p, head %#llx}",
          (void *)h.meta, h.bounce_buf, (unsigned long long)h.head);
    v->meta_dev = h.meta;
    v->bounce = h.bounce_buf;
    return v->meta && v->bounce ? 0 : -1;
}

/* Gather a list (host copy `frags`; `dfrags` the same list readable by the
 * device, or NULL) from the bounce buffer into dst. */
static int gather(const emu_view *v, const tcpx_unpack_frag *frags, const tcpx_unpack_frag *dfrags, uint64_t cnt,
                  uint8_t *dst, size_t dst_size)
{
    int rc = tcpx_unpack_check(frags, cnt, v->bounce_size, dst_size);
    CHECK(rc == 0, "fragment list of %llu entries refused", (unsigned long long)cnt);
    if (rc) return -1;
    if (!g_cuda) {
        for (uint64_t i = 0; i < cnt; i++) memcpy(dst + frags[i].dst_off, v->bounce + frags[i].src_off, frags[i].len);
        return 0;
    }
    if (!dfrags) {
        if (tcpx_gpu_memcpy(g_gpu, g_dfrags, frags, cnt * sizeof *frags)) return -1;
        dfrags = g_dfrags;
    }
    rc = tcpx_gpu_unpack(g_stream, dfrags, cnt, v->bounce, dst, dst_size);
    if (!rc) rc = tcpx_gpu_stream_sync(g_stream);
    CHECK(rc == 0, "unpack of %llu fragments", (unsigned long long)cnt);
    return rc ? -1 : 0;
}

static int cmp_dst(const void *a, const void *b)
{
    uint64_t x = ((const tcpx_unpack_frag *)a)->dst_off, y = ((const tcpx_unpack_frag *)b)->dst_off;
    return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct list_facts {
    size_t linear;                 /* leading bytes not in the list */
    int shorts;                    /* pieces shorter than a page, the last one aside */
    int offset;                    /* pieces not at the start of their page */
    int shuffled;                  /* not in dst_off order */
    int scattered;                 /* consecutive pieces not back to back in the bounce buffer */
} list_facts;

/* The list of a `size`-byte message: pieces of 1..4096 bytes, each inside
 * one page, on distinct pages, covering [linear, size) exactly, linear <=
 * 128 (and 0 below 64 bytes). */
static void check_list(const tcpx_unpack_frag *f, uint64_t cnt, size_t size, list_facts *lf)
{
    memset(lf, 0, sizeof *lf);
    CHECK(cnt <= EMU_MAX_FRAGS && (cnt == 0) == (size == 0), "%llu fragments for %zu bytes",
          (unsigned long long)cnt, size);
    if (cnt == 0 || cnt > EMU_MAX_FRAGS) return;
    tcpx_unpack_frag *s = malloc(cnt * sizeof *s);
    uint32_t *pages = malloc(cnt * sizeof *pages);
    memcpy(s, f, cnt * sizeof *s);
    for (uint64_t i = 0; i + 1 < cnt; i++)
        if (f[i].dst_off > f[i + 1].dst_off) lf->shuffled = 1;
    qsort(s, cnt, sizeof *s, cmp_dst);
    lf->linear = s[0].dst_off;
    CHECK(lf->linear <= EMU_LINEAR_MAX && (lf->linear == 0 || size >= 64), "%zu leading bytes of %zu", lf->linear,
          size);
    uint64_t end = s[0].dst_off;
    for (uint64_t i = 0; i < cnt; i++) {
        uint32_t len = s[i].len, in_page = s[i].src_off % EMU_PAGE;
        CHECK(len >= 1 && len <= EMU_PAGE && in_page + len <= EMU_PAGE, "fragment %llu: src_off %u len %u",
              (unsigned long long)i, s[i].src_off, len);
        CHECK(s[i].dst_off == end, "fragment at dst_off %llu, expected %llu", (unsigned long long)s[i].dst_off,
              (unsigned long long)end);
        end = s[i].dst_off + len;
        if (len < EMU_PAGE && i + 1 < cnt) lf->shorts++;
        if (in_page) lf->offset++;
        if (i + 1 < cnt && s[i + 1].src_off != s[i].src_off + len) lf->scattered = 1;
        pages[i] = s[i].src_off / EMU_PAGE;
    }
    CHECK(end == size, "fragments end at %llu of %zu", (unsigned long long)end, size);
    qsort(pages, cnt, sizeof *pages, cmp_u32);
    for (uint64_t i = 0; i + 1 < cnt; i++)
        if (pages[i] == pages[i + 1]) {
            CHECK(0, "page %u holds two fragments of one message", pages[i]);
            break;
        }
    free(s);
    free(pages);
}

/* ---- a connected pair of comms, and messages over it ---- */

typedef struct pair {
    void *l, *sc, *rc;
    emu_view v;
    uint64_t k;                    /* irecvs posted on rc */
} pair;

typedef struct msg {
    size_t size, cap;
    uint8_t *src;                  /* what is sent (host copy) */
    dbuf sdev;                     /* device source of odd messages */
    dbuf dst;
    void *smh, *rmh, *sreq, *rreq;
    uint64_t k;
    int sent, recvd;
} msg;

static int pair_open(pair *p)
{
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    memset(p, 0, sizeof *p);
    CHECK(g_net->listen(g_net, 0, handle, &p->l) == 0 && p->l, "listen");
    if (!p->l || connect_pair(g_net, g_net, p->l, handle, &p->sc, &p->rc)) return -1;
    return get_view(g_net, p->rc, &p->v);
}

static void pair_close(pair *p)
{
    if (p->sc) CHECK(g_net->close_send(g_net, p->sc) == 0, "close_send");
    if (p->rc) CHECK(g_net->close_recv(g_net, p->rc) == 0, "close_recv");
    if (p->l) CHECK(g_net->close_listen(g_net, p->l) == 0, "close_listen");
    memset(p, 0, sizeof *p);
}

/* Buffers and registrations of one message; odd `seed`s send from device memory. */
static void msg_init(pair *p, msg *m, size_t size, size_t cap, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->size = size;
    m->cap = cap;
    m->src = malloc(size + 1);
    fill(m->src, size, seed);
    if (seed & 1) {
        CHECK(dbuf_alloc(&m->sdev, size) == 0, "device source of %zu bytes", size);
        dev_write(m->sdev.p, m->src, size);
        CHECK(g_net->reg_mr(g_net, p->sc, m->sdev.p, size, TCPX_NET_PTR_CUDA, &m->smh) == 0, "reg_mr send (cuda)");
    } else {
        CHECK(g_net->reg_mr(g_net, p->sc, m->src, size, TCPX_NET_PTR_HOST, &m->smh) == 0, "reg_mr send (host)");
    }
    CHECK(dbuf_alloc(&m->dst, cap) == 0, "receive buffer of %zu bytes", cap);
    CHECK(g_net->reg_mr(g_net, p->rc, m->dst.p, cap, TCPX_NET_PTR_CUDA, &m->rmh) == 0, "reg_mr recv");
}

static void msg_free(pair *p, msg *m)
{
    if (m->smh) g_net->dereg_mr(g_net, p->sc, m->smh);
    if (m->rmh) g_net->dereg_mr(g_net, p->rc, m->rmh);
    if (m->sdev.raw) dbuf_free(&m->sdev);
    if (m->dst.raw) dbuf_free(&m->dst);
    free(m->src);
    memset(m, 0, sizeof *m);
}

static void post_recv(pair *p, msg *m)
{
    int rc = g_net->irecv(g_net, p->rc, m->dst.p, m->cap, 0, m->rmh, &m->rreq);
    CHECK(rc == 0 && m->rreq, "irecv of %zu bytes: %d", m->cap, rc);
    m->k = p->k++;
}

static void post_send(pair *p, msg *m)
{
    void *data = m->sdev.raw ? (void *)m->sdev.p : (void *)m->src;
    int rc = g_net->isend(g_net, p->sc, data, m->size, 0, m->smh, &m->sreq);
    CHECK(rc == 0 && m->sreq, "isend of %zu bytes: %d", m->size, rc);
}

/* Test the sends and receives of m[0..n) until all are done. */
static int wait_msgs(msg *m, int n)
{
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS * 3);
    int left = 0;
    do {
        left = 0;
        for (int i = 0; i < n; i++) {
            size_t got = 0;
            int done = 0;
            if (m[i].sreq && !m[i].sent) {
                if (g_net->test(g_net, m[i].sreq, &done, &got)) {
                    CHECK(0, "test of send %d", i);
                    return -1;
                }
                m[i].sent = done;
                if (done) CHECK(got == m[i].size, "send %d reported %zu of %zu bytes", i, got, m[i].size);
            }
            if (m[i].rreq && !m[i].recvd) {
                if (g_net->test(g_net, m[i].rreq, &done, &got)) {
                    CHECK(0, "test of receive %d", i);
                    return -1;
                }
                m[i].recvd = done;
                if (done) CHECK(got == m[i].size, "receive %d reported %zu of %zu bytes", i, got, m[i].size);
            }
            left += (m[i].sreq && !m[i].sent) + (m[i].rreq && !m[i].recvd);
        }
        if (left) usleep(50);
    } while (left && !tcpx_past(dl));
    CHECK(left == 0, "%d requests unfinished after %d ms", left, DEADLINE_MS * 3);
    return left ? -1 : 0;
}

/* Copy out the list of a finished receive and check it; gather it from the
 * handle's own list (device view) into the posted buffer and check every
 * byte, and that nothing past the message was written. */
static void verify(pair *p, msg *m, tcpx_unpack_frag *saved, uint64_t *cnt, list_facts *lf)
{
    int slot = (int)(m->k % EMU_SLOTS);
    *cnt = p->v.meta->cnt[slot];
    CHECK(*cnt <= EMU_MAX_FRAGS, "slot %d count %llu", slot, (unsigned long long)*cnt);
    if (*cnt > EMU_MAX_FRAGS) return;
    memcpy(saved, p->v.meta->mem[slot], *cnt * sizeof *saved);
    check_list(saved, *cnt, m->size, lf);
    gather(&p->v, saved, p->v.meta_dev->mem[slot], *cnt, m->dst.p, m->cap);
    uint8_t *back = malloc(m->cap + 1);
    dev_read(back, m->dst.p, m->cap);
    long d = diff(m->src, back, m->size);
    CHECK(d < 0, "receive %llu (%zu bytes, slot %d, %llu fragments, %zu leading) differs at byte %ld",
          (unsigned long long)m->k, m->size, slot, (unsigned long long)*cnt, lf->linear, d);
    for (size_t i = m->size; i < m->cap; i++)
        if (back[i]) {
            CHECK(0, "byte %zu past a %zu-byte message was written", i, m->size);
            break;
        }
    free(back);
}

static void consume(pair *p, msg *m)
{
    CHECK(g_net->irecv_consumed(g_net, p->rc, m->rreq) == 0, "irecv_consumed of receive %llu",
          (unsigned long long)m->k);
    CHECK(p->v.meta->cnt[m->k % EMU_SLOTS] == 0, "slot count not cleared by irecv_consumed");
}

#endif /* DEVMEM_EMU_UTIL_H */
