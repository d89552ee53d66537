/*
 * nccl_net_abi.h - our declarations of the ncclNet plugin ABI, versions 7..12.
 *
 * An ncclNet plugin is a shared library exporting a data symbol
 * `ncclNetPlugin_vN` (a table of function pointers) for each ABI version N it
 * implements. The layouts below are the published ones (NVIDIA/nccl,
 * plugins/net/example/nccl/net_vN.h, formerly ext-net/example/nccl/): field
 * order and C types must match exactly; the names are ours. Each version has
 * its own structs; a table of one version is never read through another's.
 *
 * Enums of the ABI (ncclResult_t, ncclDebugLogLevel, ncclNetDeviceType) are
 * int-sized in C and declared here as int.
 */
#ifndef TCPX_NCCL_NET_ABI_H
#define TCPX_NCCL_NET_ABI_H

#include <stddef.h>
#include <stdint.h>

/* ---- shared by every version ---- */

/* ncclResult_t */
enum {
    TCPX_NCCL_SUCCESS = 0,
    TCPX_NCCL_UNHANDLED_CUDA_ERROR = 1,
    TCPX_NCCL_SYSTEM_ERROR = 2,
    TCPX_NCCL_INTERNAL_ERROR = 3,
    TCPX_NCCL_INVALID_ARGUMENT = 4,
    TCPX_NCCL_INVALID_USAGE = 5,
    TCPX_NCCL_REMOTE_ERROR = 6,
};
typedef int tcpx_ncclResult_t;

/* ncclDebugLogLevel */
enum {
    TCPX_NCCL_LOG_NONE = 0,
    TCPX_NCCL_LOG_VERSION = 1,
    TCPX_NCCL_LOG_WARN = 2,
    TCPX_NCCL_LOG_INFO = 3,
    TCPX_NCCL_LOG_ABORT = 4,
    TCPX_NCCL_LOG_TRACE = 5,
};
#define TCPX_NCCL_LOGSYS_INIT 1ul  /* ncclDebugLogSubSys NCCL_INIT */
#define TCPX_NCCL_LOGSYS_NET 16ul  /* NCCL_NET */

/* ncclDebugLogger_t: level, subsystem flags, file, line, printf format. */
typedef void (*tcpx_ncclDebugLogger_t)(int level, unsigned long flags, const char *file, int line,
                                       const char *fmt, ...);
/* ncclProfilerCallback_t (v10+): we always pass NULL. */
typedef tcpx_ncclResult_t (*tcpx_ncclProfilerCallback_t)(void **event, int type, void *phandle,
                                                         int64_t plugin_id, void *ext_data);

#define TCPX_NCCL_NET_HANDLE_MAXSIZE 128
#define TCPX_NCCL_PTR_HOST 0x1
#define TCPX_NCCL_PTR_CUDA 0x2
#define TCPX_NCCL_PTR_DMABUF 0x4
/* NCCL_NET_MAX_REQUESTS: requests a comm must accept in flight. It was 8 when
 * v7 was the newest ABI (NCCL 2.19) and 32 since v8 (NCCL 2.20+). */
#define TCPX_NCCL_NET_MAX_REQUESTS_V7 8
#define TCPX_NCCL_NET_MAX_REQUESTS_V8 32
/* irecv's *request on input may hold this (v9+): completion is optional. */
#define TCPX_NCCL_NET_OPTIONAL_RECV_COMPLETION ((void *)(uintptr_t)0x1)
#define TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF (-1)
#define TCPX_NCCL_NET_ID_UNDEF (-1)

/* ncclNetDeviceType */
enum {
    TCPX_NCCL_NET_DEVICE_HOST = 0,
    TCPX_NCCL_NET_DEVICE_UNPACK = 1,
};
#define TCPX_NCCL_NET_DEVICE_INVALID_VERSION 0x0
#define TCPX_NCCL_NET_DEVICE_UNPACK_VERSION 0x7

/* ncclNetDeviceHandle_v7_t .. _v12_t (one layout). The caller owns the
 * struct; the plugin fills it in accept when asked for offload. */
typedef struct tcpx_ncclNetDeviceHandle_v7_t {
    int netDeviceType;
    int netDeviceVersion;
    void *handle;                  /* UNPACK: struct unpackNetDeviceHandle * */
    size_t size;
    int needsProxyProgress;
} tcpx_ncclNetDeviceHandle_v7_t;

/* ---- v7 (NCCL 2.19; GPUDirect-TCPX) ---- */

typedef struct tcpx_ncclNetProperties_v7_t {
    char *name;
    char *pciPath;
    uint64_t guid;
    int ptrSupport;
    int speed;                     /* Mb/s */
    int port;
    float latency;
    int maxComms;
    int maxRecvs;
    int netDeviceType;
    int netDeviceVersion;
} tcpx_ncclNetProperties_v7_t;

