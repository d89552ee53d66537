/* test_devmem_emu.c - the devmem emulator plugin (tests/plugins/devmem_emu*.c)
 * driven through our ncclNet loader (net/plugin.c) from one thread.
 *
 * Default: host mode (DEVMEM_EMU_HOST=1), gathers done with memcpy. With
 * --cuda: CUDA mode (skips when the build or the machine has no GPU), the
 * handle read from device memory, meta through its host view, gathers by
 * tcpx_gpu_unpack.
 *
 *  1. messages of 0 B .. 8 MiB and 200 random ones, 8 in flight (the v7
 *     loader's cap), more than 32 receives so slots wrap: the k-th
 *     receive's list is in slot k % 16, it covers the message exactly with
 *     pieces on distinct pages, pages of receives in flight are disjoint,
 *     the gather into the posted buffer gives every byte, cnt is 0 after
 *     irecv_consumed;
 *  2. long lists are shuffled and scattered; some messages keep leading
 *     bytes out of the list (written straight into the posted buffer);
 *  3. violations, each an error and one more devmem_emu_violations():
 *     irecvConsumed late (a 17th receive while the 1st is unconsumed),
 *     before test reported done, out of order, unknown; a receive into host
 *     memory; an unaligned CUDA registration (CUDA mode); a message larger
 *     than its receive. The loader caps v7 comms at 8 requests, so the
 *     17-receive case and the plugin's own "before done" check use the
 *     plugin's table directly;
 *  4. irecv_consumed poisons: the old list then gathers 0xA5;
 *  5. backpressure: a full pool holds a receive back, never fails it;
 *  6. the peer closing fails pending receives and later sends in bounded time.
 */
#define _GNU_SOURCE
#include <stdio.h>

#ifndef DEVMEM_EMU_PLUGIN
int main(void)
{
    printf("SKIP: the devmem emulator plugin path is not configured (tests/plugins)\n");
    return 77;
}
#else
#include <dlfcn.h>

#include "devmem_emu_util.h"
#include "net/plugin.h"

#define POOL_MB 64
#define MAX_WAVE 8

static int (*g_violations)(void);
static const tcpx_ncclNet_v7_t *g_raw;

typedef struct stats {
    int msgs, linear, shorts, offset, long_lists;
} stats;

/* Up to MAX_WAVE messages in flight at once: post, finish, verify (pages
 * of all of them disjoint), consume in order. */
static void wave(pair *p, const size_t *sizes, int n, uint64_t seed, stats *st)
{
    msg m[MAX_WAVE];
    tcpx_unpack_frag *saved = malloc(EMU_MAX_FRAGS * sizeof *saved);
    uint32_t *pages = malloc((size_t)n * EMU_MAX_FRAGS * sizeof *pages);
    size_t npages = 0;
    for (int i = 0; i < n; i++) msg_init(p, &m[i], sizes[i], sizes[i] + (i % 3 == 0 ? 64 : 0), seed + (uint64_t)i);
    for (int i = 0; i < n; i++) post_recv(p, &m[i]);
    for (int i = 0; i < n; i++) post_send(p, &m[i]);
    if (wait_msgs(m, n) == 0) {
        for (int i = 0; i < n; i++) {
            uint64_t cnt = 0;
            list_facts lf;
            verify(p, &m[i], saved, &cnt, &lf);
            for (uint64_t j = 0; j < cnt; j++) pages[npages++] = saved[j].src_off / EMU_PAGE;
            st->msgs++;
            st->linear += lf.linear > 0;
            st->shorts += lf.shorts;
            st->offset += lf.offset;
            if (cnt >= 16) {
                st->long_lists++;
                CHECK(lf.shuffled && lf.scattered, "list of %llu fragments (%zu bytes) shuffled %d scattered %d",
                      (unsigned long long)cnt, m[i].size, lf.shuffled, lf.scattered);
            }
        }
        qsort(pages, npages, sizeof *pages, cmp_u32);
        for (size_t j = 0; j + 1 < npages; j++)
            if (pages[j] == pages[j + 1]) {
                CHECK(0, "page %u is in two receives in flight", pages[j]);
                break;
            }
        for (int i = 0; i < n; i++) consume(p, &m[i]);
    }
    for (int i = 0; i < n; i++) msg_free(p, &m[i]);
    free(saved);
    free(pages);
}

