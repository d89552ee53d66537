/* sock_io.c - isend/irecv/test and the work of the per-socket I/O threads.
 *
 * A request is cut into one part per socket; the caller appends part i to
 * socket i's FIFO, and socket i's thread sends (or receives) it with blocking
 * calls. Every socket carries every message: an 8-byte little-endian header
 * with the total size, then its part (possibly empty). The thread's last
 * access to a request is the decrement of parts_left, so a request whose
 * parts_left reads 0 belongs to the caller alone. A message may be made of
 * several pieces of memory (isendv/irecvv): a part then covers whatever
 * pieces its byte range falls into, moved with sendmsg/recvmsg in windows of
 * at most SOCK_IOV_WINDOW pieces.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"

#define SOCK_FREE_CACHE 64
#define SOCK_IOV_WINDOW 256

void sock_part_range(size_t size, int nsocks, int index, size_t *off, size_t *len)
{
    size_t part = size / (size_t)nsocks + (size % (size_t)nsocks != 0);
    part = (part + SOCK_PART_ALIGN - 1) / SOCK_PART_ALIGN * SOCK_PART_ALIGN;
    size_t o = part * (size_t)index;
    if (o > size) o = size;
    *off = o;
    *len = size - o < part ? size - o : part;
}

/* ---- I/O thread side ---- */

static void io_error(sock_comm *c, int err, int eof)
{
    if (atomic_load(&c->closing)) {
        sock_comm_fail(c, TCPX_ERR_PEER, "connection to %s closed locally", c->peer);
    } else if (eof || err == ECONNRESET || err == EPIPE) {
        sock_comm_fail(c, TCPX_ERR_PEER, "connection to %s closed by peer", c->peer);
    } else if (err == ETIMEDOUT) {
        sock_comm_fail(c, TCPX_ERR_PEER, "connection to %s timed out: %s", c->peer, strerror(err));
    } else {
        sock_comm_fail(c, TCPX_ERR_PEER, "connection to %s failed: %s", c->peer, strerror(err));
    }
}

/* Drop the first `done` bytes from msg's iovecs (a partial sendmsg/recvmsg). */
static void skip_done(struct msghdr *msg, size_t done)
{
    while (msg->msg_iovlen && done >= msg->msg_iov[0].iov_len) {
        done -= msg->msg_iov[0].iov_len;
        msg->msg_iov++;
        msg->msg_iovlen--;
    }
    if (msg->msg_iovlen) {
        msg->msg_iov[0].iov_base = (char *)msg->msg_iov[0].iov_base + done;
        msg->msg_iov[0].iov_len -= done;
    }
}

/* 0, or -1 with errno. */
static int send_all(int fd, struct iovec *iov, int iovcnt)
{
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)iovcnt;
    while (msg.msg_iovlen) {
        ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        skip_done(&msg, (size_t)r);
    }
    return 0;
}

/* 0, 1 at end of stream, or -1 with errno. */
static int recv_all(int fd, struct iovec *iov, int iovcnt)
{
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)iovcnt;
    while (msg.msg_iovlen) {
        ssize_t r = recvmsg(fd, &msg, MSG_WAITALL);
        if (r == 0) return 1;
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        skip_done(&msg, (size_t)r);
    }
    return 0;
}

/* Move bytes [off, off+len) of r's pieces (after `hdr`, when given) through
 * fd, a window of pieces at a time. 0, 1 at end of stream, or -1 with errno. */
static int move_range(int fd, int is_send, sock_req *r, size_t off, size_t len, struct iovec *hdr)
{
    struct iovec win[SOCK_IOV_WINDOW];
    int n = 0;
    if (hdr) win[n++] = *hdr;
    size_t pos = 0;
    for (int i = 0; i < r->niov && len; i++) {
        size_t plen = r->iov[i].iov_len;
        if (pos + plen <= off) {
            pos += plen;
            continue;
        }
        size_t skip = off > pos ? off - pos : 0, take = plen - skip < len ? plen - skip : len;
        win[n++] = (struct iovec){(char *)r->iov[i].iov_base + skip, take};
        pos += plen;
        off += take;
        len -= take;
        if (n == SOCK_IOV_WINDOW) {
            int rc = is_send ? send_all(fd, win, n) : recv_all(fd, win, n);
            if (rc) return rc;
            n = 0;
        }
    }
    if (!n) return 0;
    return is_send ? send_all(fd, win, n) : recv_all(fd, win, n);
}

static int do_send(sock_conn *k, sock_req *r)
{
    sock_comm *c = k->comm;
    size_t off, len;
    sock_part_range(r->size, c->nsocks, k->index, &off, &len);
    uint8_t hdr[8];
    uint64_t total = r->size;
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(total >> (8 * i));
    struct iovec h = {hdr, sizeof hdr};
    if (move_range(k->fd, 1, r, off, len, &h)) {
        io_error(c, errno, 0);
        return -1;
    }
    return 0;
}

