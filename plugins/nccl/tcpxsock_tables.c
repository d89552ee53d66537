/* tcpxsock_tables.c - the exported ncclNetPlugin_v7 .. _v12 tables.
 *
 * Each ABI version gets its own table of its own types; what differs between
 * versions (properties, int vs size_t sizes, init/connect arguments) has a
 * small wrapper here, the rest is tcpxsock.c. NCCL uses the newest table it
 * knows: 2.19 takes v7, 2.20-2.23 v8, 2.24-2.25 v9, 2.26-2.27 v10, 2.28-2.29
 * v11, 2.30+ v12.
 */
#include <stddef.h>

#include "tcpxsock.h"

#define EXPORT __attribute__((visibility("default")))

/* Testing aid: -DTCPXSOCK_MAX_ABI=N builds a library whose newest table is
 * v<N>, so that a new NCCL can be made to drive an older table. */
#ifndef TCPXSOCK_MAX_ABI
#define TCPXSOCK_MAX_ABI 12
#endif

/* ---- properties ---- */

#define FILL_COMMON(out, p, dev)                              \
    do {                                                      \
        (out)->name = (p).name;                               \
        (out)->pciPath = (p).pci_path;                        \
        (out)->guid = (uint64_t)(dev);                        \
        (out)->ptrSupport = TCPX_NCCL_PTR_HOST;               \
        (out)->speed = (p).speed;                             \
        (out)->port = 0;                                      \
        (out)->latency = 0;                                   \
        (out)->maxComms = (p).max_comms;                      \
        (out)->maxRecvs = (p).max_recvs;                      \
        (out)->netDeviceType = TCPX_NCCL_NET_DEVICE_HOST;     \
        (out)->netDeviceVersion = TCPX_NCCL_NET_DEVICE_INVALID_VERSION; \
    } while (0)

static tcpx_ncclResult_t props_v7(int dev, tcpx_ncclNetProperties_v7_t *out)
{
    tcpxsock_props p;
    tcpx_ncclResult_t rc = tcpxsock_props_get(dev, &p);
    if (rc) return rc;
    FILL_COMMON(out, p, dev);
    return rc;
}

static tcpx_ncclResult_t props_v8(int dev, tcpx_ncclNetProperties_v8_t *out)
{
    tcpxsock_props p;
    tcpx_ncclResult_t rc = tcpxsock_props_get(dev, &p);
    if (rc) return rc;
    FILL_COMMON(out, p, dev);
    out->regIsGlobal = 0;
    return rc;
}

static tcpx_ncclResult_t props_v9(int dev, tcpx_ncclNetProperties_v9_t *out)
{
    tcpxsock_props p;
    tcpx_ncclResult_t rc = tcpxsock_props_get(dev, &p);
    if (rc) return rc;
    FILL_COMMON(out, p, dev);
    out->regIsGlobal = 0;
    out->forceFlush = 0;
    out->vProps.ndevs = 1;
    out->vProps.devs[0] = dev;
    out->maxP2pBytes = TCPXSOCK_MAX_MESSAGE;
    out->maxCollBytes = TCPXSOCK_MAX_MESSAGE;
    return rc;
}

static tcpx_ncclResult_t props_v11(int dev, tcpx_ncclNetProperties_v11_t *out)
{
    tcpxsock_props p;
    tcpx_ncclResult_t rc = tcpxsock_props_get(dev, &p);
    if (rc) return rc;
    FILL_COMMON(out, p, dev);
    out->regIsGlobal = 0;
    out->forceFlush = 0;
    out->vProps.ndevs = 1;
    out->vProps.devs[0] = dev;
    out->maxP2pBytes = TCPXSOCK_MAX_MESSAGE;
    out->maxCollBytes = TCPXSOCK_MAX_MESSAGE;
    out->maxMultiRequestSize = 1;
    return rc;
}

