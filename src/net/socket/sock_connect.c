/* sock_connect.c - the non-blocking connect state machine.
 *
 * The first call opens socks_per_comm non-blocking sockets to the handle's
 * address; every call then finishes what connects it can and writes each
 * socket's hello. When every socket is connected and greeted the sockets
 * become a send comm. Errors free the state (and set *state to NULL).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

enum { ST_CONNECTING, ST_HELLO, ST_DONE };

typedef struct sock_cstate {
    sock_handle h;
    char peer[SOCK_ADDR_STRLEN];
    int nsocks;
    struct {
        int fd;
        int stage;
        size_t sent;
        uint8_t hello[SOCK_HELLO_SIZE];
    } s[];
} sock_cstate;

static void cstate_free(sock_cstate *st)
{
    if (!st) return;
    for (int i = 0; i < st->nsocks; i++)
        if (st->s[i].fd >= 0) close(st->s[i].fd);
    free(st);
}

void sock_connect_abort(tcpx_net *n, void *state) { cstate_free(state); }

static int fail(sock_cstate *st, void **state, int code, const char *what, int err)
{
    char peer[SOCK_ADDR_STRLEN];
    memcpy(peer, st->peer, sizeof peer);
    cstate_free(st);
    *state = NULL;
    return tcpx_set_error(code, "%s %s failed: %s", what, peer, strerror(err));
}

static int start(sock_net *n, const void *handle, void **state)
{
    sock_handle h;
    if (sock_handle_decode(handle, TCPX_NET_HANDLE_SIZE, &h) != TCPX_OK)
        return tcpx_set_error(TCPX_ERR_INVALID, "connect: the handle is not a socket transport listen handle: %s",
                              tcpx_last_error());
    int ns = n->socks_per_comm;
    sock_cstate *st = calloc(1, sizeof *st + (size_t)ns * sizeof st->s[0]);
    if (!st) return tcpx_set_error(TCPX_ERR_NOMEM, "connect state allocation failed");
    st->h = h;
    st->nsocks = ns;
    sock_addr_format((const struct sockaddr *)&h.ss, st->peer, sizeof st->peer);
    uint64_t comm_id = tcpx_random_u64();
    for (int i = 0; i < ns; i++) st->s[i].fd = -1;
    *state = st;
    for (int i = 0; i < ns; i++) {
        sock_hello hello = {.nonce = h.nonce, .comm_id = comm_id, .index = (uint32_t)i, .count = (uint32_t)ns};
        sock_hello_encode(&hello, st->s[i].hello);
        int fd = socket(h.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return fail(st, state, TCPX_ERR_SYSTEM, "socket for connecting to", errno);
        st->s[i].fd = fd;
        sock_set_options(fd, n->peer_timeout_ms);
        if (connect(fd, (const struct sockaddr *)&h.ss, h.len) == 0)
            st->s[i].stage = ST_HELLO;
        else if (errno == EINPROGRESS || errno == EINTR)
            st->s[i].stage = ST_CONNECTING;
        else
            return fail(st, state, TCPX_ERR_TRANSPORT, "connect to", errno);
    }
    return TCPX_OK;
}

int sock_connect(tcpx_net *net, int dev, const void *handle, void **state, void **send_comm)
{
    sock_net *n = (sock_net *)net;
    if (!state || !send_comm || !handle) return tcpx_set_error(TCPX_ERR_INVALID, "connect: NULL argument");
    *send_comm = NULL;
    if (dev != 0) return tcpx_set_error(TCPX_ERR_INVALID, "connect: no device %d (the socket transport has 1)", dev);
    if (!*state) {
        int rc = start(n, handle, state);
        if (rc) return rc;
    }
    sock_cstate *st = *state;
    int ns = st->nsocks;

    /* Finish connects that are done. */
    struct pollfd pfd[SOCK_MAX_SOCKS];
    int idx[SOCK_MAX_SOCKS], np = 0;
    for (int i = 0; i < ns; i++) {
        if (st->s[i].stage != ST_CONNECTING) continue;
        pfd[np] = (struct pollfd){.fd = st->s[i].fd, .events = POLLOUT};
        idx[np++] = i;
    }
    if (np && poll(pfd, (nfds_t)np, 0) > 0) {
        for (int j = 0; j < np; j++) {
            if (!pfd[j].revents) continue;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(pfd[j].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
            if (err == EINPROGRESS || err == EALREADY || err == EINTR) continue;
            if (err) return fail(st, state, TCPX_ERR_TRANSPORT, "connect to", err);
            st->s[idx[j]].stage = ST_HELLO;
        }
    }

    /* Write hellos where the socket is connected. */
    int done = 0;
    for (int i = 0; i < ns; i++) {
        if (st->s[i].stage == ST_HELLO) {
            while (st->s[i].sent < SOCK_HELLO_SIZE) {
                ssize_t r = send(st->s[i].fd, st->s[i].hello + st->s[i].sent, SOCK_HELLO_SIZE - st->s[i].sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    return fail(st, state, TCPX_ERR_TRANSPORT, "handshake with", errno);
                }
                st->s[i].sent += (size_t)r;
            }
            if (st->s[i].sent == SOCK_HELLO_SIZE) st->s[i].stage = ST_DONE;
        }
        done += st->s[i].stage == ST_DONE;
    }
    if (done < ns) return TCPX_OK;

    int fds[SOCK_MAX_SOCKS];
    for (int i = 0; i < ns; i++) {
        fds[i] = st->s[i].fd;
        st->s[i].fd = -1;
    }
    char peer[SOCK_ADDR_STRLEN];
    memcpy(peer, st->peer, sizeof peer);
    cstate_free(st);
    *state = NULL;
    sock_comm *c;
    int rc = sock_comm_create(n, 1, fds, ns, peer, &c);
    if (rc) return rc;
    *send_comm = c;
    return TCPX_OK;
}