static int do_recv(sock_conn *k, sock_req *r)
{
    sock_comm *c = k->comm;
    uint8_t hdr[8];
    struct iovec h = {hdr, sizeof hdr};
    int rc = recv_all(k->fd, &h, 1);
    if (rc) {
        io_error(c, errno, rc == 1);
        return -1;
    }
    uint64_t total = 0;
    for (int i = 0; i < 8; i++) total |= (uint64_t)hdr[i] << (8 * i);
    if (total > r->size) {
        sock_comm_fail(c, TCPX_ERR_PROTOCOL, "message of %llu bytes from %s exceeds posted receive of %zu bytes",
                       (unsigned long long)total, c->peer, r->size);
        return -1;
    }
    size_t expect = SIZE_MAX;
    if (!atomic_compare_exchange_strong(&r->total, &expect, (size_t)total) && expect != total) {
        sock_comm_fail(c, TCPX_ERR_PROTOCOL, "sockets from %s disagree on a message size (%zu and %llu bytes)",
                       c->peer, expect, (unsigned long long)total);
        return -1;
    }
    size_t off, len;
    sock_part_range((size_t)total, c->nsocks, k->index, &off, &len);
    rc = len ? move_range(k->fd, 0, r, off, len, NULL) : 0;
    if (rc) {
        io_error(c, errno, rc == 1);
        return -1;
    }
    return 0;
}

static void run_part(sock_conn *k, sock_req *r)
{
    sock_comm *c = k->comm;
    int ok = 0;
    if (!sock_comm_failed(c)) ok = (r->is_send ? do_send(k, r) : do_recv(k, r)) == 0;
    if (!ok) atomic_store_explicit(&r->failed, 1, memory_order_relaxed);
    /* Last touch of r: after this the caller may free it. */
    if (atomic_fetch_sub_explicit(&r->parts_left, 1, memory_order_acq_rel) == 1 && !atomic_load(&c->closing))
        sock_notify(c->net);
}

void *sock_conn_thread(void *arg)
{
    sock_conn *k = arg;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        while (!k->head && !k->stop) {
            k->waiting = 1;
            pthread_cond_wait(&k->cv, &k->mu);
            k->waiting = 0;
        }
        if (k->stop) {
            pthread_mutex_unlock(&k->mu);
            break;
        }
        sock_part *p = k->head;
        k->head = p->next;
        if (!k->head) k->tail = NULL;
        pthread_mutex_unlock(&k->mu);
        run_part(k, p->req);
    }
    return NULL;
}

/* ---- caller side ---- */

static sock_req *req_get(sock_comm *c)
{
    sock_req *r = c->free_reqs;
    if (r) {
        c->free_reqs = r->next;
        c->nfree--;
    } else {
        r = malloc(sizeof *r + (size_t)c->nsocks * sizeof(sock_part));
        if (!r) return NULL;
        r->iov_store = NULL;
        r->iov_cap = 0;
    }
    r->comm = c;
    r->prev = NULL;
    r->next = c->live;
    if (c->live) c->live->prev = r;
    c->live = r;
    c->outstanding++;
    return r;
}

void sock_req_free(sock_req *r)
{
    sock_comm *c = r->comm;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->live = r->next;
    if (r->next) r->next->prev = r->prev;
    c->outstanding--;
    if (c->nfree < SOCK_FREE_CACHE) {
        r->next = c->free_reqs;
        c->free_reqs = r;
        c->nfree++;
    } else {
        free(r->iov_store);
        free(r);
    }
}

/* Hand r (pieces set) to every socket's thread. */
static int post(sock_comm *c, sock_req *r, int is_send, size_t size, void **request)
{
    r->is_send = is_send;
    r->size = size;
    atomic_init(&r->total, SIZE_MAX);
    atomic_init(&r->failed, 0);
    if (sock_comm_failed(c)) {
        /* A broken comm fails every later request without touching data. */
        atomic_init(&r->failed, 1);
        atomic_init(&r->parts_left, 0);
        *request = r;
        return TCPX_OK;
    }
    atomic_init(&r->parts_left, c->nsocks);
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        sock_part *p = &r->parts[i];
        p->req = r;
        p->next = NULL;
        pthread_mutex_lock(&k->mu);
        if (k->tail)
            k->tail->next = p;
        else
            k->head = p;
        k->tail = p;
        if (k->waiting) pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
    *request = r;
    return TCPX_OK;
}

