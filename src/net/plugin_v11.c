/* plugin_v11.c - shims for ncclNet ABI v11 and v12.
 *
 * Since v11, init is called once per user of the plugin (NCCL: once per
 * communicator) and returns a context that listen and connect take and
 * finalize releases; the comm config moved from connect to init. v12 only
 * changed the properties (8 devices per virtual NIC, rail and plane ids).
 */
#include <stddef.h>

#include "net/plugin.h"

#define V11(t) ((const tcpx_ncclNet_v11_t *)(t))
#define V12(t) ((const tcpx_ncclNet_v12_t *)(t))

#define REQUIRE(tab, f) \
    if (!(tab)->f) return #f

/* ---- v11 ---- */

static const char *v11_name(const void *t) { return V11(t)->name; }

static const char *v11_missing(const void *t)
{
    const tcpx_ncclNet_v11_t *n = V11(t);
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
    REQUIRE(n, finalize);
    return NULL;
}

static tcpx_ncclResult_t v11_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    tcpx_ncclNetCommConfig_v11_t config = {TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF};
    *ctx = NULL;
    return V11(t)->init(ctx, comm_id, &config, log, NULL);
}

static tcpx_ncclResult_t v11_finalize(const void *t, void *ctx) { return V11(t)->finalize(ctx); }

static tcpx_ncclResult_t v11_devices(const void *t, int *ndev) { return V11(t)->devices(ndev); }

static tcpx_ncclResult_t v11_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v11_t p = {0};
    tcpx_ncclResult_t rc = V11(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, p.maxP2pBytes};
    return rc;
}

static tcpx_ncclResult_t v11_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V11(t)->listen(ctx, dev, handle, lc);
}

static tcpx_ncclResult_t v11_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V11(t)->connect(ctx, dev, handle, sc, dh);
}

static tcpx_ncclResult_t v11_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V11(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v11_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V11(t)->regMr(comm, data, size, type, mh);
}

static tcpx_ncclResult_t v11_dereg_mr(const void *t, void *comm, void *mh) { return V11(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v11_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V11(t)->isend(sc, data, size, tag, mh, NULL, req);
}

static tcpx_ncclResult_t v11_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    size_t sizes[1] = {size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    void *phandles[1] = {NULL};
    return V11(t)->irecv(rc, 1, datas, sizes, tags, mhs, phandles, req);
}

static tcpx_ncclResult_t v11_test(const void *t, void *req, int *done, int *size)
{
    return V11(t)->test(req, done, size);
}

static int v11_has_consumed(const void *t) { return V11(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v11_consumed(const void *t, void *rc, void *req)
{
    return V11(t)->irecvConsumed(rc, 1, req);
}
static tcpx_ncclResult_t v11_close_send(const void *t, void *c) { return V11(t)->closeSend(c); }
static tcpx_ncclResult_t v11_close_recv(const void *t, void *c) { return V11(t)->closeRecv(c); }
static tcpx_ncclResult_t v11_close_listen(const void *t, void *c) { return V11(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v11 = {
    .version = 11,
    .symbol = "ncclNetPlugin_v11",
    .int_msg_sizes = 0,
    .int_reg_sizes = 0,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,
    .name = v11_name,
    .missing = v11_missing,
    .init = v11_init,
    .finalize = v11_finalize,
    .devices = v11_devices,
    .props = v11_props,
    .listen = v11_listen,
    .connect = v11_connect,
    .accept = v11_accept,
    .reg_mr = v11_reg_mr,
    .dereg_mr = v11_dereg_mr,
    .isend = v11_isend,
    .irecv = v11_irecv,
    .test = v11_test,
    .has_irecv_consumed = v11_has_consumed,
    .irecv_consumed = v11_consumed,
    .close_send = v11_close_send,
    .close_recv = v11_close_recv,
    .close_listen = v11_close_listen,
};

/* ---- v12 ---- */

static const char *v12_name(const void *t) { return V12(t)->name; }

static const char *v12_missing(const void *t)
{
    const tcpx_ncclNet_v12_t *n = V12(t);
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
    REQUIRE(n, finalize);
    return NULL;
}

static tcpx_ncclResult_t v12_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    tcpx_ncclNetCommConfig_v12_t config = {TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF};
    *ctx = NULL;
    return V12(t)->init(ctx, comm_id, &config, log, NULL);
}

static tcpx_ncclResult_t v12_finalize(const void *t, void *ctx) { return V12(t)->finalize(ctx); }

static tcpx_ncclResult_t v12_devices(const void *t, int *ndev) { return V12(t)->devices(ndev); }

static tcpx_ncclResult_t v12_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v12_t p = {0};
    tcpx_ncclResult_t rc = V12(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, p.maxP2pBytes};
    return rc;
}

static tcpx_ncclResult_t v12_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V12(t)->listen(ctx, dev, handle, lc);
}

static tcpx_ncclResult_t v12_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V12(t)->connect(ctx, dev, handle, sc, dh);
}

static tcpx_ncclResult_t v12_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V12(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v12_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V12(t)->regMr(comm, data, size, type, mh);
}

static tcpx_ncclResult_t v12_dereg_mr(const void *t, void *comm, void *mh) { return V12(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v12_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V12(t)->isend(sc, data, size, tag, mh, NULL, req);
}

static tcpx_ncclResult_t v12_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    size_t sizes[1] = {size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    void *phandles[1] = {NULL};
    return V12(t)->irecv(rc, 1, datas, sizes, tags, mhs, phandles, req);
}

static tcpx_ncclResult_t v12_test(const void *t, void *req, int *done, int *size)
{
    return V12(t)->test(req, done, size);
}

static int v12_has_consumed(const void *t) { return V12(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v12_consumed(const void *t, void *rc, void *req)
{
    return V12(t)->irecvConsumed(rc, 1, req);
}
static tcpx_ncclResult_t v12_close_send(const void *t, void *c) { return V12(t)->closeSend(c); }
static tcpx_ncclResult_t v12_close_recv(const void *t, void *c) { return V12(t)->closeRecv(c); }
static tcpx_ncclResult_t v12_close_listen(const void *t, void *c) { return V12(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v12 = {
    .version = 12,
    .symbol = "ncclNetPlugin_v12",
    .int_msg_sizes = 0,
    .int_reg_sizes = 0,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,
    .name = v12_name,
    .missing = v12_missing,
    .init = v12_init,
    .finalize = v12_finalize,
    .devices = v12_devices,
    .props = v12_props,
    .listen = v12_listen,
    .connect = v12_connect,
    .accept = v12_accept,
    .reg_mr = v12_reg_mr,
    .dereg_mr = v12_dereg_mr,
    .isend = v12_isend,
    .irecv = v12_irecv,
    .test = v12_test,
    .has_irecv_consumed = v12_has_consumed,
    .irecv_consumed = v12_consumed,
    .close_send = v12_close_send,
    .close_recv = v12_close_recv,
    .close_listen = v12_close_listen,
};
