/* plugin_v11.c - shims for ncclNet ABI v11 and v12.
 *
 * Since v11, init is called once per user of the plugin (NCCL: once per
 * communicator) and returns a context that listen and connect take and
 * finalize releases; the comm config moved from connect to init. v12 only
 * changed the properties (8 devices per virtual NIC, rail and plane ids).
 */
#include <stddef.h>

#include "net/plugin.h"

#define TAB(N, t) ((const tcpx_ncclNet_v##N##_t *)(t))
#define REQUIRE(tab, f) \
    if (!(tab)->f) return #f

/* The v11 and v12 shims are the same code over each version's own table
 * type (never one version's table read through the other's struct): one
 * macro instantiated per version. */
#define SHIM_V11_FAMILY(N) \
static const char *v##N##_name(const void *t) { return TAB(N, t)->name; }                                              \
                                                                                                                       \
static const char *v##N##_missing(const void *t)                                                                       \
{                                                                                                                      \
    const tcpx_ncclNet_v##N##_t *n = TAB(N, t);                                                                        \
    REQUIRE(n, init);                                                                                                  \
    REQUIRE(n, devices);                                                                                               \
    REQUIRE(n, getProperties);                                                                                         \
    REQUIRE(n, listen);                                                                                                \
    REQUIRE(n, connect);                                                                                               \
    REQUIRE(n, accept);                                                                                                \
    REQUIRE(n, regMr);                                                                                                 \
    REQUIRE(n, deregMr);                                                                                               \
    REQUIRE(n, isend);                                                                                                 \
    REQUIRE(n, irecv);                                                                                                 \
    REQUIRE(n, test);                                                                                                  \
    REQUIRE(n, closeSend);                                                                                             \
    REQUIRE(n, closeRecv);                                                                                             \
    REQUIRE(n, closeListen);                                                                                           \
    REQUIRE(n, finalize);                                                                                              \
    return NULL;                                                                                                       \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)          \
{                                                                                                                      \
    tcpx_ncclNetCommConfig_v##N##_t config = {TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF};                                      \
    *ctx = NULL;                                                                                                       \
    return TAB(N, t)->init(ctx, comm_id, &config, log, NULL);                                                          \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_finalize(const void *t, void *ctx) { return TAB(N, t)->finalize(ctx); }                \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_devices(const void *t, int *ndev) { return TAB(N, t)->devices(ndev); }                 \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_props(const void *t, int dev, tcpx_plugin_props *out)                                  \
{                                                                                                                      \
    tcpx_ncclNetProperties_v##N##_t p = {0};                                                                           \
    tcpx_ncclResult_t rc = TAB(N, t)->getProperties(dev, &p);                                                          \
    if (rc) return rc;                                                                                                 \
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,                                  \
                               p.netDeviceType, p.netDeviceVersion, p.maxP2pBytes, p.pciPath};                         \
    return rc;                                                                                                         \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_listen(const void *t, void *ctx, int dev, void *handle, void **lc)                     \
{                                                                                                                      \
    return TAB(N, t)->listen(ctx, dev, handle, lc);                                                                    \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_connect(const void *t, void *ctx, int dev, void *handle, void **sc,                    \
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)                                               \
{                                                                                                                      \
    return TAB(N, t)->connect(ctx, dev, handle, sc, dh);                                                               \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)         \
{                                                                                                                      \
    return TAB(N, t)->accept(lc, rc, dh);                                                                              \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)        \
{                                                                                                                      \
    return TAB(N, t)->regMr(comm, data, size, type, mh);                                                               \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_dereg_mr(const void *t, void *comm, void *mh) { return TAB(N, t)->deregMr(comm, mh); } \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req) \
{                                                                                                                      \
    return TAB(N, t)->isend(sc, data, size, tag, mh, NULL, req);                                                       \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req) \
{                                                                                                                      \
    void *datas[1] = {data};                                                                                           \
    size_t sizes[1] = {size};                                                                                          \
    int tags[1] = {tag};                                                                                               \
    void *mhs[1] = {mh};                                                                                               \
    void *phandles[1] = {NULL};                                                                                        \
    return TAB(N, t)->irecv(rc, 1, datas, sizes, tags, mhs, phandles, req);                                            \
}                                                                                                                      \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_test(const void *t, void *req, int *done, int *size)                                   \
{                                                                                                                      \
    return TAB(N, t)->test(req, done, size);                                                                           \
}                                                                                                                      \
                                                                                                                       \
static int v##N##_has_consumed(const void *t) { return TAB(N, t)->irecvConsumed != NULL; }                             \
                                                                                                                       \
static tcpx_ncclResult_t v##N##_consumed(const void *t, void *rc, void *req)                                           \
{                                                                                                                      \
    return TAB(N, t)->irecvConsumed(rc, 1, req);                                                                       \
}                                                                                                                      \
static tcpx_ncclResult_t v##N##_close_send(const void *t, void *c) { return TAB(N, t)->closeSend(c); }                 \
static tcpx_ncclResult_t v##N##_close_recv(const void *t, void *c) { return TAB(N, t)->closeRecv(c); }                 \
static tcpx_ncclResult_t v##N##_close_listen(const void *t, void *c) { return TAB(N, t)->closeListen(c); }             \
                                                                                                                       \
const tcpx_plugin_shim tcpx_plugin_shim_v##N = {                                                                       \
    .version = N,                                                                                                      \
    .symbol = "ncclNetPlugin_v" #N,                                                                                    \
    .int_msg_sizes = 0,                                                                                                \
    .int_reg_sizes = 0,                                                                                                \
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,                                                                     \
    .name = v##N##_name,                                                                                               \
    .missing = v##N##_missing,                                                                                         \
    .init = v##N##_init,                                                                                               \
    .finalize = v##N##_finalize,                                                                                       \
    .devices = v##N##_devices,                                                                                         \
    .props = v##N##_props,                                                                                             \
    .listen = v##N##_listen,                                                                                           \
    .connect_send = v##N##_connect,                                                                                    \
    .accept = v##N##_accept,                                                                                           \
    .reg_mr = v##N##_reg_mr,                                                                                           \
    .dereg_mr = v##N##_dereg_mr,                                                                                       \
    .isend = v##N##_isend,                                                                                             \
    .irecv = v##N##_irecv,                                                                                             \
    .test = v##N##_test,                                                                                               \
    .has_irecv_consumed = v##N##_has_consumed,                                                                         \
    .irecv_consumed = v##N##_consumed,                                                                                 \
    .close_send = v##N##_close_send,                                                                                   \
    .close_recv = v##N##_close_recv,                                                                                   \
    .close_listen = v##N##_close_listen,                                                                               \
};

SHIM_V11_FAMILY(11)
SHIM_V11_FAMILY(12)