static void test_transfers(pair *p)
{
    static const size_t sizes[] = {1,    2,    15,    16,        17,        127,       128,       129,
                                   4095, 4096, 4097,  65536 + 3, 1u << 20,  4u << 20,  EMU_MAX_MSG, 0};
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    stats st = {0};
    for (int i = 0; i < n; i += MAX_WAVE) wave(p, sizes + i, n - i < MAX_WAVE ? n - i : MAX_WAVE, 100 + (uint64_t)i, &st);
    for (int w = 0; w < 25; w++) {
        size_t rs[MAX_WAVE];
        for (int i = 0; i < MAX_WAVE; i++) {
            uint64_t r = tcpx_random_word(tcpx_random_key(42), (uint64_t)(w * MAX_WAVE + i));
            rs[i] = i == 3 ? 64 + r % 300000 : 64 + r % 20000;
        }
        wave(p, rs, MAX_WAVE, 1000 + (uint64_t)w * MAX_WAVE, &st);
    }
    printf("transfers: %d messages over %llu receives, %d with leading bytes in the buffer, %d short pieces, "
           "%d pieces inside a page, %d long lists\n",
           st.msgs, (unsigned long long)p->k, st.linear, st.shorts, st.offset, st.long_lists);
    CHECK(st.msgs == n + 200 && p->k >= 32, "%d messages, %llu receives", st.msgs, (unsigned long long)p->k);
    CHECK(st.linear > 0, "no message kept leading bytes out of its list");
    CHECK(st.shorts > 0 && st.offset > 0, "%d short pieces, %d not at a page start", st.shorts, st.offset);
    CHECK(st.long_lists > 0, "no long lists");
}

/* 4: after irecv_consumed the old list gathers poison. */
static void test_poison(pair *p)
{
    msg m;
    tcpx_unpack_frag *saved = malloc(EMU_MAX_FRAGS * sizeof *saved);
    uint64_t cnt = 0;
    list_facts lf;
    msg_init(p, &m, 20000, 20000, 7);
    post_recv(p, &m);
    post_send(p, &m);
    if (wait_msgs(&m, 1) == 0) {
        verify(p, &m, saved, &cnt, &lf);
        consume(p, &m);
        dbuf late;
        uint8_t *back = malloc(m.size);
        CHECK(dbuf_alloc(&late, m.size) == 0, "buffer");
        gather(&p->v, saved, NULL, cnt, late.p, m.size);
        dev_read(back, late.p, m.size);
        size_t bad = 0;
        for (uint64_t i = 0; i < cnt; i++)
            for (uint32_t j = 0; j < saved[i].len; j++) bad += back[saved[i].dst_off + j] != EMU_POISON;
        for (size_t i = 0; i < lf.linear; i++) bad += back[i] != 0;
        CHECK(bad == 0 && cnt > 0, "%zu bytes gathered after irecv_consumed are not poison", bad);
        dbuf_free(&late);
        free(back);
    }
    msg_free(p, &m);
    free(saved);
}

