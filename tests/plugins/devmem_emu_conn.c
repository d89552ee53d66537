/* devmem_emu_conn.c - listen, connect and accept over loopback TCP.
 *
 * listen binds 127.0.0.1:0 and puts {magic, nonce, port} in the handle.
 * connect is non-blocking and, like the real plugin, never completes on its
 * first call: that call only starts the TCP connect and records its state in
 * the handle (the caller passes the same handle buffer on every retry);
 * later calls wait for the connection and write the preamble {magic, nonce}.
 * accept takes connections without blocking, reads their preambles, drops
 * any with a wrong magic or nonce and keeps listening; it hands out one recv
 * comm per call, with the UNPACK device handle filled in when asked.
 *
 * A connect abandoned half-way (the caller stops calling) keeps its socket
 * and state: the plugin is never told.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devmem_emu.h"

#define EMU_MAX_PENDING 64         /* connections whose preamble is still being read */

typedef struct emu_pending {
    int fd;
    size_t got;
    emu_preamble pre;
} emu_pending;

typedef struct emu_lcomm {
    pthread_mutex_t mu;
    int fd;
    uint64_t nonce;
    int npending;
    emu_pending pending[EMU_MAX_PENDING];
} emu_lcomm;

typedef struct emu_dial {
    int fd;
    int connected;
    size_t sent;
    emu_preamble pre;
} emu_dial;

static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

