/* tcpxsock.c - NCCL's ext-net contract over the built-in socket transport.
 *
 * One process-wide tcpx_net (created by the first init) serves every NCCL
 * communicator. The environment knobs of the library apply:
 * TCPX_SOCKS_PER_COMM (1..16, default 1), TCPX_BIND_ADDR (numeric address to
 * listen on; default: the first UP non-loopback IPv4 interface, else
 * 127.0.0.1) and TCPX_PEER_TIMEOUT_MS (default 30000).
 *
 * The contract, as NCCL drives it:
 *   - connect/accept never block: ncclSuccess with a NULL comm means "call
 *     again". NCCL passes the same 128-byte handle buffer on every retry of a
 *     connect, so the connect state pointer lives in the handle's last 16
 *     bytes (our listen handle uses the first 36 and zeroes the rest);
 *   - isend/irecv return a NULL request when the comm has 64 requests in
 *     flight (NCCL keeps at most NCCL_NET_MAX_REQUESTS = 32): "try again";
 *   - irecv may find NCCL's optional-completion marker in *request: it is
 *     overwritten, and every receive completes normally;
 *   - test frees a finished request; NCCL's later irecvConsumed is not
 *     provided (NULL in the tables), so NCCL never touches it again;
 *   - sizes: messages up to 1 GiB (test reports int sizes), maxRecvs 1.
 */
#define _GNU_SOURCE
#include "tcpxsock.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "util/error.h"

_Static_assert(TCPX_NET_HANDLE_SIZE == TCPX_NCCL_NET_HANDLE_MAXSIZE, "handle sizes differ");

#define STASH_OFF (TCPX_NET_HANDLE_SIZE - 16)
#define STASH_MAGIC 0x54585343u /* "CSXT" */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static tcpx_net *g_net;
static _Atomic(tcpx_ncclDebugLogger_t) g_log;
static char g_devname[64];
static char *g_pci;
static int g_speed;

void tcpxsock_log(int level, const char *fmt, ...)
{
    tcpx_ncclDebugLogger_t log = atomic_load(&g_log);
    if (!log) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log(level, TCPX_NCCL_LOGSYS_NET, __FILE__, __LINE__, "NET/" TCPXSOCK_NAME " : %s", msg);
}

/* A failed call of the socket transport as an ncclResult_t, logged. */
static tcpx_ncclResult_t failed(const char *call, int st)
{
    tcpxsock_log(TCPX_NCCL_LOG_WARN, "%s failed: %s: %s", call, tcpx_strerror(st), tcpx_last_error());
    switch (st) {
    case TCPX_ERR_PEER:
    case TCPX_ERR_TIMEOUT: return TCPX_NCCL_REMOTE_ERROR;
    case TCPX_ERR_NOMEM:
    case TCPX_ERR_SYSTEM:
    case TCPX_ERR_TRANSPORT: return TCPX_NCCL_SYSTEM_ERROR;
    default: return TCPX_NCCL_INTERNAL_ERROR;
    }
}

static tcpx_ncclResult_t misuse(const char *what)
{
    tcpxsock_log(TCPX_NCCL_LOG_WARN, "%s", what);
    return TCPX_NCCL_INTERNAL_ERROR;
}