/* 3, through the loader: out of order, before done, host memory, alignment. */
static void test_violations_net(pair *p)
{
    msg m[2];
    int v0 = g_violations();
    msg_init(p, &m[0], 3000, 3000, 20);
    msg_init(p, &m[1], 5000, 5000, 21);
    post_recv(p, &m[0]);
    CHECK(g_net->irecv_consumed(g_net, p->rc, m[0].rreq) == TCPX_ERR_INVALID && g_violations() == v0,
          "consume before done: the loader refuses it itself");
    post_recv(p, &m[1]);
    post_send(p, &m[0]);
    post_send(p, &m[1]);
    if (wait_msgs(m, 2) == 0) {
        int rc = g_net->irecv_consumed(g_net, p->rc, m[1].rreq);
        CHECK(rc == TCPX_ERR_TRANSPORT && g_violations() == v0 + 1, "out-of-order consume: rc %d, violations %d",
              rc, g_violations() - v0);
        tcpx_unpack_frag *saved = malloc(EMU_MAX_FRAGS * sizeof *saved);
        uint64_t cnt;
        list_facts lf;
        for (int i = 0; i < 2; i++) verify(p, &m[i], saved, &cnt, &lf);
        free(saved);
        consume(p, &m[0]);
        consume(p, &m[1]);
    }
    msg_free(p, &m[0]);
    msg_free(p, &m[1]);

    uint8_t *host = calloc(1, 4096);
    void *mh = NULL, *req = NULL;
    v0 = g_violations();
    CHECK(g_net->reg_mr(g_net, p->rc, host, 4096, TCPX_NET_PTR_HOST, &mh) == 0, "reg_mr host");
    int rc = g_net->irecv(g_net, p->rc, host, 4096, 0, mh, &req);
    CHECK(rc == TCPX_ERR_TRANSPORT && !req && g_violations() == v0 + 1 &&
              strstr(tcpx_last_error(), "irecv returned 3"),
          "receive into host memory: rc %d, violations %d", rc, g_violations() - v0);
    g_net->dereg_mr(g_net, p->rc, mh);
    free(host);

    dbuf d;
    CHECK(dbuf_alloc(&d, 8192) == 0, "buffer");
    v0 = g_violations();
    mh = NULL;
    rc = g_net->reg_mr(g_net, p->rc, d.p + 1, 4096, TCPX_NET_PTR_CUDA, &mh);
    if (g_cuda) {
        CHECK(rc == TCPX_ERR_TRANSPORT && !mh && g_violations() == v0 + 1,
              "unaligned CUDA registration: rc %d, violations %d", rc, g_violations() - v0);
    } else {
        CHECK(rc == 0 && mh && g_violations() == v0, "host mode takes unaligned \"CUDA\" registrations");
        g_net->dereg_mr(g_net, p->rc, mh);
    }
    dbuf_free(&d);
    /* The comm still works, and the refused irecv did not count as posted. */
    size_t one = 777;
    stats st = {0};
    wave(p, &one, 1, 30, &st);
}

/* ---- 3, on the plugin's own table (more requests than the loader allows) ---- */

static int raw_wait(void *req, int *size)
{
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    for (;;) {
        int done = 0, rc = g_raw->test(req, &done, size);
        if (rc || done) return rc;
        if (tcpx_past(dl)) return -1;
        usleep(50);
    }
}