tcpx_ncclResult_t emu_listen(int dev, void *handle, void **listen_comm)
{
    *listen_comm = NULL;
    if (dev != 0) {
        EMU_WARN("NET/DevmemEmu: listen on device %d; there is only device 0", dev);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    emu_lcomm *l = calloc(1, sizeof *l);
    if (!l) {
        EMU_WARN("NET/DevmemEmu: listen: out of memory");
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(l->fd, 128) != 0 ||
        getsockname(l->fd, (struct sockaddr *)&a, &alen) != 0) {
        EMU_WARN("NET/DevmemEmu: cannot listen on 127.0.0.1: %s", strerror(errno));
        if (l->fd >= 0) close(l->fd);
        free(l);
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->nonce = emu_seed_next() ^ (uint64_t)(uintptr_t)l;
    emu_handle h = {.magic = EMU_HANDLE_MAGIC, .nonce = l->nonce, .port = ntohs(a.sin_port)};
    memset(handle, 0, TCPX_NCCL_NET_HANDLE_MAXSIZE);
    memcpy(handle, &h, sizeof h);
    *listen_comm = l;
    return TCPX_NCCL_SUCCESS;
}

/* Forget a failed dial: its socket, its state and its mark in the handle. */
static tcpx_ncclResult_t dial_fail(void *handle, emu_dial *d, tcpx_ncclResult_t rc)
{
    uint64_t zero = 0;
    memcpy((uint8_t *)handle + offsetof(emu_handle, connecting), &zero, sizeof zero);
    if (d->fd >= 0) close(d->fd);
    free(d);
    return rc;
}

static tcpx_ncclResult_t dial_start(void *handle, const emu_handle *h)
{
    emu_dial *d = calloc(1, sizeof *d);
    if (!d) {
        EMU_WARN("NET/DevmemEmu: connect: out of memory");
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    d->pre = (emu_preamble){EMU_HANDLE_MAGIC, h->nonce};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0 || (connect(d->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)) {
        EMU_WARN("NET/DevmemEmu: connect to 127.0.0.1:%u: %s", h->port, strerror(errno));
        return dial_fail(handle, d, TCPX_NCCL_SYSTEM_ERROR);
    }
    set_nodelay(d->fd);
    uint64_t mark = (uint64_t)(uintptr_t)d;
    memcpy((uint8_t *)handle + offsetof(emu_handle, connecting), &mark, sizeof mark);
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t emu_connect(int dev, void *handle, void **send_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    *send_comm = NULL;
    emu_handle h;
    memcpy(&h, handle, sizeof h);
    if (dev != 0 || h.magic != EMU_HANDLE_MAGIC) {
        EMU_WARN("NET/DevmemEmu: connect to device %d with a handle that is not ours (magic %#llx)", dev,
                 (unsigned long long)h.magic);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    emu_dial *d = (emu_dial *)(uintptr_t)h.connecting;
    if (!d) return dial_start(handle, &h); /* the first call only starts */
    if (!d->connected) {
        struct pollfd p = {.fd = d->fd, .events = POLLOUT};
        if (poll(&p, 1, 0) <= 0) return TCPX_NCCL_SUCCESS;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err) {
            EMU_WARN("NET/DevmemEmu: connect to 127.0.0.1:%u failed: %s", h.port, strerror(err));
            return dial_fail(handle, d, TCPX_NCCL_SYSTEM_ERROR);
        }
        d->connected = 1;
    }
    while (d->sent < sizeof d->pre) {
        ssize_t w = send(d->fd, (uint8_t *)&d->pre + d->sent, sizeof d->pre - d->sent, MSG_NOSIGNAL);
        if (w > 0) {
            d->sent += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return TCPX_NCCL_SUCCESS;
        } else {
            EMU_WARN("NET/DevmemEmu: connect: writing the preamble failed: %s", strerror(errno));
            return dial_fail(handle, d, TCPX_NCCL_SYSTEM_ERROR);
        }
    }
    emu_scomm *s = NULL;
    tcpx_ncclResult_t rc = emu_scomm_new(d->fd, &s);
    if (rc) return dial_fail(handle, d, rc);
    d->fd = -1; /* now the comm's */
    dial_fail(handle, d, TCPX_NCCL_SUCCESS);
    *send_comm = s;
    return TCPX_NCCL_SUCCESS;
}

static void drop_pending(emu_lcomm *l, int i)
{
    close(l->pending[i].fd);
    l->pending[i] = l->pending[--l->npending];
}

/* Take every connection waiting in the kernel's backlog. */
static tcpx_ncclResult_t take_new(emu_lcomm *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return TCPX_NCCL_SUCCESS;
            if (errno == EINTR || errno == ECONNABORTED) continue;
            EMU_WARN("NET/DevmemEmu: accept failed: %s", strerror(errno));
            return TCPX_NCCL_SYSTEM_ERROR;
        }
        if (l->npending == EMU_MAX_PENDING) {
            EMU_INFO("NET/DevmemEmu: %d connections without a preamble yet; dropping a new one", EMU_MAX_PENDING);
            close(fd);
            continue;
        }
        set_nodelay(fd);
        l->pending[l->npending++] = (emu_pending){.fd = fd};
    }
}

/* Index of a connection whose valid preamble is complete, or -1. */
static int find_ready(emu_lcomm *l)
{
    for (int i = 0; i < l->npending;) {
        emu_pending *p = &l->pending[i];
        ssize_t r = recv(p->fd, (uint8_t *)&p->pre + p->got, sizeof p->pre - p->got, 0);
        if (r > 0) p->got += (size_t)r;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            drop_pending(l, i); /* gone before saying who it is */
            continue;
        }
        if (p->got == sizeof p->pre) {
            if (p->pre.magic == EMU_HANDLE_MAGIC && p->pre.nonce == l->nonce) return i;
            drop_pending(l, i); /* a stranger */
            continue;
        }
        i++;
    }
    return -1;
}

tcpx_ncclResult_t emu_accept(void *listen_comm, void **recv_comm, tcpx_ncclNetDeviceHandle_v7_t **dh)
{
    emu_lcomm *l = listen_comm;
    *recv_comm = NULL;
    pthread_mutex_lock(&l->mu);
    tcpx_ncclResult_t rc = take_new(l);
    int i = rc ? -1 : find_ready(l);
    if (i < 0) {
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    int fd = l->pending[i].fd;
    l->pending[i] = l->pending[--l->npending];
    pthread_mutex_unlock(&l->mu);
    emu_rcomm *c = NULL;
    if ((rc = emu_rcomm_new(fd, &c))) {
        close(fd);
        return rc;
    }
    /* The caller presets the struct when it wants offload, as NCCL does. */
    if (dh && *dh) {
        (*dh)->netDeviceType = TCPX_NCCL_NET_DEVICE_UNPACK;
        (*dh)->netDeviceVersion = TCPX_NCCL_NET_DEVICE_UNPACK_VERSION;
        (*dh)->handle = c->dhandle;
        (*dh)->size = sizeof(tcpx_unpack_handle);
        (*dh)->needsProxyProgress = 1;
    }
    *recv_comm = c;
    return TCPX_NCCL_SUCCESS;
}

tcpx_ncclResult_t emu_close_listen(void *listen_comm)
{
    emu_lcomm *l = listen_comm;
    if (!l) return TCPX_NCCL_SUCCESS;
    while (l->npending) drop_pending(l, 0);
    close(l->fd);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return TCPX_NCCL_SUCCESS;
}