typedef struct tcpx_ncclNet_v7_t {
    const char *name;
    tcpx_ncclResult_t (*init)(tcpx_ncclDebugLogger_t log);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v7_t *props);
    tcpx_ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(int dev, void *handle, void **sendComm, tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, int size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, int size, int tag, void *mhandle, void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, int *sizes, int *tags, void **mhandles,
                               void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
} tcpx_ncclNet_v7_t;

/* ---- v8 (NCCL 2.20): regIsGlobal, regMr takes size_t ---- */

typedef struct tcpx_ncclNetProperties_v8_t {
    char *name;
    char *pciPath;
    uint64_t guid;
    int ptrSupport;
    int regIsGlobal;
    int speed;
    int port;
    float latency;
    int maxComms;
    int maxRecvs;
    int netDeviceType;
    int netDeviceVersion;
} tcpx_ncclNetProperties_v8_t;

typedef struct tcpx_ncclNet_v8_t {
    const char *name;
    tcpx_ncclResult_t (*init)(tcpx_ncclDebugLogger_t log);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v8_t *props);
    tcpx_ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(int dev, void *handle, void **sendComm, tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, int size, int tag, void *mhandle, void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, int *sizes, int *tags, void **mhandles,
                               void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
} tcpx_ncclNet_v8_t;

/* ---- v9 (NCCL 2.24): size_t message sizes, virtual devices, max sizes ---- */

#define TCPX_NCCL_NET_MAX_DEVS_PER_NIC_V9 4  /* also v10 and v11 */

typedef struct tcpx_ncclNetVDeviceProps_v9_t {
    int ndevs;
    int devs[TCPX_NCCL_NET_MAX_DEVS_PER_NIC_V9];
} tcpx_ncclNetVDeviceProps_v9_t;

typedef struct tcpx_ncclNetProperties_v9_t {
    char *name;
    char *pciPath;
    uint64_t guid;
    int ptrSupport;
    int regIsGlobal;
    int forceFlush;
    int speed;
    int port;
    float latency;
    int maxComms;
    int maxRecvs;
    int netDeviceType;
    int netDeviceVersion;
    tcpx_ncclNetVDeviceProps_v9_t vProps;
    size_t maxP2pBytes;
    size_t maxCollBytes;
} tcpx_ncclNetProperties_v9_t;

typedef struct tcpx_ncclNet_v9_t {
    const char *name;
    tcpx_ncclResult_t (*init)(tcpx_ncclDebugLogger_t log);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v9_t *props);
    tcpx_ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(int dev, void *handle, void **sendComm, tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle, void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                               void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
    tcpx_ncclResult_t (*makeVDevice)(int *d, tcpx_ncclNetVDeviceProps_v9_t *props);
} tcpx_ncclNet_v9_t;

/* ---- v10 (NCCL 2.26): profiler callback, per-connect config, phandles ---- */

typedef tcpx_ncclNetVDeviceProps_v9_t tcpx_ncclNetVDeviceProps_v10_t;
typedef tcpx_ncclNetProperties_v9_t tcpx_ncclNetProperties_v10_t;  /* same fields as v9 */

typedef struct tcpx_ncclNetCommConfig_v10_t {
    int trafficClass;              /* TCPX_NCCL_NET_TRAFFIC_CLASS_UNDEF = plugin default */
} tcpx_ncclNetCommConfig_v10_t;