static void test_raw_table(void)
{
    uint8_t handle[TCPX_NCCL_NET_HANDLE_MAXSIZE];
    void *l = NULL, *sc = NULL, *rc = NULL;
    tcpx_ncclNetDeviceHandle_v7_t dh = {.netDeviceType = TCPX_NCCL_NET_DEVICE_UNPACK,
                                        .netDeviceVersion = TCPX_NCCL_NET_DEVICE_UNPACK_VERSION};
    tcpx_ncclNetDeviceHandle_v7_t *dhp = &dh, *none = NULL;
    CHECK(g_raw->listen(0, handle, &l) == 0 && l, "raw listen");
    if (!l) return;
    /* A stranger with a wrong preamble is dropped, and listening goes on. */
    emu_handle eh;
    memcpy(&eh, handle, sizeof eh);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)eh.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int junk = socket(AF_INET, SOCK_STREAM, 0), dropped = 0;
    CHECK(junk >= 0 && connect(junk, (struct sockaddr *)&a, sizeof a) == 0 &&
              send(junk, "not an emulator peer", 16, MSG_NOSIGNAL) == 16,
          "stranger connects to port %u", eh.port);
    for (uint64_t t = tcpx_deadline_ms(DEADLINE_MS); junk >= 0 && !dropped && !tcpx_past(t); usleep(100)) {
        CHECK(g_raw->accept(l, &rc, &dhp) == 0 && !rc, "a stranger must not be accepted");
        dropped = raw_closed(junk);
    }
    CHECK(dropped, "the stranger's connection was not closed");
    if (junk >= 0) close(junk);
    CHECK(g_raw->connect(0, handle, &sc, &none) == 0 && !sc, "the first connect call must not complete");
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while ((!sc || !rc) && !tcpx_past(dl)) {
        if (!sc) CHECK(g_raw->connect(0, handle, &sc, &none) == 0, "raw connect");
        if (!rc) CHECK(g_raw->accept(l, &rc, &dhp) == 0, "raw accept");
        usleep(100);
    }
    CHECK(sc && rc, "raw connect/accept did not finish");
    CHECK(dh.netDeviceType == TCPX_NCCL_NET_DEVICE_UNPACK && dh.netDeviceVersion == 7 && dh.size == 24 &&
              dh.needsProxyProgress == 1 && dh.handle,
          "device handle type %d version %d size %zu proxy %d", dh.netDeviceType, dh.netDeviceVersion, dh.size,
          dh.needsProxyProgress);
    if (!sc || !rc) goto out;
    enum { N = EMU_SLOTS, SZ = 64 };
    dbuf d;
    uint8_t src[2][SZ], back[SZ];
    void *rmh = NULL, *smh = NULL, *req[N + 1] = {0}, *sreq[2] = {0};
    int v0 = g_violations(), size = -1;
    CHECK(dbuf_alloc(&d, (N + 1) * SZ) == 0, "buffer");
    CHECK(g_raw->regMr(rc, d.p, (N + 1) * SZ, TCPX_NCCL_PTR_CUDA, &rmh) == 0, "raw regMr cuda");
    CHECK(g_raw->regMr(sc, src, sizeof src, TCPX_NCCL_PTR_HOST, &smh) == 0, "raw regMr host");
    for (int i = 0; i < N; i++) {
        void *data = d.p + i * SZ;
        int sz = SZ, tag = 0;
        CHECK(g_raw->irecv(rc, 1, &data, &sz, &tag, &rmh, &req[i]) == 0 && req[i], "raw irecv %d", i);
    }
    CHECK(g_raw->irecvConsumed(rc, 1, req[0]) == TCPX_NCCL_INTERNAL_ERROR && g_violations() == v0 + 1,
          "consumed before done");
    for (int i = 0; i < 2; i++) {
        fill(src[i], SZ, 500 + (uint64_t)i);
        CHECK(g_raw->isend(sc, src[i], SZ, 0, smh, &sreq[i]) == 0 && sreq[i], "raw isend %d", i);
        CHECK(sreq[i] && raw_wait(sreq[i], NULL) == 0, "raw send %d (test with a NULL size)", i);
    }
    CHECK(raw_wait(req[1], &size) == 0 && size == SZ, "receive 1: size %d", size);
    CHECK(g_raw->irecvConsumed(rc, 1, req[0]) == TCPX_NCCL_INTERNAL_ERROR && g_violations() == v0 + 2,
          "consumed before test reported it done (it finished while receive 1 was tested)");
    CHECK(raw_wait(req[0], NULL) == 0, "receive 0");
    void *data = d.p + N * SZ;
    int sz = SZ, tag = 0;
    CHECK(g_raw->irecv(rc, 1, &data, &sz, &tag, &rmh, &req[N]) == TCPX_NCCL_INTERNAL_ERROR && !req[N] &&
              g_violations() == v0 + 3,
          "receive 16 posted while receive 0 holds slot 0 (late irecvConsumed)");
    CHECK(g_raw->irecvConsumed(rc, 1, req[1]) == TCPX_NCCL_INTERNAL_ERROR && g_violations() == v0 + 4,
          "consumed out of order");
    CHECK(g_raw->irecvConsumed(rc, 1, &size) == TCPX_NCCL_INTERNAL_ERROR && g_violations() == v0 + 5,
          "consumed an unknown request");
    emu_view v;
    memset(&v, 0, sizeof v);
    if (g_cuda) {
        tcpx_unpack_handle h;
        CHECK(tcpx_gpu_memcpy(g_gpu, &h, dh.handle, sizeof h) == 0, "handle");
        CHECK(tcpx_gpu_host_view(g_gpu, h.meta, (void **)&v.meta) == 0, "meta host view");
        v.bounce = h.bounce_buf;
    } else {
        v.meta = ((tcpx_unpack_handle *)dh.handle)->meta;
        v.bounce = ((tcpx_unpack_handle *)dh.handle)->bounce_buf;
    }
    v.bounce_size = g_pool_bytes;
    for (int i = 0; i < 2 && v.meta; i++) {
        tcpx_unpack_frag f[2];
        uint64_t cnt = v.meta->cnt[i];
        CHECK(cnt >= 1 && cnt <= 2, "slot %d: %llu fragments for %d bytes", i, (unsigned long long)cnt, SZ);
        if (cnt < 1 || cnt > 2) continue;
        memcpy(f, v.meta->mem[i], cnt * sizeof f[0]);
        gather(&v, f, NULL, cnt, d.p + i * SZ, SZ);
        dev_read(back, d.p + i * SZ, SZ);
        CHECK(!memcmp(back, src[i], SZ), "raw receive %d differs", i);
    }
    CHECK(g_raw->irecvConsumed(rc, 1, req[0]) == 0 && g_raw->irecvConsumed(rc, 1, req[1]) == 0, "consume in order");
    CHECK(g_raw->irecv(rc, 1, &data, &sz, &tag, &rmh, &req[N]) == 0 && req[N], "receive 16 once slot 0 is free");
    CHECK(g_violations() == v0 + 5, "violations %d", g_violations() - v0);
    g_raw->deregMr(rc, rmh);
    g_raw->deregMr(sc, smh);
    dbuf_free(&d);