/* 0 and *out (default def when unset), or -1 after a warning. */
static int env_int(const char *name, int def, int lo, int hi, int *out)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) {
        tcpxsock_log(TCPX_NCCL_LOG_WARN, "%s=\"%s\" is not a number in %d..%d", name, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

tcpx_ncclResult_t tcpxsock_init(tcpx_ncclDebugLogger_t log)
{
    pthread_mutex_lock(&g_mu);
    if (log && !atomic_load(&g_log)) atomic_store(&g_log, log);
    if (g_net) {
        pthread_mutex_unlock(&g_mu);
        return TCPX_NCCL_SUCCESS;
    }
    tcpx_net_opts o = {0};
    const char *bind = getenv("TCPX_BIND_ADDR");
    o.bind_addr = bind ? bind : "";
    if (env_int("TCPX_SOCKS_PER_COMM", 1, 1, 16, &o.socks_per_comm) ||
        env_int("TCPX_PEER_TIMEOUT_MS", 30000, 1, INT_MAX, &o.peer_timeout_ms)) {
        pthread_mutex_unlock(&g_mu);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    tcpx_net *n = NULL;
    tcpx_net_props p;
    int st = tcpx_net_socket_create(&o, &n);
    if (!st) st = n->get_properties(n, 0, &p);
    if (st) {
        if (n) n->destroy(n);
        pthread_mutex_unlock(&g_mu);
        return failed("init", st);
    }
    snprintf(g_devname, sizeof g_devname, "%s", p.name);
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/device", p.name);
    g_pci = realpath(path, NULL); /* NULL: virtual interface, NCCL places it at the CPU */
    g_speed = p.speed_mbps > 0 ? p.speed_mbps : 10000;
    g_net = n;
    pthread_mutex_unlock(&g_mu);
    tcpxsock_log(TCPX_NCCL_LOG_INFO, "using %s (%d Mb/s), %d socket(s) per comm, peer timeout %d ms", g_devname,
                 g_speed, o.socks_per_comm, o.peer_timeout_ms);
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_finalize(void *ctx) { return TCPX_NCCL_SUCCESS; }

tcpx_ncclResult_t tcpxsock_devices(int *ndev)
{
    if (!ndev) return misuse("devices: NULL argument");
    *ndev = g_net ? 1 : 0;
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_props_get(int dev, tcpxsock_props *p)
{
    if (!g_net || dev != 0 || !p) return misuse("getProperties: no such device (or init was not called)");
    p->name = g_devname;
    p->pci_path = g_pci;
    p->speed = g_speed;
    p->max_comms = 65536;
    p->max_recvs = 1;
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_listen(int dev, void *handle, void **listen_comm)
{
    if (!g_net || dev != 0 || !handle || !listen_comm) return misuse("listen: bad argument");
    int st = g_net->listen(g_net, 0, handle, listen_comm);
    return st ? failed("listen", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_connect(int dev, void *handle, void **send_comm)
{
    if (!g_net || dev != 0 || !handle || !send_comm) return misuse("connect: bad argument");
    *send_comm = NULL;
    uint8_t *stash = (uint8_t *)handle + STASH_OFF;
    uint64_t magic = 0;
    void *state = NULL;
    memcpy(&magic, stash, sizeof magic);
    memcpy(&state, stash + 8, sizeof state);
    if (magic != (STASH_MAGIC ^ (uint64_t)(uintptr_t)state)) state = NULL; /* first call */
    uint8_t h[TCPX_NET_HANDLE_SIZE];
    memcpy(h, handle, STASH_OFF);
    memset(h + STASH_OFF, 0, sizeof h - STASH_OFF);
    int st = g_net->connect_send(g_net, 0, h, &state, send_comm);
    /* state is NULL again once connected or failed. */
    magic = state ? STASH_MAGIC ^ (uint64_t)(uintptr_t)state : 0;
    memcpy(stash, &magic, sizeof magic);
    memcpy(stash + 8, &state, sizeof state);
    return st ? failed("connect", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_accept(void *listen_comm, void **recv_comm)
{
    if (!g_net || !listen_comm || !recv_comm) return misuse("accept: bad argument");
    int st = g_net->accept(g_net, listen_comm, recv_comm);
    return st ? failed("accept", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_reg_mr(void *comm, void *data, size_t size, int type, void **mhandle)
{
    if (!g_net) return misuse("regMr before init");
    if (type != TCPX_NCCL_PTR_HOST) return misuse("regMr: only host memory (NCCL_PTR_HOST) is supported");
    int st = g_net->reg_mr(g_net, comm, data, size, TCPX_NET_PTR_HOST, mhandle);
    return st ? failed("regMr", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_reg_mr_dmabuf(void *comm, void *data, size_t size, int type, uint64_t offset, int fd,
                                         void **mhandle)
{
    return misuse("regMrDmaBuf: DMA-BUF is not supported (ptrSupport is host only)");
}

tcpx_ncclResult_t tcpxsock_dereg_mr(void *comm, void *mhandle)
{
    if (!g_net) return misuse("deregMr before init");
    int st = g_net->dereg_mr(g_net, comm, mhandle);
    return st ? failed("deregMr", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_isend(void *send_comm, void *data, size_t size, int tag, void *mhandle, void **request)
{
    if (!g_net || !request) return misuse("isend: bad argument");
    *request = NULL;
    if (size > TCPXSOCK_MAX_MESSAGE) return misuse("isend: message larger than maxP2pBytes");
    int st = g_net->isend(g_net, send_comm, data, size, tag, mhandle, request);
    return st ? failed("isend", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_irecv(void *recv_comm, int n, void **data, const size_t *sizes, void **mhandles,
                                 void **request)
{
    if (!g_net || !request || !data || !sizes) return misuse("irecv: bad argument");
    *request = NULL; /* also drops NCCL's optional-completion marker */
    if (n != 1) return misuse("irecv: grouped receives are not supported (maxRecvs is 1)");
    if (sizes[0] > TCPXSOCK_MAX_MESSAGE) return misuse("irecv: receive larger than maxP2pBytes");
    int st = g_net->irecv(g_net, recv_comm, data[0], sizes[0], 0, mhandles ? mhandles[0] : NULL, request);
    return st ? failed("irecv", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_iflush(void *recv_comm, int n, void **data, int *sizes, void **mhandles,
                                  void **request)
{
    /* Host memory only: NCCL never needs a flush from us. */
    return misuse("iflush: not supported (no CUDA pointers)");
}

tcpx_ncclResult_t tcpxsock_test(void *request, int *done, int *sizes)
{
    if (!g_net || !request || !done) return misuse("test: bad argument");
    size_t size = 0;
    int st = g_net->test(g_net, request, done, &size);
    if (st) return failed("test", st);
    if (*done && sizes) sizes[0] = (int)size;
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_close_send(void *send_comm)
{
    if (!g_net) return misuse("closeSend before init");
    int st = send_comm ? g_net->close_send(g_net, send_comm) : 0;
    return st ? failed("closeSend", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_close_recv(void *recv_comm)
{
    if (!g_net) return misuse("closeRecv before init");
    int st = recv_comm ? g_net->close_recv(g_net, recv_comm) : 0;
    return st ? failed("closeRecv", st) : TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t tcpxsock_close_listen(void *listen_comm)
{
    if (!g_net) return misuse("closeListen before init");
    int st = listen_comm ? g_net->close_listen(g_net, listen_comm) : 0;
    return st ? failed("closeListen", st) : TCPX_NCCL_SUCCESS;
}