static tcpx_ncclResult_t props_v12(int dev, tcpx_ncclNetProperties_v12_t *out)
{
    tcpxsock_props p;
    tcpx_ncclResult_t rc = tcpxsock_props_get(dev, &p);
    if (rc) return rc;
    FILL_COMMON(out, p, dev);
    out->regIsGlobal = 0;
    out->forceFlush = 0;
    out->vProps.ndevs = 1;
    out->vProps.devs[0] = dev;
    out->maxP2pBytes = TCPXSOCK_MAX_MESSAGE;
    out->maxCollBytes = TCPXSOCK_MAX_MESSAGE;
    out->maxMultiRequestSize = 1;
    out->railId = TCPX_NCCL_NET_ID_UNDEF;
    out->planeId = TCPX_NCCL_NET_ID_UNDEF;
    return rc;
}

/* ---- init, connect, accept (device handles: never offloaded) ---- */

static tcpx_ncclResult_t init_v10(tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof)
{
    return tcpxsock_init(log);
}

static tcpx_ncclResult_t init_v11(void **ctx, uint64_t comm_id, tcpx_ncclNetCommConfig_v11_t *config,
                                  tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof)
{
    static int dummy;
    if (ctx) *ctx = &dummy; /* one transport for every communicator */
    return tcpxsock_init(log);
}

static tcpx_ncclResult_t init_v12(void **ctx, uint64_t comm_id, tcpx_ncclNetCommConfig_v12_t *config,
                                  tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof)
{
    return init_v11(ctx, comm_id, config, log, prof);
}

static tcpx_ncclResult_t connect_v7(int dev, void *handle, void **send_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return tcpxsock_connect(dev, handle, send_comm);
}

static tcpx_ncclResult_t connect_v10(int dev, tcpx_ncclNetCommConfig_v10_t *config, void *handle, void **send_comm,
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return tcpxsock_connect(dev, handle, send_comm);
}

static tcpx_ncclResult_t connect_v11(void *ctx, int dev, void *handle, void **send_comm,
                                     tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return tcpxsock_connect(dev, handle, send_comm);
}

static tcpx_ncclResult_t listen_v11(void *ctx, int dev, void *handle, void **listen_comm)
{
    return tcpxsock_listen(dev, handle, listen_comm);
}

static tcpx_ncclResult_t accept_v7(void *listen_comm, void **recv_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    return tcpxsock_accept(listen_comm, recv_comm);
}

/* ---- int-sized messages (v7, v8) ---- */

static tcpx_ncclResult_t reg_mr_v7(void *comm, void *data, int size, int type, void **mhandle)
{
    return tcpxsock_reg_mr(comm, data, size < 0 ? 0 : (size_t)size, type, mhandle);
}

static tcpx_ncclResult_t isend_v7(void *send_comm, void *data, int size, int tag, void *mhandle, void **request)
{
    if (size < 0) return TCPX_NCCL_INVALID_ARGUMENT;
    return tcpxsock_isend(send_comm, data, (size_t)size, tag, mhandle, request);
}