static int post_one(sock_comm *c, int is_send, void *data, size_t size, void **request)
{
    *request = NULL;
    if (size && !data) return tcpx_set_error(TCPX_ERR_INVALID, "NULL buffer for a %zu-byte message", size);
    if (size > SIZE_MAX / 2) return tcpx_set_error(TCPX_ERR_INVALID, "message of %zu bytes is too large", size);
    if (c->outstanding >= SOCK_MAX_REQUESTS) return TCPX_OK;
    sock_req *r = req_get(c);
    if (!r) return tcpx_set_error(TCPX_ERR_NOMEM, "request allocation failed");
    r->one = (struct iovec){data, size};
    r->iov = &r->one;
    r->niov = 1;
    return post(c, r, is_send, size, request);
}

static int post_vec(sock_comm *c, int is_send, const tcpx_net_iov *iov, int niov, void **request)
{
    *request = NULL;
    if (niov < 1 || !iov) return tcpx_set_error(TCPX_ERR_INVALID, "vectored message of %d pieces", niov);
    size_t size = 0;
    for (int i = 0; i < niov; i++) {
        if (iov[i].len && !iov[i].base) return tcpx_set_error(TCPX_ERR_INVALID, "NULL piece %d of a message", i);
        if (iov[i].len > SIZE_MAX / 2 - size) return tcpx_set_error(TCPX_ERR_INVALID, "message too large");
        size += iov[i].len;
    }
    if (c->outstanding >= SOCK_MAX_REQUESTS) return TCPX_OK;
    sock_req *r = req_get(c);
    if (!r) return tcpx_set_error(TCPX_ERR_NOMEM, "request allocation failed");
    if (r->iov_cap < niov) {
        struct iovec *v = realloc(r->iov_store, (size_t)niov * sizeof *v);
        if (!v) {
            sock_req_free(r);
            return tcpx_set_error(TCPX_ERR_NOMEM, "request allocation failed");
        }
        r->iov_store = v;
        r->iov_cap = niov;
    }
    for (int i = 0; i < niov; i++) r->iov_store[i] = (struct iovec){iov[i].base, iov[i].len};
    r->iov = r->iov_store;
    r->niov = niov;
    return post(c, r, is_send, size, request);
}

int sock_isend(tcpx_net *n, void *comm, void *data, size_t size, int tag, void *mh, void **request)
{
    sock_comm *c = comm;
    if (!request) return tcpx_set_error(TCPX_ERR_INVALID, "isend: NULL request pointer");
    *request = NULL;
    if (!c || !c->is_send) return tcpx_set_error(TCPX_ERR_INVALID, "isend on something that is not a send comm");
    return post_one(c, 1, data, size, request);
}

int sock_irecv(tcpx_net *n, void *comm, void *data, size_t size, int tag, void *mh, void **request)
{
    sock_comm *c = comm;
    if (!request) return tcpx_set_error(TCPX_ERR_INVALID, "irecv: NULL request pointer");
    *request = NULL;
    if (!c || c->is_send) return tcpx_set_error(TCPX_ERR_INVALID, "irecv on something that is not a recv comm");
    return post_one(c, 0, data, size, request);
}

int sock_isendv(tcpx_net *n, void *comm, const tcpx_net_iov *iov, int niov, void **request)
{
    sock_comm *c = comm;
    if (!request) return tcpx_set_error(TCPX_ERR_INVALID, "isendv: NULL request pointer");
    *request = NULL;
    if (!c || !c->is_send) return tcpx_set_error(TCPX_ERR_INVALID, "isendv on something that is not a send comm");
    return post_vec(c, 1, iov, niov, request);
}

int sock_irecvv(tcpx_net *n, void *comm, const tcpx_net_iov *iov, int niov, void **request)
{
    sock_comm *c = comm;
    if (!request) return tcpx_set_error(TCPX_ERR_INVALID, "irecvv: NULL request pointer");
    *request = NULL;
    if (!c || c->is_send) return tcpx_set_error(TCPX_ERR_INVALID, "irecvv on something that is not a recv comm");
    return post_vec(c, 0, iov, niov, request);
}

int sock_test(tcpx_net *n, void *request, int *done, size_t *size)
{
    sock_req *r = request;
    if (done) *done = 0;
    if (!r) return tcpx_set_error(TCPX_ERR_INVALID, "test of a NULL request");
    if (atomic_load_explicit(&r->parts_left, memory_order_acquire) > 0) return TCPX_OK;
    sock_comm *c = r->comm;
    if (!atomic_load_explicit(&r->failed, memory_order_relaxed)) {
        if (size) *size = r->is_send ? r->size : atomic_load_explicit(&r->total, memory_order_relaxed);
        if (done) *done = 1;
        sock_req_free(r);
        return TCPX_OK;
    }
    int st = sock_comm_failed(c);
    sock_req_free(r);
    if (!st) return tcpx_set_error(TCPX_ERR_PEER, "connection to %s failed", c->peer);
    return tcpx_set_error(st, "%s", c->fail_msg);
}
