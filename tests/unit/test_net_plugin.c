/* test_net_plugin.c - the ncclNet plugin loader (src/net/plugin.c).
 *
 * - libnccl-net-tcpxsock.so (plugins/nccl) through every ABI version it
 *   exports (v7..v12) and the newest: properties, connect/accept, random
 *   messages of many sizes with every byte checked, in-order completion, the
 *   request cap; by file name and by short name on the library path (a child
 *   process run with LD_LIBRARY_PATH);
 * - a GPUDirect-TCPX-like v7 fake (tests/plugins/fake_unpack.c): UNPACK
 *   offload and the device handle from accept, sizes when the plugin never
 *   reports them, irecv_consumed passing the plugin's requests in order,
 *   the plugin's log lines forwarded;
 * - failures: missing file, unknown name, no ncclNetPlugin symbol, only an
 *   unsupported version, init failing, no devices, a table lacking a
 *   function, a version the plugin lacks: each TCPX_ERR_TRANSPORT with a
 *   sentence naming the cause.
 */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "net/plugin.h"
#include "tcpx_p2p.h"
#include "test_net_socket_util.h"
#include "util/log.h"

#if !defined(TCPXSOCK_PLUGIN) || !defined(FAKE_PLUGIN_DIR)
int main(void)
{
    printf("SKIP: plugin paths not configured (add_subdirectory(plugins/nccl) and tests/plugins)\n");
    return 77;
}
#else

static const tcpx_net_opts g_opts = {.socks_per_comm = 1, .peer_timeout_ms = 10000, .bind_addr = ""};

static tcpx_net *load(const char *path, int version)
{
    tcpx_net *n = NULL;
    int rc = tcpx_net_plugin_create_version(path, &g_opts, version, &n);
    CHECK(rc == 0 && n, "load %s v%d = %d", path, version, rc);
    return rc ? NULL : n;
}

/* Register, post, test and consume `count` messages in flight at once (as
 * many as the transport takes), checking sizes, bytes and order. `cap_extra`
 * bytes are added to each receive; `exact` = the transport reports the posted
 * size rather than the sent one. */
static void exchange(tcpx_net *n, void *sc, void *rcm, const size_t *sizes, int count, size_t cap_extra,
                     int exact, uint64_t seed)
{
    uint8_t **src = calloc((size_t)count, sizeof *src), **dst = calloc((size_t)count, sizeof *dst);
    void **smh = calloc((size_t)count, sizeof(void *)), **rmh = calloc((size_t)count, sizeof(void *));
    void **sr = calloc((size_t)count, sizeof(void *)), **rr = calloc((size_t)count, sizeof(void *));
    for (int i = 0; i < count; i++) {
        src[i] = malloc(sizes[i] + 1);
        dst[i] = calloc(1, sizes[i] + cap_extra + 1);
        fill(src[i], sizes[i], seed + (uint64_t)i);
        CHECK(n->reg_mr(n, sc, src[i], sizes[i] + 1, TCPX_NET_PTR_HOST, &smh[i]) == 0, "reg_mr send %d", i);
        CHECK(n->reg_mr(n, rcm, dst[i], sizes[i] + cap_extra + 1, TCPX_NET_PTR_HOST, &rmh[i]) == 0, "reg_mr recv %d",
              i);
    }
    int sp = 0, rp = 0, sd = 0, rd = 0;
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while ((sd < count || rd < count) && !tcpx_past(dl)) {
        while (rp < count) {
            int rc = n->irecv(n, rcm, dst[rp], sizes[rp] + cap_extra, 7, rmh[rp], &rr[rp]);
            CHECK(rc == 0, "irecv %d", rp);
            if (rc || !rr[rp]) break;
            rp++;
        }
        while (sp < count) {
            int rc = n->isend(n, sc, src[sp], sizes[sp], 7, smh[sp], &sr[sp]);
            CHECK(rc == 0, "isend %d", sp);
            if (rc || !sr[sp]) break;
            sp++;
        }
        while (sd < sp) { /* requests of one comm finish in posting order */
            int done = 0;
            size_t got = 0;
            if (n->test(n, sr[sd], &done, &got)) {
                CHECK(0, "test send %d", sd);
                goto out;
            }
            if (!done) break;
            CHECK(got == sizes[sd], "send %d reported %zu of %zu bytes", sd, got, sizes[sd]);
            sd++;
        }
        while (rd < rp) {
            int done = 0;
            size_t got = 0;
            if (n->test(n, rr[rd], &done, &got)) {
                CHECK(0, "test recv %d", rd);
                goto out;
            }
            if (!done) break;
            size_t want = exact ? sizes[rd] + cap_extra : sizes[rd];
            CHECK(got == want, "recv %d reported %zu bytes, expected %zu", rd, got, want);
            long d = diff(src[rd], dst[rd], sizes[rd]);
            CHECK(d < 0, "message %d of %zu bytes differs at byte %ld", rd, sizes[rd], d);
            CHECK(n->irecv_consumed(n, rcm, rr[rd]) == 0, "irecv_consumed %d", rd);
            rd++;
        }
    }
    CHECK(sd == count && rd == count, "only %d sends and %d receives of %d finished in time", sd, rd, count);
out:
    for (int i = 0; i < count; i++) {
        n->dereg_mr(n, sc, smh[i]);
        n->dereg_mr(n, rcm, rmh[i]);
        free(src[i]);
        free(dst[i]);
    }
    free(src);
    free(dst);
    free(smh);
    free(rmh);
    free(sr);
    free(rr);
}