typedef struct tcpx_ncclNet_v10_t {
    const char *name;
    tcpx_ncclResult_t (*init)(tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v10_t *props);
    tcpx_ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(int dev, tcpx_ncclNetCommConfig_v10_t *config, void *handle, void **sendComm,
                                 tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle, void *phandle,
                               void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                               void **phandles, void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
    tcpx_ncclResult_t (*makeVDevice)(int *d, tcpx_ncclNetVDeviceProps_v10_t *props);
} tcpx_ncclNet_v10_t;

/* ---- v11 (NCCL 2.28): per-communicator init context, finalize ---- */

typedef tcpx_ncclNetVDeviceProps_v9_t tcpx_ncclNetVDeviceProps_v11_t;
typedef tcpx_ncclNetCommConfig_v10_t tcpx_ncclNetCommConfig_v11_t;

typedef struct tcpx_ncclNetProperties_v11_t {
    char *name;
    char *pciPath;
    uint64_t guid;
    int ptrSupport;
    int regIsGlobal;
    int forceFlush;
    int speed;
    int port;
    float latency;
    int maxComms;
    int maxRecvs;
    int netDeviceType;
    int netDeviceVersion;
    tcpx_ncclNetVDeviceProps_v11_t vProps;
    size_t maxP2pBytes;
    size_t maxCollBytes;
    int maxMultiRequestSize;
} tcpx_ncclNetProperties_v11_t;

typedef struct tcpx_ncclNetCommAttr_v11_t {
    int32_t maxConcurrentPeers;
    int32_t minConcurrentPeers;
    int32_t maxFlowsPerPeer;
    int32_t minFlowsPerPeer;
} tcpx_ncclNetCommAttr_v11_t;

typedef struct tcpx_ncclNetAttr_v11_t {
    tcpx_ncclNetCommAttr_v11_t sendCommAttr;
    tcpx_ncclNetCommAttr_v11_t recvCommAttr;
    uint32_t op;
    uint32_t algo;
    uint32_t proto;
} tcpx_ncclNetAttr_v11_t;

typedef struct tcpx_ncclNet_v11_t {
    const char *name;
    tcpx_ncclResult_t (*init)(void **ctx, uint64_t commId, tcpx_ncclNetCommConfig_v11_t *config,
                              tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v11_t *props);
    tcpx_ncclResult_t (*listen)(void *ctx, int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(void *ctx, int dev, void *handle, void **sendComm,
                                 tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle, void *phandle,
                               void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                               void **phandles, void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
    tcpx_ncclResult_t (*makeVDevice)(int *d, tcpx_ncclNetVDeviceProps_v11_t *props);
    tcpx_ncclResult_t (*finalize)(void *ctx);
    tcpx_ncclResult_t (*setNetAttr)(void *ctx, tcpx_ncclNetAttr_v11_t *attr);
} tcpx_ncclNet_v11_t;

/* ---- v12 (NCCL 2.30): 8 devices per virtual NIC, rail and plane ids ---- */

#define TCPX_NCCL_NET_MAX_DEVS_PER_NIC_V12 8

typedef struct tcpx_ncclNetVDeviceProps_v12_t {
    int ndevs;
    int devs[TCPX_NCCL_NET_MAX_DEVS_PER_NIC_V12];
} tcpx_ncclNetVDeviceProps_v12_t;

typedef tcpx_ncclNetCommConfig_v10_t tcpx_ncclNetCommConfig_v12_t;
typedef tcpx_ncclNetAttr_v11_t tcpx_ncclNetAttr_v12_t;  /* same fields */

typedef struct tcpx_ncclNetProperties_v12_t {
    char *name;
    char *pciPath;
    uint64_t guid;
    int ptrSupport;
    int regIsGlobal;
    int forceFlush;
    int speed;
    int port;
    float latency;
    int maxComms;
    int maxRecvs;
    int netDeviceType;
    int netDeviceVersion;
    tcpx_ncclNetVDeviceProps_v12_t vProps;
    size_t maxP2pBytes;
    size_t maxCollBytes;
    int maxMultiRequestSize;
    int16_t railId;
    int16_t planeId;
} tcpx_ncclNetProperties_v12_t;

typedef struct tcpx_ncclNet_v12_t {
    const char *name;
    tcpx_ncclResult_t (*init)(void **ctx, uint64_t commId, tcpx_ncclNetCommConfig_v12_t *config,
                              tcpx_ncclDebugLogger_t log, tcpx_ncclProfilerCallback_t prof);
    tcpx_ncclResult_t (*devices)(int *ndev);
    tcpx_ncclResult_t (*getProperties)(int dev, tcpx_ncclNetProperties_v12_t *props);
    tcpx_ncclResult_t (*listen)(void *ctx, int dev, void *handle, void **listenComm);
    tcpx_ncclResult_t (*connect)(void *ctx, int dev, void *handle, void **sendComm,
                                 tcpx_ncclNetDeviceHandle_v7_t **sendDevComm);
    tcpx_ncclResult_t (*accept)(void *listenComm, void **recvComm, tcpx_ncclNetDeviceHandle_v7_t **recvDevComm);
    tcpx_ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                     void **mhandle);
    tcpx_ncclResult_t (*deregMr)(void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle, void *phandle,
                               void **request);
    tcpx_ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags, void **mhandles,
                               void **phandles, void **request);
    tcpx_ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles, void **request);
    tcpx_ncclResult_t (*test)(void *request, int *done, int *sizes);
    tcpx_ncclResult_t (*closeSend)(void *sendComm);
    tcpx_ncclResult_t (*closeRecv)(void *recvComm);
    tcpx_ncclResult_t (*closeListen)(void *listenComm);
    tcpx_ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
    tcpx_ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
    tcpx_ncclResult_t (*makeVDevice)(int *d, tcpx_ncclNetVDeviceProps_v12_t *props);
    tcpx_ncclResult_t (*finalize)(void *ctx);
    tcpx_ncclResult_t (*setNetAttr)(void *ctx, tcpx_ncclNetAttr_v12_t *attr);
} tcpx_ncclNet_v12_t;

#endif /* TCPX_NCCL_NET_ABI_H */
