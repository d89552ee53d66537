/* plugin_v7.c - shims for ncclNet ABI v7 (GPUDirect-TCPX) and v8.
 *
 * v7 and v8 differ in two places: v8's properties have regIsGlobal, and v8's
 * regMr takes a size_t. Both take int message sizes and tags.
 */
#include <stddef.h>

#include "net/plugin.h"

#define V7(t) ((const tcpx_ncclNet_v7_t *)(t))
#define V8(t) ((const tcpx_ncclNet_v8_t *)(t))

/* First NULL among the functions every net plugin must provide. */
#define REQUIRE(tab, f) \
    if (!(tab)->f) return #f

/* ---- v7 ---- */

static const char *v7_name(const void *t) { return V7(t)->name; }

static const char *v7_missing(const void *t)
{
    const tcpx_ncclNet_v7_t *n = V7(t);
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

static tcpx_ncclResult_t v7_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    *ctx = NULL;
    return V7(t)->init(log);
}

static tcpx_ncclResult_t v7_devices(const void *t, int *ndev) { return V7(t)->devices(ndev); }

static tcpx_ncclResult_t v7_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v7_t p = {0};
    tcpx_ncclResult_t rc = V7(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, 0, p.pciPath};
    return rc;
}

static tcpx_ncclResult_t v7_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V7(t)->listen(dev, handle, lc);
}

static tcpx_ncclResult_t v7_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                    tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V7(t)->connect(dev, handle, sc, dh);
}

static tcpx_ncclResult_t v7_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V7(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v7_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V7(t)->regMr(comm, data, (int)size, type, mh);
}

static tcpx_ncclResult_t v7_dereg_mr(const void *t, void *comm, void *mh) { return V7(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v7_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V7(t)->isend(sc, data, (int)size, tag, mh, req);
}

static tcpx_ncclResult_t v7_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    int sizes[1] = {(int)size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    return V7(t)->irecv(rc, 1, datas, sizes, tags, mhs, req);
}

static tcpx_ncclResult_t v7_test(const void *t, void *req, int *done, int *size)
{
    return V7(t)->test(req, done, size);
}

static int v7_has_consumed(const void *t) { return V7(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v7_consumed(const void *t, void *rc, void *req) { return V7(t)->irecvConsumed(rc, 1, req); }
static tcpx_ncclResult_t v7_close_send(const void *t, void *c) { return V7(t)->closeSend(c); }
static tcpx_ncclResult_t v7_close_recv(const void *t, void *c) { return V7(t)->closeRecv(c); }
static tcpx_ncclResult_t v7_close_listen(const void *t, void *c) { return V7(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v7 = {
    .version = 7,
    .symbol = "ncclNetPlugin_v7",
    .int_msg_sizes = 1,
    .int_reg_sizes = 1,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V7,
    .name = v7_name,
    .missing = v7_missing,
    .init = v7_init,
    .finalize = NULL,
    .devices = v7_devices,
    .props = v7_props,
    .listen = v7_listen,
    .connect_send = v7_connect,
    .accept = v7_accept,
    .reg_mr = v7_reg_mr,
    .dereg_mr = v7_dereg_mr,
    .isend = v7_isend,
    .irecv = v7_irecv,
    .test = v7_test,
    .has_irecv_consumed = v7_has_consumed,
    .irecv_consumed = v7_consumed,
    .close_send = v7_close_send,
    .close_recv = v7_close_recv,
    .close_listen = v7_close_listen,
};

/* ---- v8 ---- */

static const char *v8_name(const void *t) { return V8(t)->name; }

static const char *v8_missing(const void *t)
{
    const tcpx_ncclNet_v8_t *n = V8(t);
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

static tcpx_ncclResult_t v8_init(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log)
{
    *ctx = NULL;
    return V8(t)->init(log);
}

static tcpx_ncclResult_t v8_devices(const void *t, int *ndev) { return V8(t)->devices(ndev); }

static tcpx_ncclResult_t v8_props(const void *t, int dev, tcpx_plugin_props *out)
{
    tcpx_ncclNetProperties_v8_t p = {0};
    tcpx_ncclResult_t rc = V8(t)->getProperties(dev, &p);
    if (rc) return rc;
    *out = (tcpx_plugin_props){p.name, p.ptrSupport, p.speed, p.maxComms, p.maxRecvs,
                               p.netDeviceType, p.netDeviceVersion, 0, p.pciPath};
    return rc;
}

static tcpx_ncclResult_t v8_listen(const void *t, void *ctx, int dev, void *handle, void **lc)
{
    return V8(t)->listen(dev, handle, lc);
}

static tcpx_ncclResult_t v8_connect(const void *t, void *ctx, int dev, void *handle, void **sc,
                                    tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V8(t)->connect(dev, handle, sc, dh);
}

static tcpx_ncclResult_t v8_accept(const void *t, void *lc, void **rc, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return V8(t)->accept(lc, rc, dh);
}

static tcpx_ncclResult_t v8_reg_mr(const void *t, void *comm, void *data, size_t size, int type, void **mh)
{
    return V8(t)->regMr(comm, data, size, type, mh);
}

static tcpx_ncclResult_t v8_dereg_mr(const void *t, void *comm, void *mh) { return V8(t)->deregMr(comm, mh); }

static tcpx_ncclResult_t v8_isend(const void *t, void *sc, void *data, size_t size, int tag, void *mh, void **req)
{
    return V8(t)->isend(sc, data, (int)size, tag, mh, req);
}

static tcpx_ncclResult_t v8_irecv(const void *t, void *rc, void *data, size_t size, int tag, void *mh, void **req)
{
    void *datas[1] = {data};
    int sizes[1] = {(int)size};
    int tags[1] = {tag};
    void *mhs[1] = {mh};
    return V8(t)->irecv(rc, 1, datas, sizes, tags, mhs, req);
}

static tcpx_ncclResult_t v8_test(const void *t, void *req, int *done, int *size)
{
    return V8(t)->test(req, done, size);
}

static int v8_has_consumed(const void *t) { return V8(t)->irecvConsumed != NULL; }

static tcpx_ncclResult_t v8_consumed(const void *t, void *rc, void *req) { return V8(t)->irecvConsumed(rc, 1, req); }
static tcpx_ncclResult_t v8_close_send(const void *t, void *c) { return V8(t)->closeSend(c); }
static tcpx_ncclResult_t v8_close_recv(const void *t, void *c) { return V8(t)->closeRecv(c); }
static tcpx_ncclResult_t v8_close_listen(const void *t, void *c) { return V8(t)->closeListen(c); }

const tcpx_plugin_shim tcpx_plugin_shim_v8 = {
    .version = 8,
    .symbol = "ncclNetPlugin_v8",
    .int_msg_sizes = 1,
    .int_reg_sizes = 0,
    .max_requests = TCPX_NCCL_NET_MAX_REQUESTS_V8,
    .name = v8_name,
    .missing = v8_missing,
    .init = v8_init,
    .finalize = NULL,
    .devices = v8_devices,
    .props = v8_props,
    .listen = v8_listen,
    .connect_send = v8_connect,
    .accept = v8_accept,
    .reg_mr = v8_reg_mr,
    .dereg_mr = v8_dereg_mr,
    .isend = v8_isend,
    .irecv = v8_irecv,
    .test = v8_test,
    .has_irecv_consumed = v8_has_consumed,
    .irecv_consumed = v8_consumed,
    .close_send = v8_close_send,
    .close_recv = v8_close_recv,
    .close_listen = v8_close_listen,
};