/* More sends than max_requests with no receive posted: the one past the cap
 * gets a NULL request ("call again"), then everything drains. */
static void request_cap(tcpx_net *n, void *sc, void *rcm, int max)
{
    enum { SZ = 100 };
    uint8_t *src = malloc((size_t)(max + 1) * SZ), *dst = calloc((size_t)(max + 1), SZ);
    void *smh = NULL, *rmh = NULL;
    void **sr = calloc((size_t)max + 1, sizeof(void *)), **rr = calloc((size_t)max + 1, sizeof(void *));
    fill(src, (size_t)(max + 1) * SZ, 99);
    CHECK(n->reg_mr(n, sc, src, (size_t)(max + 1) * SZ, TCPX_NET_PTR_HOST, &smh) == 0, "reg_mr");
    CHECK(n->reg_mr(n, rcm, dst, (size_t)(max + 1) * SZ, TCPX_NET_PTR_HOST, &rmh) == 0, "reg_mr");
    int posted = 0;
    for (; posted <= max; posted++) {
        CHECK(n->isend(n, sc, src + posted * SZ, SZ, 0, smh, &sr[posted]) == 0, "isend %d", posted);
        if (!sr[posted]) break;
    }
    CHECK(posted == max, "%d sends accepted with max_requests %d", posted, max);
    for (int i = 0; i < posted; i++) {
        CHECK(n->irecv(n, rcm, dst + i * SZ, SZ, 0, rmh, &rr[i]) == 0 && rr[i], "irecv %d", i);
        size_t got = 0;
        CHECK(rr[i] && wait_req(n, rr[i], &got, DEADLINE_MS) == 0 && got == SZ, "recv %d", i);
        if (rr[i]) CHECK(n->irecv_consumed(n, rcm, rr[i]) == 0, "consumed %d", i);
        CHECK(wait_req(n, sr[i], &got, DEADLINE_MS) == 0, "send %d", i);
    }
    CHECK(diff(src, dst, (size_t)posted * SZ) < 0, "capped messages differ");
    n->dereg_mr(n, sc, smh);
    n->dereg_mr(n, rcm, rmh);
    free(src);
    free(dst);
    free(sr);
    free(rr);
}