out:
    if (sc) g_raw->closeSend(sc);
    if (rc) g_raw->closeRecv(rc); /* 15 receives still posted: returned quietly */
    g_raw->closeListen(l);
}

/* 5: with every pool page held by unconsumed receives, a new receive waits
 * (no error) and finishes once one of them is consumed. */
static void test_backpressure(void)
{
    pair a = {0}, b = {0};
    msg m[MAX_WAVE], x;
    int n = (int)(g_pool_bytes / EMU_MAX_MSG);
    if (n > MAX_WAVE) n = MAX_WAVE;
    CHECK(n * EMU_MAX_MSG == g_pool_bytes, "the pool must be %d largest messages", MAX_WAVE);
    if (pair_open(&a) || pair_open(&b)) goto out;
    for (int i = 0; i < n; i++) msg_init(&a, &m[i], EMU_MAX_MSG, EMU_MAX_MSG, 40 + (uint64_t)i);
    for (int i = 0; i < n; i++) post_recv(&a, &m[i]);
    for (int i = 0; i < n; i++) post_send(&a, &m[i]);
    if (wait_msgs(m, n) == 0) {
        msg_init(&b, &x, 100, 100, 60);
        post_recv(&b, &x);
        post_send(&b, &x);
        size_t got = 0;
        int done = 0, rc = 0;
        uint64_t dl = tcpx_deadline_ms(300);
        while (!tcpx_past(dl) && !(rc = g_net->test(g_net, x.rreq, &done, &got)) && !done) usleep(200);
        CHECK(rc == 0 && !done, "a receive with no free page: rc %d done %d (must wait)", rc, done);
        tcpx_unpack_frag *saved = malloc(EMU_MAX_FRAGS * sizeof *saved);
        uint64_t cnt;
        list_facts lf;
        verify(&a, &m[0], saved, &cnt, &lf);
        consume(&a, &m[0]);
        if (wait_msgs(&x, 1) == 0) {
            verify(&b, &x, saved, &cnt, &lf);
            consume(&b, &x);
        }
        for (int i = 1; i < n; i++) {
            verify(&a, &m[i], saved, &cnt, &lf);
            consume(&a, &m[i]);
        }
        free(saved);
        msg_free(&b, &x);
    }
    for (int i = 0; i < n; i++) msg_free(&a, &m[i]);
out:
    pair_close(&a);
    pair_close(&b);
}

