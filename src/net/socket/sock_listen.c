/* sock_listen.c - listening, and accepting comms without ever blocking.
 *
 * accept() takes every pending TCP connection, collects each one's hello
 * across calls, drops strangers (bad hello, wrong listener nonce, silence
 * past the hello timeout, overflow of the half-open table), and groups the
 * good sockets by comm id. A comm is handed out once all its sockets are
 * there; several comms may assemble at once and finish in any order.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

#define SOCK_BACKLOG 256
#define SOCK_ACCEPTS_PER_CALL 64

typedef struct sock_pend {
    int fd;                        /* -1: dropped, compacted away */
    int ready;                     /* hello complete and valid */
    uint64_t t0;
    size_t got;
    uint8_t buf[SOCK_HELLO_SIZE];
    sock_hello h;
    char peer[SOCK_ADDR_STRLEN];
} sock_pend;

typedef struct sock_lcomm {
    int fd;
    sock_flag arrivals;            /* set by an I/O thread when connections arrive */
    uint64_t nonce;
    char addr[SOCK_ADDR_STRLEN];
    int npend;
    sock_pend pend[SOCK_MAX_PENDING];
} sock_lcomm;

int sock_listen(tcpx_net *net, int dev, void *handle, void **listen_comm)
{
    sock_net *n = (sock_net *)net;
    if (!handle || !listen_comm) return tcpx_set_error(TCPX_ERR_INVALID, "listen: NULL argument");
    *listen_comm = NULL;
    if (dev != 0) return tcpx_set_error(TCPX_ERR_INVALID, "listen: no device %d (the socket transport has 1)", dev);
    sock_lcomm *l = calloc(1, sizeof *l);
    if (!l) return tcpx_set_error(TCPX_ERR_NOMEM, "listen comm allocation failed");
    int fd = socket(n->bind_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        free(l);
        return tcpx_set_error(TCPX_ERR_SYSTEM, "cannot create a listen socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sock_handle h;
    memset(&h, 0, sizeof h);
    h.len = sizeof h.ss;
    const char *what = "bind";
    if (bind(fd, (const struct sockaddr *)&n->bind_ss, n->bind_len) != 0 ||
        (what = "listen", listen(fd, SOCK_BACKLOG) != 0) ||
        (what = "getsockname", getsockname(fd, (struct sockaddr *)&h.ss, &h.len) != 0)) {
        int err = errno;
        close(fd);
        free(l);
        return tcpx_set_error(TCPX_ERR_TRANSPORT, "cannot listen on %s: %s failed: %s", n->bind_str, what,
                              strerror(err));
    }
    l->arrivals.net = n;
    l->arrivals.fd = fd;
    int rc = sock_poller_watch(n, &l->arrivals);
    if (rc) {
        close(fd);
        free(l);
        return rc;
    }
    h.nonce = tcpx_random_u64();
    sock_handle_encode(&h, handle);
    l->fd = fd;
    l->nonce = h.nonce;
    sock_addr_format((const struct sockaddr *)&h.ss, l->addr, sizeof l->addr);
    TCPX_DEBUG("socket transport: listening on %s", l->addr);
    *listen_comm = l;
    return TCPX_OK;
}

static void drop(sock_lcomm *l, sock_pend *p, const char *why)
{
    TCPX_WARN("socket transport: dropped connection from %s to %s: %s", p->peer, l->addr, why);
    close(p->fd);
    p->fd = -1;
}

static void compact(sock_lcomm *l)
{
    int j = 0;
    for (int i = 0; i < l->npend; i++)
        if (l->pend[i].fd >= 0) {
            if (i != j) l->pend[j] = l->pend[i];
            j++;
        }
    l->npend = j;
}

/* Accept what has arrived; a call with no arrival since the last costs no
 * system call. */
static void take_new(sock_lcomm *l, uint64_t now)
{
    if (!atomic_exchange(&l->arrivals.ready, 0)) return;
    for (int k = 0; k < SOCK_ACCEPTS_PER_CALL; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                TCPX_WARN("socket transport: accept on %s failed: %s", l->addr, strerror(errno));
                atomic_store(&l->arrivals.ready, 1); /* try again next call */
            }
            return;
        }
        if (l->npend == SOCK_MAX_PENDING) {
            /* Full: drop the oldest that has not said hello (else the oldest). */
            int victim = 0;
            for (int i = 0; i < l->npend; i++)
                if (!l->pend[i].ready) {
                    victim = i;
                    break;
                }
            drop(l, &l->pend[victim], "too many half-open connections");
            compact(l);
        }
        sock_pend *p = &l->pend[l->npend++];
        memset(p, 0, sizeof *p);
        p->fd = fd;
        p->t0 = now;
        sock_addr_format((const struct sockaddr *)&ss, p->peer, sizeof p->peer);
    }
    atomic_store(&l->arrivals.ready, 1); /* more may be waiting: no new edge will say so */
}