static void test_tcpxsock(const char *path, int version)
{
    tcpx_net *n = load(path, version);
    if (!n) return;
    printf("tcpxsock %s v%d: %s\n", path, version, n->name);
    CHECK(!strcmp(n->name, "TCPXSock"), "name %s", n->name);
    int ndev = 0;
    CHECK(n->devices(n, &ndev) == 0 && ndev == 1, "devices %d", ndev);
    tcpx_net_props p;
    CHECK(n->get_properties(n, 0, &p) == 0, "get_properties");
    CHECK(p.ptr_support == TCPX_NET_PTR_HOST && p.offload == TCPX_NET_OFFLOAD_NONE, "ptr %d offload %d",
          p.ptr_support, p.offload);
    CHECK(p.max_requests == (version == 7 ? 8 : 32) && p.max_recvs == 1, "max_requests %d max_recvs %d",
          p.max_requests, p.max_recvs);
    CHECK(p.speed_mbps > 0 && p.max_comms == 65536 && p.max_message == (size_t)1 << 30 && p.name[0],
          "speed %d comms %d max_message %zu name %s", p.speed_mbps, p.max_comms, p.max_message, p.name);
    CHECK(n->get_properties(n, 1, &p) == TCPX_ERR_INVALID, "device 1 does not exist");
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc = NULL, *rcm = NULL;
    CHECK(n->listen(n, 0, handle, &l) == 0 && l, "listen");
    if (l && connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        CHECK(n->device_handle(n, rcm) == NULL, "no device handle for a host transport");
        size_t sizes[] = {0, 1, 4095, 4096, 65537, (1u << 20) + 3, 8u << 20, 13, 0, 300000};
        int count = (int)(sizeof sizes / sizeof sizes[0]);
        exchange(n, sc, rcm, sizes, count, 0, 0, 1000 + (uint64_t)version);
        exchange(n, sc, rcm, sizes, count, 4099, 0, 2000 + (uint64_t)version); /* receives larger than sends */
        size_t many[100];
        for (int i = 0; i < 100; i++) many[i] = (size_t)(i * 7919 % 50000) + (size_t)(i % 4 != 0);
        exchange(n, sc, rcm, many, 100, 0, 0, 3000 + (uint64_t)version);
        request_cap(n, sc, rcm, p.max_requests);
        CHECK(n->close_send(n, sc) == 0 && n->close_recv(n, rcm) == 0, "close");
    }
    if (l) CHECK(n->close_listen(n, l) == 0, "close_listen");
    n->destroy(n);
}

/* Read what `fd` (a temp file standing in for stderr) received. */
static void read_all(int fd, char *buf, size_t cap)
{
    ssize_t r = pread(fd, buf, cap - 1, 0);
    buf[r > 0 ? r : 0] = '\0';
}

