/*
 * tcpxsock.h - the built-in socket transport as an ncclNet plugin
 * ("TCPXSock", libnccl-net-tcpxsock.so).
 *
 * tcpxsock.c implements NCCL's ext-net contract once over
 * tcpx_net_socket_create(), with the widest argument types (size_t sizes);
 * tcpxsock_tables.c wraps it into one exported ncclNetPlugin_vN table per
 * ABI version (7..12). Host pointers only: NCCL stages GPU data itself.
 */
#ifndef TCPXSOCK_H
#define TCPXSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "net/nccl_net_abi.h"

#define TCPXSOCK_NAME "TCPXSock"
#define TCPXSOCK_MAX_MESSAGE ((size_t)1 << 30) /* test() reports int sizes */

/* Version-neutral device properties, converted per version. */
typedef struct tcpxsock_props {
    char *name;
    char *pci_path;                /* NULL when the interface has no PCI device */
    int speed;                     /* Mb/s */
    int max_comms;
    int max_recvs;
} tcpxsock_props;

tcpx_ncclResult_t tcpxsock_init(tcpx_ncclDebugLogger_t log);
tcpx_ncclResult_t tcpxsock_devices(int *ndev);
tcpx_ncclResult_t tcpxsock_props_get(int dev, tcpxsock_props *p);
tcpx_ncclResult_t tcpxsock_listen(int dev, void *handle, void **listen_comm);
tcpx_ncclResult_t tcpxsock_connect(int dev, void *handle, void **send_comm);
tcpx_ncclResult_t tcpxsock_accept(void *listen_comm, void **recv_comm);
tcpx_ncclResult_t tcpxsock_reg_mr(void *comm, void *data, size_t size, int type, void **mhandle);
tcpx_ncclResult_t tcpxsock_reg_mr_dmabuf(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                         void **mhandle);
tcpx_ncclResult_t tcpxsock_dereg_mr(void *comm, void *mhandle);
tcpx_ncclResult_t tcpxsock_isend(void *send_comm, void *data, size_t size, int tag, void *mhandle, void **request);
/* n grouped receives; we advertise maxRecvs = 1, so n must be 1. */
tcpx_ncclResult_t tcpxsock_irecv(void *recv_comm, int n, void **data, const size_t *sizes, void **mhandles,
                                 void **request);
tcpx_ncclResult_t tcpxsock_iflush(void *recv_comm, int n, void **data, int *sizes, void **mhandles,
                                  void **request);
tcpx_ncclResult_t tcpxsock_test(void *request, int *done, int *sizes);
tcpx_ncclResult_t tcpxsock_close_send(void *send_comm);
tcpx_ncclResult_t tcpxsock_close_recv(void *recv_comm);
tcpx_ncclResult_t tcpxsock_close_listen(void *listen_comm);
/* v11+: init/finalize per NCCL communicator; the transport is process-wide. */
tcpx_ncclResult_t tcpxsock_finalize(void *ctx);
/* Log through NCCL's logger (a no-op before init). */
void tcpxsock_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
