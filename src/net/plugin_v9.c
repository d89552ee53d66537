/* plugin_v9.c - shims for ncclNet ABI v9 and v10.
 *
 * v9 moved message sizes to size_t and added virtual devices and maximum
 * transfer sizes to the properties. v10 added a profiler callback to init, a
 * comm config to connect and profiler handles to isend/irecv; we pass no
 * profiler (NULL), the default traffic class and NULL profiler handles.
 */
#include <stddef.h>

#include "net/plugin.h"

#define V9(t) ((const tcpx_ncclNet_v9_t *)(t))
#define V10(t) ((const tcpx_ncclNet_v10_t *)(t))

#define REQUIRE(tab, f) \
    if (!(tab)->f) return #f

/* ---- v9 ---- */

static const char *v9_name(const void *t) { return V9(t)->name; }

static const char *v9_missing(const void *t)
{
    const tcpx_ncclNet_v9_t *n = V9(t);
    REQUIRE(n, init);
    REQUIRE(n, devices);
    REQUIRE(n, getProperties);
    REQUIRE(n, listen);
    REQUIRE(n, connect);
    REQUIRE(n, accept);
    REQUIRE(n, regMr);
    REQUIRE(n, deregMr);
    REQUIRE(n, isend);
    REQUIRE(n, irecv);
    REQUIRE(n, test);
    REQUIRE(n, closeSend);
    REQUIRE(n, closeRecv);
    REQUIRE(n, closeListen);
    return NULL;
}

static tcpx_ncclResult_t v9_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    *ctx = NULL;
    return V9(t)->init(log);
}

static tcpx_ncclResult_t v9_devices(const void *t, int *ndev) { return V9(t)->devices(ndev); }

static tcpx_ncclResult_t v9_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v9_t p = {0};
    tcpx_ncclResult_t rc = V9(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, p.maxP2pBytes, p.pciPath};
    return rc;
}

static tcpx_ncclResult_t v9_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V9(t)->listen(dev, handle, lc);
}

static tcpx_ncclResult_t v9_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                    tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V9(t)->connect(dev, handle, sc, dh);
}

static tcpx_ncclResult_t v9_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V9(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v9_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V9(t)->regMr(comm, data, size, type, mh);
}

static tcpx_ncclResult_t v9_dereg_mr(const void *t, void *comm, void *mh) { return V9(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v9_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V9(t)->isend(sc, data, size, tag, mh, req);
}

static tcpx_ncclResult_t v9_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    size_t sizes[1] = {size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    return V9(t)->irecv(rc, 1, datas, sizes, tags, mhs, req);
}

static tcpx_ncclResult_t v9_test(const void *t, void *req, int *done, int *size)
{
    return V9(t)->test(req, done, size);
}

static int v9_has_consumed(const void *t) { return V9(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v9_consumed(const void *t, void *rc, void *req) { return V9(t)->irecvConsumed(rc, 1, req); }
static tcpx_ncclResult_t v9_close_send(const void *t, void *c) { return V9(t)->closeSend(c); }
static tcpx_ncclResult_t v9_close_recv(const void *t, void *c) { return V9(t)->closeRecv(c); }
static tcpx_ncclResult_t v9_close_listen(const void *t, void *c) { return V9(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v9 = {
    .version = 9,
    .symbol = "ncclNetPlugin_v9",
    .int_msg_sizes = 0,
    .int_reg_sizes = 0,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,
    .name = v9_name,
    .missing = v9_missing,
    .init = v9_init,
    .finalize = NULL,
    .devices = v9_devices,
    .props = v9_props,
    .listen = v9_listen,
    .connect_send = v9_connect,
    .accept = v9_accept,
    .reg_mr = v9_reg_mr,
    .dereg_mr = v9_dereg_mr,
    .isend = v9_isend,
    .irecv = v9_irecv,
    .test = v9_test,
    .has_irecv_consumed = v9_has_consumed,
    .irecv_consumed = v9_consumed,
    .close_send = v9_close_send,
    .close_recv = v9_close_recv,
    .close_listen = v9_close_listen,
};

/* ---- v10 ---- */

static const char *v10_name(const void *t) { return V10(t)->name; }

static const char *v10_missing(const void *t)
{
    const tcpx_ncclNet_v10_t *n = V10(t);
    REQUIRE(n, init);
    REQUIRE(n, devices);
    REQUIRE(n, getProperties);
    REQUIRE(n, listen);
    REQUIRE(n, connect);
    REQUIRE(n, accept);
    REQUIRE(n, regMr);
    REQUIRE(n, deregMr);
    REQUIRE(n, isend);
    REQUIRE(n, irecv);
    REQUIRE(n, test);
    REQUIRE(n, closeSend);
    REQUIRE(n, closeRecv);
    REQUIRE(n, closeListen);
    return NULL;
}

static tcpx_ncclResult_t v10_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    *ctx = NULL;
    return V10(t)->init(log, NULL);
}

static tcpx_ncclResult_t v10_devices(const void *t, int *ndev) { return V10(t)->devices(ndev); }

static tcpx_ncclResult_t v10_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v10_t p = {0};
    tcpx_ncclResult_t rc = V10(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, p.maxP2pBytes, p.pciPath};
    return rc;
}

static tcpx_ncclResult_t v10_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V10(t)->listen(dev, handle, lc);
}

static tcpx_ncclResult_t v10_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    /* A plugin may keep the pointer for the comm's lifetime: static storage. */
    static tcpx_ncclNetCommConfig_v10_t config = {TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF};
    return V10(t)->connect(dev, &config, handle, sc, dh);
}

static tcpx_ncclResult_t v10_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V10(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v10_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V10(t)->regMr(comm, data, size, type, mh);
}

static tcpx_ncclResult_t v10_dereg_mr(const void *t, void *comm, void *mh) { return V10(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v10_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V10(t)->isend(sc, data, size, tag, mh, NULL, req);
}

static tcpx_ncclResult_t v10_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    size_t sizes[1] = {size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    void *phandles[1] = {NULL};
    return V10(t)->irecv(rc, 1, datas, sizes, tags, mhs, phandles, req);
}

static tcpx_ncclResult_t v10_test(const void *t, void *req, int *done, int *size)
{
    return V10(t)->test(req, done, size);
}

static int v10_has_consumed(const void *t) { return V10(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v10_consumed(const void *t, void *rc, void *req)
{
    return V10(t)->irecvConsumed(rc, 1, req);
}
static tcpx_ncclResult_t v10_close_send(const void *t, void *c) { return V10(t)->closeSend(c); }
static tcpx_ncclResult_t v10_close_recv(const void *t, void *c) { return V10(t)->closeRecv(c); }
static tcpx_ncclResult_t v10_close_listen(const void *t, void *c) { return V10(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v10 = {
    .version = 10,
    .symbol = "ncclNetPlugin_v10",
    .int_msg_sizes = 0,
    .int_reg_sizes = 0,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,
    .name = v10_name,
    .missing = v10_missing,
    .init = v10_init,
    .finalize = NULL,
    .devices = v10_devices,
    .props = v10_props,
    .listen = v10_listen,
    .connect_send = v10_connect,
    .accept = v10_accept,
    .reg_mr = v10_reg_mr,
    .dereg_mr = v10_dereg_mr,
    .isend = v10_isend,
    .irecv = v10_irecv,
    .test = v10_test,
    .has_irecv_consumed = v10_has_consumed,
    .irecv_consumed = v10_consumed,
    .close_send = v10_close_send,
    .close_recv = v10_close_recv,
    .close_listen = v10_close_listen,
};