/* A complete hello on p: check it against the listener and its group. */
static void check_hello(sock_lcomm *l, sock_pend *p)
{
    if (sock_hello_decode(p->buf, sizeof p->buf, &p->h) != TCPX_OK) {
        char why[300];
        snprintf(why, sizeof why, "malformed hello: %s", tcpx_last_error());
        drop(l, p, why);
        return;
    }
    if (p->h.nonce != l->nonce) {
        drop(l, p, "hello for another listener");
        return;
    }
    for (int i = 0; i < l->npend; i++) {
        sock_pend *q = &l->pend[i];
        if (q == p || q->fd < 0 || !q->ready || q->h.comm_id != p->h.comm_id) continue;
        if (q->h.count != p->h.count || q->h.index == p->h.index) {
            drop(l, p, "hello conflicts with another socket of its comm");
            return;
        }
    }
    p->ready = 1;
}

static void read_hellos(sock_lcomm *l, uint64_t now, uint64_t timeout_ns)
{
    for (int i = 0; i < l->npend; i++) {
        sock_pend *p = &l->pend[i];
        while (p->fd >= 0 && !p->ready) {
            ssize_t r = recv(p->fd, p->buf + p->got, SOCK_HELLO_SIZE - p->got, MSG_DONTWAIT);
            if (r > 0) {
                p->got += (size_t)r;
                if (p->got == SOCK_HELLO_SIZE) check_hello(l, p);
                continue;
            }
            if (r == 0) {
                drop(l, p, "closed before a complete hello");
            } else if (errno == EINTR) {
                continue;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                char why[128];
                snprintf(why, sizeof why, "reading its hello failed: %s", strerror(errno));
                drop(l, p, why);
            }
            break;
        }
        if (p->fd >= 0 && now - p->t0 > timeout_ns)
            drop(l, p, p->ready ? "the other sockets of its comm did not arrive in time" : "no hello in time");
    }
    compact(l);
}

/* Index in l->pend of the first socket of a complete comm, or -1. */
static int complete_group(sock_lcomm *l)
{
    for (int i = 0; i < l->npend; i++) {
        if (!l->pend[i].ready) continue;
        uint32_t have = 0;
        for (int j = 0; j < l->npend; j++)
            have += l->pend[j].ready && l->pend[j].h.comm_id == l->pend[i].h.comm_id;
        if (have == l->pend[i].h.count) return i;
    }
    return -1;
}

int sock_accept(tcpx_net *net, void *listen_comm, void **recv_comm)
{
    sock_net *n = (sock_net *)net;
    sock_lcomm *l = listen_comm;
    if (!l || !recv_comm) return tcpx_set_error(TCPX_ERR_INVALID, "accept: NULL argument");
    *recv_comm = NULL;
    uint64_t now = tcpx_now_ns();
    take_new(l, now);
    read_hellos(l, now, (uint64_t)n->hello_timeout_ms * 1000000ull);
    int g = complete_group(l);
    if (g < 0) return TCPX_OK;

    uint64_t id = l->pend[g].h.comm_id;
    int count = (int)l->pend[g].h.count;
    int fds[SOCK_MAX_SOCKS];
    char peer[SOCK_ADDR_STRLEN];
    memcpy(peer, l->pend[g].peer, sizeof peer);
    for (int i = 0; i < l->npend; i++) {
        sock_pend *p = &l->pend[i];
        if (!p->ready || p->h.comm_id != id) continue;
        fds[p->h.index] = p->fd;
        p->fd = -1;
    }
    compact(l);
    sock_comm *c;
    int rc = sock_comm_create(n, 0, fds, count, peer, &c);
    if (rc) return rc;
    *recv_comm = c;
    return TCPX_OK;
}

int sock_close_listen(tcpx_net *n, void *listen_comm)
{
    sock_lcomm *l = listen_comm;
    if (!l) return TCPX_OK;
    sock_poller_unwatch(&l->arrivals);
    close(l->fd);
    for (int i = 0; i < l->npend; i++) close(l->pend[i].fd);
    free(l);
    return TCPX_OK;
}
