/* sock_comm.c - comm lifetime: sockets into the I/O thread pool, close. */
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
        pthread_mutex_init(&k->qmu, NULL);
        pthread_mutex_init(&k->mu, NULL);
        atomic_init(&k->kick, 0);
        atomic_init(&k->armed, 0);
        k->lowat = 1;
    }
    int err = 0;
    for (int i = 0; i < nsocks && !is_send && !err; i++)
        if (!(c->conns[i].rxb = malloc(SOCK_RXBUF)))
            err = tcpx_set_error(TCPX_ERR_NOMEM, "socket comm receive buffer allocation failed");
    for (int i = 0; i < nsocks && !err; i++) {
        sock_conn *k = &c->conns[i];
        sock_set_options(k->fd, n->peer_timeout_ms);
        if (sock_set_nonblocking(k->fd, 1))
            err = tcpx_set_error(TCPX_ERR_SYSTEM, "cannot make socket to %s non-blocking: %s", peer, strerror(errno));
        else
            err = sock_poller_attach(n, k);
    }
    if (err) {
        sock_comm_destroy(c);
        return err;
    }
    TCPX_DEBUG("socket transport: %s comm with %s over %d socket(s)", is_send ? "send" : "recv", peer, nsocks);
    *out = c;
    return TCPX_OK;
}

void sock_comm_destroy(sock_comm *c)
{
    if (!c) return;
    atomic_store(&c->closing, 1);
    sock_pollers_detach(c);
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        close(k->fd);
        free(k->rxb);
        pthread_mutex_destroy(&k->qmu);
        pthread_mutex_destroy(&k->mu);
    }
    /* No thread touches the comm now: free abandoned requests and the cache. */
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
