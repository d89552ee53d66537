/* fake_unpack.c - an in-process ncclNet v7 plugin that behaves like
 * GPUDirect-TCPX where the loader can tell: its devices offer UNPACK
 * offload, accept fills the device handle NCCL-style, test never reports a
 * size, requests must be tested and consumed in posting order, every receive
 * must be released with irecvConsumed, a comm has 16 request slots, connect
 * and accept each need a second call, and init logs through NCCL's logger.
 * Messages are copied in memory (both ends live in the test process), so it
 * is single-threaded: the test drives everything from one thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/nccl_net_abi.h"

#define EXPORT __attribute__((visibility("default")))
#define SLOTS 16
#define HANDLE_MAGIC 0x464b554e50434b31ull
#define DEV_MAGIC 0xf00dfacecafe0007ull

typedef struct fconn fconn;

typedef struct fcomm fcomm;

typedef struct freq {
    fcomm *comm;
    int used, is_recv, done;
    uint64_t seq;
    char *data;
    int size;
} freq;

struct fcomm {
    fconn *conn;
    int is_recv;
    freq reqs[SLOTS];
    uint64_t posted, tested, consumed; /* sequence counters */
};

/* One connection: the k-th send matches the k-th receive. */
struct fconn {
    fcomm *send, *recv;
    fconn *next_pending;
    int accepted;
};

typedef struct flisten {
    fconn *pending;
} flisten;

static struct {
    uint64_t magic;
    void *meta, *bounce;
} g_unpack = {DEV_MAGIC, NULL, NULL};