/* Post one message of `size` into a receive of `cap`; the receive must fail. */
static void expect_recv_failure(size_t size, size_t cap, int violation, const char *what)
{
    pair p;
    msg m;
    if (pair_open(&p) == 0) {
        int v0 = g_violations();
        msg_init(&p, &m, size, cap, 70);
        post_recv(&p, &m);
        post_send(&p, &m);
        size_t got = 0;
        int rc = wait_req(g_net, m.rreq, &got, DEADLINE_MS);
        CHECK(rc < 0 && g_violations() == v0 + violation, "%s: rc %d, violations %d", what, rc,
              g_violations() - v0);
        msg_free(&p, &m);
    }
    pair_close(&p);
}

static void test_oversize(void)
{
    expect_recv_failure(200, 100, 1, "message larger than its receive");
    expect_recv_failure(EMU_MAX_MSG + 1, EMU_MAX_MSG + 1, 0, "message over 2048 pages");
}

/* 6: the peer going away fails what is pending, in bounded time. */
static void test_peer_close(void)
{
    pair p;
    msg m;
    if (pair_open(&p) == 0) {
        msg_init(&p, &m, 1000, 1000, 80);
        post_recv(&p, &m);
        CHECK(g_net->dereg_mr(g_net, p.sc, m.smh) == 0 && g_net->close_send(g_net, p.sc) == 0, "close_send");
        p.sc = NULL;
        m.smh = NULL;
        size_t got = 0;
        uint64_t t0 = tcpx_now_ns();
        int rc = wait_req(g_net, m.rreq, &got, DEADLINE_MS);
        CHECK(rc < 0 && strstr(tcpx_last_error(), "test returned 6"),
              "receive pending when the peer closed: rc %d after %.3f s", rc, secs(t0));
        msg_free(&p, &m);
    }
    pair_close(&p);
    if (pair_open(&p) == 0) {
        msg_init(&p, &m, 1000, 1000, 81);
        void *data = m.sdev.raw ? (void *)m.sdev.p : (void *)m.src;
        CHECK(g_net->dereg_mr(g_net, p.rc, m.rmh) == 0 && g_net->close_recv(g_net, p.rc) == 0, "close_recv");
        p.rc = NULL;
        m.rmh = NULL;
        /* The first sends may still fit the dead socket's buffer; one fails soon. */
        int rc = 0;
        uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
        while (!rc && !tcpx_past(dl)) {
            void *req = NULL;
            size_t got;
            rc = g_net->isend(g_net, p.sc, data, m.size, 0, m.smh, &req);
            if (!rc && req) rc = wait_req(g_net, req, &got, DEADLINE_MS);
            if (rc == 1) break; /* pending past the deadline */
            usleep(1000);
        }
        CHECK(rc < 0 && strstr(tcpx_last_error(), "test returned 6"), "sends to a closed peer: rc %d", rc);
        msg_free(&p, &m);
    }
    pair_close(&p);
}