static void test_fake_unpack(void)
{
    char path[512], logged[4096];
    snprintf(path, sizeof path, "%s/libnccl-net-fake-unpack.so", FAKE_PLUGIN_DIR);
    /* init runs once per process for v7: capture its log line. */
    if (tcpx_log_get_level() < TCPX_LOG_WARN) tcpx_log_set_level(TCPX_LOG_WARN);
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    tcpx_net *n = load(path, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    read_all(fileno(tmp), logged, sizeof logged);
    fclose(tmp);
    CHECK(strstr(logged, "WARN plugin FakeUnpack: fake init says 42"), "plugin log line not forwarded: [%s]", logged);
    if (!n) return;
    tcpx_net_props p;
    CHECK(n->get_properties(n, 0, &p) == 0, "get_properties");
    CHECK(p.offload == TCPX_NET_OFFLOAD_UNPACK && p.max_requests == 8 &&
              p.ptr_support == (TCPX_NET_PTR_HOST | TCPX_NET_PTR_CUDA) && p.speed_mbps == 200000 &&
              !strcmp(p.name, "fake0"),
          "offload %d max_requests %d ptr %d speed %d name %s", p.offload, p.max_requests, p.ptr_support,
          p.speed_mbps, p.name);
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc = NULL, *rcm = NULL;
    CHECK(n->listen(n, 0, handle, &l) == 0 && l, "listen");
    if (l && connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        const uint64_t *dh = n->device_handle(n, rcm);
        CHECK(dh && *dh == 0xf00dfacecafe0007ull, "device handle %p", (const void *)dh);
        CHECK(n->device_handle(n, sc) == NULL, "a send comm has no device handle");
        size_t sizes[] = {0, 1, 4096, 100000, 5, 6, 7, 8, 9, 10, 11, 12};
        exchange(n, sc, rcm, sizes, 12, 0, 1, 7);
        exchange(n, sc, rcm, sizes, 12, 64, 1, 8); /* sizes unreported: the posted size comes back */
        request_cap(n, sc, rcm, 8);
        /* irecv_consumed: only after test reported done, and the plugin's own order check. */
        uint8_t a[16], b[16], c[16] = {1}, d[16] = {2};
        void *mh = NULL, *smh = NULL, *r1 = NULL, *r2 = NULL, *s1 = NULL, *s2 = NULL;
        size_t got;
        n->reg_mr(n, rcm, a, 16, TCPX_NET_PTR_HOST, &mh);
        n->reg_mr(n, sc, c, 16, TCPX_NET_PTR_HOST, &smh);
        CHECK(n->irecv(n, rcm, a, 16, 0, mh, &r1) == 0 && r1, "irecv 1");
        CHECK(n->irecv(n, rcm, b, 16, 0, mh, &r2) == 0 && r2, "irecv 2");
        CHECK(n->irecv_consumed(n, rcm, r1) == TCPX_ERR_INVALID, "consumed before done: %s", tcpx_last_error());
        CHECK(n->isend(n, sc, c, 16, 0, smh, &s1) == 0 && s1 && n->isend(n, sc, d, 16, 0, smh, &s2) == 0 && s2,
              "isend");
        CHECK(wait_req(n, s1, &got, DEADLINE_MS) == 0 && wait_req(n, s2, &got, DEADLINE_MS) == 0, "sends");
        CHECK(wait_req(n, r1, &got, DEADLINE_MS) == 0 && wait_req(n, r2, &got, DEADLINE_MS) == 0, "receives");
        CHECK(a[0] == 1 && b[0] == 2, "order %d %d", a[0], b[0]);
        int rc = n->irecv_consumed(n, rcm, r2);
        CHECK(rc == TCPX_ERR_TRANSPORT && strstr(tcpx_last_error(), "irecvConsumed returned 3"),
              "out-of-order consume = %d: %s", rc, tcpx_last_error());
        CHECK(n->irecv_consumed(n, rcm, r1) == 0 && n->irecv_consumed(n, rcm, r2) == 0, "consume in order");
        n->dereg_mr(n, rcm, mh);
        n->dereg_mr(n, sc, smh);
        CHECK(n->close_send(n, sc) == 0 && n->close_recv(n, rcm) == 0, "close");
    }
    /* A connect abandoned half-way frees only our state. */
    void *state = NULL, *sc2 = NULL;
    CHECK(n->connect_send(n, 0, handle, &state, &sc2) == 0 && state && !sc2, "first connect call pends");
    n->connect_abort(n, state);
    if (l) CHECK(n->close_listen(n, l) == 0, "close_listen");
    n->destroy(n);
}

static void expect_fail(const char *path, int version, int code, const char *needle, const char *needle2)
{
    tcpx_net *n = (tcpx_net *)&n;
    int rc = tcpx_net_plugin_create_version(path, &g_opts, version, &n);
    const char *e = tcpx_last_error();
    CHECK(rc == code && n == NULL, "%s v%d: rc %d (want %d)", path, version, rc, code);
    CHECK(strstr(e, needle) && (!needle2 || strstr(e, needle2)), "%s: error \"%s\" lacks \"%s\"/\"%s\"", path, e,
          needle, needle2 ? needle2 : "");
    printf("  %s -> %s: %s\n", path, tcpx_strerror(rc), e);
}

static void test_failures(void)
{
    char p[512];
    expect_fail("/nonexistent/dir/libnccl-net-nope.so", 0, TCPX_ERR_TRANSPORT, "cannot load", "No such file");
    expect_fail("surely-not-installed", 0, TCPX_ERR_TRANSPORT, "libnccl-net-surely-not-installed.so", "cannot load");
    snprintf(p, sizeof p, "%s/libnccl-net-fake-nosym.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "none of ncclNetPlugin_v12", "ncclNetPlugin_v7 is exported");
    snprintf(p, sizeof p, "%s/libnccl-net-fake-v5only.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "it has ncclNetPlugin_v5", "we need one of ncclNetPlugin_v12");
    snprintf(p, sizeof p, "%s/libnccl-net-fake-initfail.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "plugin FakeInitFail", "init returned 2 (ncclSystemError)");
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "init returned 2", NULL); /* remembered, not retried */
    snprintf(p, sizeof p, "%s/libnccl-net-fake-nodev.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "plugin FakeNoDev", "has no network devices");
    snprintf(p, sizeof p, "%s/libnccl-net-fake-missing.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 0, TCPX_ERR_TRANSPORT, "ncclNetPlugin_v8 table has no isend", NULL);
    snprintf(p, sizeof p, "%s/libnccl-net-fake-unpack.so", FAKE_PLUGIN_DIR);
    expect_fail(p, 9, TCPX_ERR_TRANSPORT, "none of ncclNetPlugin_v9", NULL);
    expect_fail(TCPXSOCK_PLUGIN, 13, TCPX_ERR_INVALID, "outside 7..12", NULL);
    expect_fail("", 0, TCPX_ERR_INVALID, "empty", NULL);
}

/* A session over a device-unpack transport refuses the data digest (its
 * chunks land in GPU memory the host never reads), with a sentence. */
static void test_digest_refused(void)
{
    tcpx_config cfg;
    tcpx_config_init(&cfg);
    snprintf(cfg.transport, sizeof cfg.transport, "%s/libnccl-net-fake-unpack.so", FAKE_PLUGIN_DIR);
    snprintf(cfg.name, sizeof cfg.name, "digest-check");
    cfg.gpu_id = 0; /* device unpack receives into GPU memory */
    tcpx_session *s = NULL;
    tcpx_status st = tcpx_session_create(&cfg, &s);
    if (st) { /* the fake needs what this machine may lack (a GPU): nothing to compare with */
        printf("data digest over device unpack: not checked, the session cannot be made here: %s\n",
               tcpx_last_error());
        return;
    }
    tcpx_session_destroy(s);
    cfg.data_digest = 1;
    s = NULL;
    st = tcpx_session_create(&cfg, &s);
    CHECK(st == TCPX_ERR_INVALID && !s && strstr(tcpx_last_error(), "data_digest is not supported"),
          "data digest over device unpack: %s: %s", tcpx_strerror(st), tcpx_last_error());
    if (s) tcpx_session_destroy(s);
}

/* Child process with LD_LIBRARY_PATH set: load by short and by file name. */
static int by_name(void)
{
    const char *names[] = {"tcpxsock", "libnccl-net-tcpxsock.so"};
    for (int i = 0; i < 2; i++) {
        tcpx_net *n = load(names[i], 0);
        if (!n) continue;
        CHECK(!strcmp(n->name, "TCPXSock"), "%s: name %s", names[i], n->name);
        uint8_t handle[TCPX_NET_HANDLE_SIZE];
        void *l = NULL, *sc, *rcm;
        if (n->listen(n, 0, handle, &l) == 0 && connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
            size_t sizes[] = {1, 70000};
            exchange(n, sc, rcm, sizes, 2, 0, 0, 5);
            n->close_send(n, sc);
            n->close_recv(n, rcm);
        }
        if (l) n->close_listen(n, l);
        n->destroy(n);
        printf("loaded by name \"%s\"\n", names[i]);
    }
    return failures ? 1 : 0;
}

static void test_by_name(const char *self)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", TCPXSOCK_PLUGIN);
    *strrchr(dir, '/') = '\0';
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LD_LIBRARY_PATH", dir, 1);
        execl("/proc/self/exe", self, "--by-name", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "loading by name in a child process failed (status %d)", status);
}

int main(int argc, char **argv)
{
    setenv("TCPX_BIND_ADDR", "127.0.0.1", 1); /* read by the TCPXSock plugin's init */
    setenv("TCPX_SOCKS_PER_COMM", "2", 1);
    if (argc > 1 && !strcmp(argv[1], "--by-name")) return by_name();
    test_failures();
    test_tcpxsock(TCPXSOCK_PLUGIN, 0);
    for (int v = TCPX_PLUGIN_MIN_VERSION; v <= TCPX_PLUGIN_MAX_VERSION; v++) test_tcpxsock(TCPXSOCK_PLUGIN, v);
    test_fake_unpack();
    test_digest_refused();
    test_by_name(argv[0]);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all plugin loader checks passed\n");
    return 0;
}
#endif
