/* sock_net.c - the built-in socket transport's tcpx_net table. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"

#define SOCK_MR_MAGIC 0x4d52534bu

typedef struct sock_mr {
    uint32_t magic;
    void *data;
    size_t size;
} sock_mr;

static int sock_devices(tcpx_net *n, int *ndev)
{
    if (!ndev) return tcpx_set_error(TCPX_ERR_INVALID, "devices: NULL argument");
    *ndev = 1;
    return TCPX_OK;
}

static int sock_get_properties(tcpx_net *net, int dev, tcpx_net_props *p)
{
    sock_net *n = (sock_net *)net;
    if (!p) return tcpx_set_error(TCPX_ERR_INVALID, "get_properties: NULL argument");
    if (dev != 0) return tcpx_set_error(TCPX_ERR_INVALID, "no device %d (the socket transport has 1)", dev);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", n->ifname[0] ? n->ifname : "socket");
    p->ptr_support = TCPX_NET_PTR_HOST;
    p->speed_mbps = n->speed_mbps;
    p->max_comms = 65536;
    p->max_requests = SOCK_MAX_REQUESTS;
    p->max_recvs = 1;
    p->max_message = SIZE_MAX / 2;
    p->offload = TCPX_NET_OFFLOAD_NONE;
    return TCPX_OK;
}

static int sock_reg_mr(tcpx_net *n, void *comm, void *data, size_t size, int ptr_type, void **mhandle)
{
    if (!mhandle) return tcpx_set_error(TCPX_ERR_INVALID, "reg_mr: NULL handle pointer");
    *mhandle = NULL;
    if (ptr_type == TCPX_NET_PTR_CUDA)
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED, "the socket transport takes host memory only, not CUDA memory");
    if (ptr_type != TCPX_NET_PTR_HOST)
        return tcpx_set_error(TCPX_ERR_INVALID, "reg_mr: unknown pointer type %d", ptr_type);
    sock_mr *mr = malloc(sizeof *mr);
    if (!mr) return tcpx_set_error(TCPX_ERR_NOMEM, "memory registration allocation failed");
    *mr = (sock_mr){SOCK_MR_MAGIC, data, size};
    *mhandle = mr;
    return TCPX_OK;
}

static int sock_dereg_mr(tcpx_net *n, void *comm, void *mhandle)
{
    sock_mr *mr = mhandle;
    if (!mr) return TCPX_OK;
    if (mr->magic != SOCK_MR_MAGIC) return tcpx_set_error(TCPX_ERR_INVALID, "dereg_mr: not a registration handle");
    mr->magic = 0;
    free(mr);
    return TCPX_OK;
}

static int sock_irecv_consumed(tcpx_net *n, void *recv_comm, void *request) { return TCPX_OK; }

static void *sock_device_handle(tcpx_net *n, void *recv_comm) { return NULL; }

static int sock_close_send(tcpx_net *n, void *send_comm)
{
    sock_comm_destroy(send_comm);
    return TCPX_OK;
}

static int sock_close_recv(tcpx_net *n, void *recv_comm)
{
    sock_comm_destroy(recv_comm);
    return TCPX_OK;
}

static int sock_send_closed(tcpx_net *n, void *send_comm)
{
    sock_comm *c = send_comm;
    if (!c) return 0;
    if (sock_comm_failed(c)) return 1;
    char b;
    ssize_t r = recv(c->conns[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return 1;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    return 0;
}

/* One I/O thread per core, at most 32: loopback and fast NICs need about
 * as many copying threads as there are busy streams (measured on 16 cores:
 * 16 streams of GPU memory moved 14.6 GB/s with 8 threads, 19.2 with 16).
 * One on a machine of 1-2 cores, where the caller's and the progress
 * thread's work already fill it: two there only contend with them (2-core
 * VM, two processes: READ and send of 2-4 MiB 10-25 % slower with two than
 * with one, WRITE the same). */
static int sock_default_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores <= 2 ? 1 : cores > 32 ? 32 : (int)cores;
}

static void sock_destroy(tcpx_net *n)
{
    sock_pollers_fini((sock_net *)n);
    free(n);
}

void tcpx_net_socket_set_hello_timeout(tcpx_net *n, int ms) { ((sock_net *)n)->hello_timeout_ms = ms; }

int tcpx_net_socket_create(const tcpx_net_opts *opts, tcpx_net **out)
{
    if (!opts || !out) return tcpx_set_error(TCPX_ERR_INVALID, "socket transport: NULL argument");
    *out = NULL;
    if (opts->socks_per_comm < 1 || opts->socks_per_comm > SOCK_MAX_SOCKS)
        return tcpx_set_error(TCPX_ERR_INVALID, "socket transport: %d sockets per comm is outside 1..%d",
                              opts->socks_per_comm, SOCK_MAX_SOCKS);
    sock_net *n = calloc(1, sizeof *n);
    if (!n) return tcpx_set_error(TCPX_ERR_NOMEM, "socket transport allocation failed");
    n->socks_per_comm = opts->socks_per_comm;
    n->peer_timeout_ms = opts->peer_timeout_ms;
    n->hello_timeout_ms = SOCK_HELLO_TIMEOUT_MS;
    n->notify = opts->notify;
    n->serve = opts->serve;
    n->idle = opts->idle;
    n->notify_arg = opts->notify_arg;
    n->run = sock_conn_run;
    /* With one or two cores an I/O thread runs only by taking the core from
     * the polling caller it works for (measured on 2 cores, NIXL's agent
     * polling both sides: WRITE 64 MiB 2.7 -> 4.3 GB/s, 128 x 1 MiB 2.9 ->
     * 5.3 when that caller moves the bytes itself). */
    n->pollers_move_all = opts->callers_move ? opts->callers_move == 1 : sysconf(_SC_NPROCESSORS_ONLN) <= 2;
    int rc = sock_addr_resolve(n, opts->bind_addr);
    if (!rc) rc = sock_pollers_init(n, opts->io_threads > 0 ? opts->io_threads : sock_default_threads());
    if (rc) {
        free(n);
        return rc;
    }
    tcpx_net *b = &n->base;
    b->name = "socket";
    b->devices = sock_devices;
    b->get_properties = sock_get_properties;
    b->listen = sock_listen;
    b->connect_send = sock_connect;
    b->accept = sock_accept;
    b->reg_mr = sock_reg_mr;
    b->dereg_mr = sock_dereg_mr;
    b->isend = sock_isend;
    b->irecv = sock_irecv;
    b->isendv = sock_isendv;
    b->irecvv = sock_irecvv;
    b->test = sock_test;
    b->arm = sock_arm;
    b->caller_polls = sock_caller_polls;
    b->irecv_consumed = sock_irecv_consumed;
    b->device_handle = sock_device_handle;
    b->close_send = sock_close_send;
    b->close_recv = sock_close_recv;
    b->close_listen = sock_close_listen;
    b->connect_abort = sock_connect_abort;
    b->send_closed = sock_send_closed;
    b->destroy = sock_destroy;
    TCPX_DEBUG("socket transport: %d socket(s) per comm, up to %d I/O threads, listening on %s (%s)",
               n->socks_per_comm, n->npollers, n->bind_str, n->ifname[0] ? n->ifname : "unknown interface");
    *out = b;
    return TCPX_OK;
}
