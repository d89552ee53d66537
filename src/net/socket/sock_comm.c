/* sock_comm.c - comm lifetime: sockets, one I/O thread each, failure, close. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"

#define SOCK_THREAD_STACK (512 * 1024)

void sock_notify(sock_net *n)
{
    if (n->notify) n->notify(n->notify_arg);
}

static int start_thread(sock_conn *k)
{
    pthread_attr_t attr;
    sigset_t all, old;
    if (pthread_attr_init(&attr)) return -1;
    pthread_attr_setstacksize(&attr, SOCK_THREAD_STACK);
    /* I/O threads take no signals: the application's handlers run elsewhere. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&k->thread, &attr, sock_conn_thread, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) return -1;
    k->started = 1;
    return 0;
}

int sock_comm_create(sock_net *n, int is_send, const int *fds, int nsocks, const char *peer, sock_comm **out)
{
    *out = NULL;
    sock_comm *c = calloc(1, sizeof *c + (size_t)nsocks * sizeof(sock_conn));
    if (!c) {
        for (int i = 0; i < nsocks; i++) close(fds[i]);
        return tcpx_set_error(TCPX_ERR_NOMEM, "socket comm allocation failed");
    }
    c->net = n;
    c->is_send = is_send;
    c->nsocks = nsocks;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    atomic_init(&c->fail_claimed, 0);
    atomic_init(&c->fail_status, 0);
    atomic_init(&c->closing, 0);
    for (int i = 0; i < nsocks; i++) {
        sock_conn *k = &c->conns[i];
        k->fd = fds[i];
        k->index = i;
        k->comm = c;
        pthread_mutex_init(&k->mu, NULL);
        pthread_cond_init(&k->cv, NULL);
    }
    int err = 0;
    for (int i = 0; i < nsocks && !err; i++) {
        sock_conn *k = &c->conns[i];
        sock_set_options(k->fd, n->peer_timeout_ms);
        if (sock_set_nonblocking(k->fd, 0)) {
            err = tcpx_set_error(TCPX_ERR_SYSTEM, "cannot make socket to %s blocking: %s", peer, strerror(errno));
        } else if (start_thread(k)) {
            err = tcpx_set_error(TCPX_ERR_SYSTEM, "cannot start an I/O thread for %s", peer);
        }
    }
    if (err) {
        sock_comm_destroy(c);
        return err;
    }
    TCPX_DEBUG("socket transport: %s comm with %s over %d socket(s)", is_send ? "send" : "recv", peer, nsocks);
    *out = c;
    return TCPX_OK;
}

void sock_comm_fail(sock_comm *c, int st, const char *fmt, ...)
{
    if (atomic_exchange(&c->fail_claimed, 1)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&c->fail_status, st, memory_order_release);
    int closing = atomic_load(&c->closing);
    if (!closing) {
        if (st == TCPX_ERR_PEER)
            TCPX_INFO("socket transport: %s", c->fail_msg);
        else
            TCPX_WARN("socket transport: %s", c->fail_msg);
    }
    /* Wake every thread of the comm out of its blocking call; they then
     * drain their queues without touching user buffers. The fds stay open
     * until close joins the threads, so this never hits a reused fd. */
    for (int i = 0; i < c->nsocks; i++) shutdown(c->conns[i].fd, SHUT_RDWR);
    if (!closing) sock_notify(c->net);
}

void sock_comm_destroy(sock_comm *c)
{
    if (!c) return;
    atomic_store(&c->closing, 1);
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        if (k->started) shutdown(k->fd, SHUT_RDWR);
    }
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        if (k->started) pthread_join(k->thread, NULL);
    }
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        close(k->fd);
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
    }
    /* No thread runs now: free abandoned requests and the cache. */
    while (c->live) {
        sock_req *r = c->live;
        c->live = r->next;
        free(r->iov_store);
        free(r);
    }
    while (c->free_reqs) {
        sock_req *r = c->free_reqs;
        c->free_reqs = r->next;
        free(r->iov_store);
        free(r);
    }
    free(c);
}