static tcpx_ncclResult_t f_init(tcpx_ncclDebugLogger_t log)
{
    if (log) log(TCPX_NCCL_LOG_WARN, TCPX_NCCL_LOGSYS_NET, __FILE__, __LINE__, "fake init says %d", 42);
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_devices(int *ndev)
{
    *ndev = 1;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_props(int dev, tcpx_ncclNetProperties_v7_t *p)
{
    if (dev != 0) return TCPX_NCCL_INVALID_ARGUMENT;
    memset(p, 0, sizeof *p);
    p->name = "fake0";
    p->ptrSupport = TCPX_NCCL_PTR_HOST | TCPX_NCCL_PTR_CUDA;
    p->speed = 200000;
    p->maxComms = 1024;
    p->maxRecvs = 1;
    p->netDeviceType = TCPX_NCCL_NET_DEVICE_UNPACK;
    p->netDeviceVersion = TCPX_NCCL_NET_DEVICE_UNPACK_VERSION;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_listen(int dev, void *handle, void **listen_comm)
{
    flisten *l = calloc(1, sizeof *l);
    if (!l) return TCPX_NCCL_SYSTEM_ERROR;
    uint64_t magic = HANDLE_MAGIC;
    memset(handle, 0, TCPX_NCCL_NET_HANDLE_MAXSIZE);
    memcpy(handle, &magic, 8);
    memcpy((char *)handle + 8, &l, sizeof l);
    *listen_comm = l;
    return TCPX_NCCL_SUCCESS;
}

/* handle[16] counts calls: the first one only "starts" connecting. */
static tcpx_ncclResult_t f_connect(int dev, void *handle, void **send_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    uint64_t magic;
    flisten *l;
    memcpy(&magic, handle, 8);
    memcpy(&l, (char *)handle + 8, sizeof l);
    *send_comm = NULL;
    if (magic != HANDLE_MAGIC) return TCPX_NCCL_INVALID_ARGUMENT;
    uint8_t *stage = (uint8_t *)handle + 16;
    if ((*stage)++ == 0) return TCPX_NCCL_SUCCESS;
    fconn *c = calloc(1, sizeof *c);
    fcomm *s = calloc(1, sizeof *s);
    if (!c || !s) return TCPX_NCCL_SYSTEM_ERROR;
    s->conn = c;
    c->send = s;
    c->next_pending = l->pending;
    l->pending = c;
    *send_comm = s;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_accept(void *listen_comm, void **recv_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    flisten *l = listen_comm;
    *recv_comm = NULL;
    fconn *c = l->pending;
    if (!c) return TCPX_NCCL_SUCCESS;
    if (!c->accepted++) return TCPX_NCCL_SUCCESS; /* not yet */
    /* Like NCCL, the caller must have prepared the handle for UNPACK. */
    if (!dh || !*dh || (*dh)->netDeviceType != TCPX_NCCL_NET_DEVICE_UNPACK) return TCPX_NCCL_INVALID_USAGE;
    fcomm *r = calloc(1, sizeof *r);
    if (!r) return TCPX_NCCL_SYSTEM_ERROR;
    l->pending = c->next_pending;
    r->conn = c;
    r->is_recv = 1;
    c->recv = r;
    (*dh)->handle = &g_unpack;
    (*dh)->size = sizeof g_unpack;
    (*dh)->needsProxyProgress = 1;
    *recv_comm = r;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_reg_mr(void *comm, void *data, int size, int type, void **mh)
{
    *mh = malloc(1);
    return *mh ? TCPX_NCCL_SUCCESS : TCPX_NCCL_SYSTEM_ERROR;
}

static tcpx_ncclResult_t f_dereg_mr(void *comm, void *mh)
{
    free(mh);
    return TCPX_NCCL_SUCCESS;
}

static freq *find(fcomm *c, uint64_t seq)
{
    for (int i = 0; i < SLOTS; i++)
        if (c->reqs[i].used && c->reqs[i].seq == seq) return &c->reqs[i];
    return NULL;
}

/* Copy message `seq` once both of its ends are posted. */
static tcpx_ncclResult_t match(fconn *c, uint64_t seq)
{
    freq *s = c->send ? find(c->send, seq) : NULL;
    freq *r = c->recv ? find(c->recv, seq) : NULL;
    if (!s || !r || s->done) return TCPX_NCCL_SUCCESS;
    if (s->size > r->size) return TCPX_NCCL_INTERNAL_ERROR;
    if (s->size) memcpy(r->data, s->data, (size_t)s->size);
    s->done = r->done = 1;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t post(fcomm *c, void *data, int size, void *mh, void **request)
{
    *request = NULL;
    if (!mh) return TCPX_NCCL_INTERNAL_ERROR; /* like TCPX: registration required */
    freq *q = NULL;
    for (int i = 0; i < SLOTS && !q; i++)
        if (!c->reqs[i].used) q = &c->reqs[i];
    if (!q) return TCPX_NCCL_INTERNAL_ERROR; /* like TCPX: out of requests is an error */
    *q = (freq){c, 1, c->is_recv, 0, c->posted++, data, size};
    *request = q;
    return match(c->conn, q->seq);
}

static tcpx_ncclResult_t f_isend(void *send_comm, void *data, int size, int tag, void *mh, void **request)
{
    return post(send_comm, data, size, mh, request);
}

static tcpx_ncclResult_t f_irecv(void *recv_comm, int n, void **data, int *sizes, int *tags, void **mhandles,
                                 void **request)
{
    if (n != 1) return TCPX_NCCL_INTERNAL_ERROR;
    return post(recv_comm, data[0], sizes[0], mhandles[0], request);
}

/* In order only; never writes *sizes (as GPUDirect-TCPX). */
static tcpx_ncclResult_t f_test(void *request, int *done, int *sizes)
{
    freq *q = request;
    *done = 0;
    if (!q || !q->used || q->seq != q->comm->tested) return TCPX_NCCL_INTERNAL_ERROR;
    if (!q->done) return TCPX_NCCL_SUCCESS;
    q->comm->tested++;
    if (!q->is_recv) q->used = 0; /* a receive waits for irecvConsumed */
    *done = 1;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_consumed(void *recv_comm, int n, void *request)
{
    fcomm *c = recv_comm;
    freq *q = request;
    if (n != 1 || !q || !q->used || !q->is_recv || !q->done || q->seq != c->consumed) return TCPX_NCCL_INTERNAL_ERROR;
    c->consumed++;
    q->used = 0;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_close(void *comm)
{
    fcomm *c = comm;
    if (!c) return TCPX_NCCL_SUCCESS;
    fconn *k = c->conn;
    if (c->is_recv)
        k->recv = NULL;
    else
        k->send = NULL;
    if (!k->send && !k->recv) free(k);
    free(c);
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t f_close_listen(void *listen_comm)
{
    free(listen_comm);
    return TCPX_NCCL_SUCCESS;
}

EXPORT const tcpx_ncclNet_v7_t ncclNetPlugin_v7 = {
    .name = "FakeUnpack",
    .init = f_init,
    .devices = f_devices,
    .getProperties = f_props,
    .listen = f_listen,
    .connect = f_connect,
    .accept = f_accept,
    .regMr = f_reg_mr,
    .deregMr = f_dereg_mr,
    .isend = f_isend,
    .irecv = f_irecv,
    .test = f_test,
    .closeSend = f_close,
    .closeRecv = f_close,
    .closeListen = f_close_listen,
    .irecvConsumed = f_consumed,
};
