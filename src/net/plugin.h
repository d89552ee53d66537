/*
 * plugin.h - external ncclNet plugins as a tcpx_net transport.
 *
 * tcpx_net_plugin_create() dlopens an ncclNet plugin (GPUDirect-TCPX, or any
 * other `libnccl-net-*.so`), picks the newest ncclNetPlugin_vN table it
 * exports among the versions we support (7..12, nccl_net_abi.h), initializes
 * it and adapts it to net.h. The rest of this header is shared by plugin.c
 * (the tcpx_net), plugin_versions.c (loading) and the per-version shims
 * plugin_v7.c / plugin_v9.c / plugin_v11.c.
 */
#ifndef TCPX_NET_PLUGIN_H
#define TCPX_NET_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "net/nccl_net_abi.h"
#include "net/net.h"

/* path_or_name: a path (contains '/'), a file name "libnccl-net-foo.so"
 * found on the library path, or a short name "foo" meaning
 * libnccl-net-foo.so. Every failure is TCPX_ERR_TRANSPORT with a sentence
 * naming the cause (not found, no supported table, init failed, no device). */
int tcpx_net_plugin_create(const char *path_or_name, const tcpx_net_opts *opts, tcpx_net **out);

/* Same, using exactly ABI version `version` (7..12), or the newest supported
 * one when version is 0. For tests and for working around a plugin whose
 * newest table is broken. */
int tcpx_net_plugin_create_version(const char *path_or_name, const tcpx_net_opts *opts, int version,
                                   tcpx_net **out);

/* ---- loader internals: one version-neutral shim per ABI version ---- */

#define TCPX_PLUGIN_MIN_VERSION 7
#define TCPX_PLUGIN_MAX_VERSION 12

/* What plugin.c needs of a device's ncclNetProperties_vN_t. */
typedef struct tcpx_plugin_props {
    const char *name;
    int ptr_support;
    int speed;
    int max_comms;
    int max_recvs;
    int dev_type;
    int dev_version;
    size_t max_p2p_bytes;          /* 0 where the version has no such field */
    const char *pci_path;          /* sysfs path of the NIC, or NULL */
} tcpx_plugin_props;

/* Each call takes the plugin's table `t` (a tcpx_ncclNet_vN_t of the shim's
 * version) and returns the plugin's ncclResult_t. `ctx` is the init context
 * of v11+ (NULL before). Sizes were range-checked by plugin.c (int_*_sizes). */
typedef struct tcpx_plugin_shim {
    int version;
    const char *symbol;            /* "ncclNetPlugin_vN" */
    int int_msg_sizes;             /* isend/irecv sizes are int */
    int int_reg_sizes;             /* regMr sizes are int */
    int max_requests;              /* NCCL_NET_MAX_REQUESTS of this ABI */
    const char *(*name)(const void *t);
    /* Name of the first required function the table lacks, or NULL. */
    const char *(*missing)(const void *t);
    tcpx_ncclResult_t (*init)(const void *t, void **ctx, uint64_t comm_id, tcpx_ncclDebugLogger_t log);
    tcpx_ncclResult_t (*finalize)(const void *t, void *ctx);  /* NULL: per-process init (v7..v10) */
    tcpx_ncclResult_t (*devices)(const void *t, int *ndev);
    tcpx_ncclResult_t (*props)(const void *t, int dev, tcpx_plugin_props *out);
    tcpx_ncclResult_t (*listen)(const void *t, void *ctx, int dev, void *handle, void **listen_comm);
    tcpx_ncclResult_t (*connect_send)(const void *t, void *ctx, int dev, void *handle, void **send_comm,
                                      tcpx_ncclNetDeviceHandle_v7_t **dev_handle);
    tcpx_ncclResult_t (*accept)(const void *t, void *listen_comm, void **recv_comm,
                                tcpx_ncclNetDeviceHandle_v7_t **dev_handle);
    tcpx_ncclResult_t (*reg_mr)(const void *t, void *comm, void *data, size_t size, int type, void **mhandle);
    tcpx_ncclResult_t (*dereg_mr)(const void *t, void *comm, void *mhandle);
    tcpx_ncclResult_t (*isend)(const void *t, void *send_comm, void *data, size_t size, int tag, void *mhandle,
                               void **request);
    tcpx_ncclResult_t (*irecv)(const void *t, void *recv_comm, void *data, size_t size, int tag, void *mhandle,
                               void **request);
    tcpx_ncclResult_t (*test)(const void *t, void *request, int *done, int *size);
    /* 1 if the table has irecvConsumed. */
    int (*has_irecv_consumed)(const void *t);
    tcpx_ncclResult_t (*irecv_consumed)(const void *t, void *recv_comm, void *request);
    tcpx_ncclResult_t (*close_send)(const void *t, void *send_comm);
    tcpx_ncclResult_t (*close_recv)(const void *t, void *recv_comm);
    tcpx_ncclResult_t (*close_listen)(const void *t, void *listen_comm);
} tcpx_plugin_shim;

extern const tcpx_plugin_shim tcpx_plugin_shim_v7, tcpx_plugin_shim_v8;
extern const tcpx_plugin_shim tcpx_plugin_shim_v9, tcpx_plugin_shim_v10;
extern const tcpx_plugin_shim tcpx_plugin_shim_v11, tcpx_plugin_shim_v12;

/* One (library, ABI version) pair, process-wide and never freed
 * (plugin_versions.c). */
typedef struct tcpx_plugin_lib {
    struct tcpx_plugin_lib *next;
    void *dl;
    const tcpx_plugin_shim *shim;
    const void *table;             /* its ncclNetPlugin_vN */
    char name[64];                 /* the table's name field */
    char file[256];                /* what was dlopened */
    int init_state;                /* v7..v10: 0 not yet, 1 done, -1 failed with init_rc */
    int init_rc;
} tcpx_plugin_lib;

/* dlopen path_or_name (see tcpx_net_plugin_create) and find its table of
 * `version` (0: the newest supported). Errors: TCPX_ERR_TRANSPORT. */
int tcpx_plugin_lib_open(const char *path_or_name, int version, tcpx_plugin_lib **out);
/* Call the plugin's init with our logger (v7..v10: once per process, the
 * result remembered; v11+: every call, *ctx is then finalize's argument). */
int tcpx_plugin_lib_init(tcpx_plugin_lib *lib, void **ctx);
/* "ncclSystemError" for 2, etc. */
const char *tcpx_plugin_result_name(int rc);

#endif /* TCPX_NET_PLUGIN_H */