static tcpx_ncclResult_t irecv_v7(void *recv_comm, int n, void **data, int *sizes, int *tags, void **mhandles,
                                  void **request)
{
    if (n != 1 || !sizes || sizes[0] < 0) {
        if (request) *request = NULL;
        tcpxsock_log(TCPX_NCCL_LOG_WARN, "irecv: %d grouped receives (maxRecvs is 1)", n);
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    size_t size = (size_t)sizes[0];
    return tcpxsock_irecv(recv_comm, 1, data, &size, mhandles, request);
}

/* ---- size_t messages (v9+) ---- */

static tcpx_ncclResult_t irecv_v9(void *recv_comm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                                  void **request)
{
    return tcpxsock_irecv(recv_comm, n, data, sizes, mhandles, request);
}

static tcpx_ncclResult_t isend_v10(void *send_comm, void *data, size_t size, int tag, void *mhandle, void *phandle,
                                   void **request)
{
    return tcpxsock_isend(send_comm, data, size, tag, mhandle, request);
}

static tcpx_ncclResult_t irecv_v10(void *recv_comm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                                   void **phandles, void **request)
{
    return tcpxsock_irecv(recv_comm, n, data, sizes, mhandles, request);
}

/* ---- the tables ---- */

EXPORT const tcpx_ncclNet_v7_t ncclNetPlugin_v7 = {
    .name = TCPXSOCK_NAME, .init = tcpxsock_init, .devices = tcpxsock_devices, .getProperties = props_v7,
    .listen = tcpxsock_listen, .connect = connect_v7, .accept = accept_v7, .regMr = reg_mr_v7,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = isend_v7, .irecv = irecv_v7,
    .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL,
};

EXPORT const tcpx_ncclNet_v8_t ncclNetPlugin_v8 = {
    .name = TCPXSOCK_NAME, .init = tcpxsock_init, .devices = tcpxsock_devices, .getProperties = props_v8,
    .listen = tcpxsock_listen, .connect = connect_v7, .accept = accept_v7, .regMr = tcpxsock_reg_mr,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = isend_v7, .irecv = irecv_v7,
    .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL,
};

#if TCPXSOCK_MAX_ABI >= 9
EXPORT const tcpx_ncclNet_v9_t ncclNetPlugin_v9 = {
    .name = TCPXSOCK_NAME, .init = tcpxsock_init, .devices = tcpxsock_devices, .getProperties = props_v9,
    .listen = tcpxsock_listen, .connect = connect_v7, .accept = accept_v7, .regMr = tcpxsock_reg_mr,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = tcpxsock_isend,
    .irecv = irecv_v9, .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL, .makeVDevice = NULL,
};
#endif

#if TCPXSOCK_MAX_ABI >= 10
EXPORT const tcpx_ncclNet_v10_t ncclNetPlugin_v10 = {
    .name = TCPXSOCK_NAME, .init = init_v10, .devices = tcpxsock_devices, .getProperties = props_v9,
    .listen = tcpxsock_listen, .connect = connect_v10, .accept = accept_v7, .regMr = tcpxsock_reg_mr,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = isend_v10,
    .irecv = irecv_v10, .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL, .makeVDevice = NULL,
};
#endif

#if TCPXSOCK_MAX_ABI >= 11
EXPORT const tcpx_ncclNet_v11_t ncclNetPlugin_v11 = {
    .name = TCPXSOCK_NAME, .init = init_v11, .devices = tcpxsock_devices, .getProperties = props_v11,
    .listen = listen_v11, .connect = connect_v11, .accept = accept_v7, .regMr = tcpxsock_reg_mr,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = isend_v10,
    .irecv = irecv_v10, .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL, .makeVDevice = NULL, .finalize = tcpxsock_finalize, .setNetAttr = NULL,
};
#endif

#if TCPXSOCK_MAX_ABI >= 12
EXPORT const tcpx_ncclNet_v12_t ncclNetPlugin_v12 = {
    .name = TCPXSOCK_NAME, .init = init_v12, .devices = tcpxsock_devices, .getProperties = props_v12,
    .listen = listen_v11, .connect = connect_v11, .accept = accept_v7, .regMr = tcpxsock_reg_mr,
    .regMrDmaBuf = tcpxsock_reg_mr_dmabuf, .deregMr = tcpxsock_dereg_mr, .isend = isend_v10,
    .irecv = irecv_v10, .iflush = tcpxsock_iflush, .test = tcpxsock_test, .closeSend = tcpxsock_close_send,
    .closeRecv = tcpxsock_close_recv, .closeListen = tcpxsock_close_listen, .getDeviceMr = NULL,
    .irecvConsumed = NULL, .makeVDevice = NULL, .finalize = tcpxsock_finalize, .setNetAttr = NULL,
};
#endif