static int setup(int argc, char **argv)
{
    g_cuda = argc > 1 && !strcmp(argv[1], "--cuda");
    char mb[16];
    snprintf(mb, sizeof mb, "%d", POOL_MB);
    setenv("DEVMEM_EMU_POOL_MB", mb, 1);
    g_pool_bytes = (size_t)POOL_MB << 20;
    if (!getenv("DEVMEM_EMU_SEED")) setenv("DEVMEM_EMU_SEED", "20240611", 1);
    if (g_cuda) {
        int ndev = 0;
        if (!tcpx_gpu_built() || tcpx_gpu_device_count(&ndev) || tcpx_gpu_open(0, &g_gpu)) {
            printf("SKIP: no CUDA device: %s\n", tcpx_gpu_built() ? tcpx_last_error() : "built without CUDA");
            return 77;
        }
        unsetenv("DEVMEM_EMU_HOST");
        if (tcpx_gpu_stream_create(g_gpu, &g_stream) ||
            tcpx_gpu_malloc(g_gpu, EMU_MAX_FRAGS * sizeof(tcpx_unpack_frag), (void **)&g_dfrags)) {
            fprintf(stderr, "GPU setup failed: %s\n", tcpx_last_error());
            return 1;
        }
    } else {
        setenv("DEVMEM_EMU_HOST", "1", 1);
    }
    tcpx_net_opts opts = {.socks_per_comm = 1, .peer_timeout_ms = 10000, .bind_addr = ""};
    if (tcpx_net_plugin_create(DEVMEM_EMU_PLUGIN, &opts, &g_net)) {
        fprintf(stderr, "loading %s failed: %s\n", DEVMEM_EMU_PLUGIN, tcpx_last_error());
        return 1;
    }
    void *dl = dlopen(DEVMEM_EMU_PLUGIN, RTLD_NOW | RTLD_NOLOAD);
    g_violations = dl ? (int (*)(void))dlsym(dl, "devmem_emu_violations") : NULL;
    g_raw = dl ? dlsym(dl, "ncclNetPlugin_v7") : NULL;
    if (dl) dlclose(dl); /* drops our reference only: the loader keeps the library */
    if (!g_violations || !g_raw) {
        fprintf(stderr, "devmem_emu_violations / ncclNetPlugin_v7 not found in %s\n", DEVMEM_EMU_PLUGIN);
        return 1;
    }
    printf("devmem emulator, %s mode, seed %s, pool %d MiB\n", g_cuda ? "CUDA" : "host", getenv("DEVMEM_EMU_SEED"),
           POOL_MB);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = setup(argc, argv);
    if (rc) return rc;
    tcpx_net_props props;
    CHECK(g_net->get_properties(g_net, 0, &props) == 0, "get_properties");
    CHECK(!strcmp(g_net->name, "DevmemEmu") && !strcmp(props.name, "emu0") &&
              props.offload == TCPX_NET_OFFLOAD_UNPACK &&
              props.ptr_support == (TCPX_NET_PTR_HOST | TCPX_NET_PTR_CUDA) && props.speed_mbps == 100000 &&
              props.max_comms == 1024 && props.max_recvs == 1 && props.max_requests == 8,
          "%s: %s offload %d ptr %d speed %d comms %d recvs %d requests %d", g_net->name, props.name, props.offload,
          props.ptr_support, props.speed_mbps, props.max_comms, props.max_recvs, props.max_requests);
    int v_start = g_violations();
    test_raw_table();
    pair p;
    if (pair_open(&p) == 0) {
        test_transfers(&p);
        test_poison(&p);
        test_violations_net(&p);
    }
    pair_close(&p);
    test_backpressure();
    test_oversize();
    test_peer_close();
    printf("violations counted: %d\n", g_violations() - v_start);
    int want = 8 + g_cuda; /* unaligned CUDA registrations are refused in CUDA mode only */
    CHECK(g_violations() - v_start == want, "expected %d violations, the plugin counted %d", want,
          g_violations() - v_start);
    g_net->destroy(g_net);
    if (g_cuda) {
        tcpx_gpu_free(g_gpu, g_dfrags);
        tcpx_gpu_stream_destroy(g_stream);
        tcpx_gpu_close(g_gpu);
    }
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all devmem emulator checks passed\n");
    return 0;
}
#endif
