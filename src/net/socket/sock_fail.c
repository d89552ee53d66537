/* sock_fail.c - a comm's failure: the first sentence wins, the sockets are
 * shut down so that every waiter sees it, and the owner is notified. Used
 * by the movers (sock_io.c) and the I/O threads (sock_poll.c) alike. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "net/socket/sock.h"
#include "util/log.h"

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
    /* Every socket reports ready (hang-up) to whoever waits on it, and the
     * queued parts then fail without touching user buffers. The fds stay
     * open until the comm is destroyed, so this never hits a reused fd. */
    for (int i = 0; i < c->nsocks; i++) shutdown(c->conns[i].fd, SHUT_RDWR);
    if (!closing) sock_notify(c->net);
}

