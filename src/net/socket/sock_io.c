/* sock_io.c - moving parts through non-blocking sockets, and
 * isend/irecv/test.
 *
 * A request is cut into one part per socket and part i is appended to
 * socket i's FIFO. Every socket carries every message: an 8-byte
 * little-endian header with the total size, then its part (possibly empty).
 * The part at the head of a FIFO is moved by sock_conn_run, from the
 * caller's thread (post and test: the short path) or from an I/O thread when
 * epoll says the socket is ready (see sock_conn_run for who waits when). The mover's last access to a request is
 * the decrement of parts_left, so a request whose parts_left reads 0 belongs
 * to the caller alone. A message may be made of several pieces of memory
 * (isendv/irecvv): a part then covers whatever pieces its byte range falls
 * into, moved with sendmsg/recvmsg in windows of at most SOCK_IOV_WINDOW
 * pieces.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "net/socket/sock.h"
#include "util/clock.h"
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

/* ---- moving the head part of a socket ---- */

enum step { STEP_DONE, STEP_AGAIN, STEP_BUDGET, STEP_FAIL };

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

/* Up to SOCK_IOV_WINDOW iovecs (after *n already there) for bytes
 * [off, off+len) of r's pieces. */
static void window(const sock_req *r, size_t off, size_t len, struct iovec *win, int *n)
{
    size_t pos = 0;
    for (int i = 0; i < r->niov && len && *n < SOCK_IOV_WINDOW; i++) {
        size_t plen = r->iov[i].iov_len;
        if (pos + plen <= off) {
            pos += plen;
            continue;
        }
        size_t skip = off - pos, take = plen - skip < len ? plen - skip : len;
        win[(*n)++] = (struct iovec){(char *)r->iov[i].iov_base + skip, take};
        pos += plen;
        off += take;
        len -= take;
    }
}

/* One sendmsg/recvmsg without blocking: bytes moved, 0 at end of stream
 * (receive), -1 with errno. */
static ssize_t move_once(int fd, int is_send, struct iovec *win, int n)
{
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = win;
    msg.msg_iovlen = (size_t)n;
    for (;;) {
        ssize_t r = is_send ? sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) : recvmsg(fd, &msg, MSG_DONTWAIT);
        if (r >= 0 || errno != EINTR) return r;
    }
}

static enum step failed_io(sock_conn *k, ssize_t r)
{
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return STEP_AGAIN;
    io_error(k->comm, r < 0 ? errno : 0, r == 0);
    return STEP_FAIL;
}

static enum step step_send(sock_conn *k, sock_req *r, size_t *budget)
{
    sock_comm *c = k->comm;
    if (!k->started) {
        sock_part_range(r->size, c->nsocks, k->index, &k->off, &k->len);
        for (int i = 0; i < 8; i++) k->hdr[i] = (uint8_t)((uint64_t)r->size >> (8 * i));
        k->hdr_done = k->done = 0;
        k->started = 1;
    }
    while (k->hdr_done < 8 || k->done < k->len) {
        if (!*budget) return STEP_BUDGET;
        struct iovec win[SOCK_IOV_WINDOW];
        int n = 0;
        if (k->hdr_done < 8) win[n++] = (struct iovec){k->hdr + k->hdr_done, 8 - k->hdr_done};
        size_t want = k->len - k->done < *budget ? k->len - k->done : *budget;
        window(r, k->off + k->done, want, win, &n);
        ssize_t m = move_once(k->fd, 1, win, n);
        if (m <= 0) return m == 0 ? STEP_AGAIN : failed_io(k, m);
        size_t h = 8 - k->hdr_done < (size_t)m ? 8 - k->hdr_done : (size_t)m;
        k->hdr_done += h;
        k->done += (size_t)m - h;
        *budget -= (size_t)m - h < *budget ? (size_t)m - h : *budget;
    }
    return STEP_DONE;
}

/* The header of a receive: the message's size, checked against the posted
 * capacity and the other sockets' headers; then the part's range. */
static enum step take_header(sock_conn *k, sock_req *r)
{
    sock_comm *c = k->comm;
    uint64_t total = 0;
    for (int i = 0; i < 8; i++) total |= (uint64_t)k->hdr[i] << (8 * i);
    if (total > r->size) {
        sock_comm_fail(c, TCPX_ERR_PROTOCOL, "message of %llu bytes from %s exceeds posted receive of %zu bytes",
                       (unsigned long long)total, c->peer, r->size);
        return STEP_FAIL;
    }
    size_t expect = SIZE_MAX;
    if (!atomic_compare_exchange_strong(&r->total, &expect, (size_t)total) && expect != total) {
        sock_comm_fail(c, TCPX_ERR_PROTOCOL, "sockets from %s disagree on a message size (%zu and %llu bytes)",
                       c->peer, expect, (unsigned long long)total);
        return STEP_FAIL;
    }
    sock_part_range((size_t)total, c->nsocks, k->index, &k->off, &k->len);
    k->done = 0;
    return STEP_DONE;
}

/* Copy n read-ahead bytes into the part at its current position. */
static void take_ahead(sock_conn *k, sock_req *r, size_t n)
{
    struct iovec win[SOCK_IOV_WINDOW];
    const uint8_t *src = k->rxb + k->rx_head;
    size_t left = n;
    while (left) {
        int nw = 0;
        window(r, k->off + k->done, left, win, &nw);
        for (int i = 0; i < nw; i++) {
            memcpy(win[i].iov_base, src, win[i].iov_len);
            src += win[i].iov_len;
            k->done += win[i].iov_len;
            left -= win[i].iov_len;
        }
    }
    k->rx_head += n;
}

/* Read what the socket has into the empty read-ahead buffer.
 *
 * A read that returned less than it asked for emptied the socket. A caller
 * that comes back for the next message within SOCK_DRAINED_NS (the next
 * queued part of the same pass, the next control frame tested by the same
 * round) would only get EAGAIN: at a message boundary (at_start) it is told
 * so without the system call, two of them per small message and side, on
 * the path to the answer (an answer cannot come back that fast: a loopback
 * round trip takes several microseconds). Inside a message, whose bytes
 * are on their way, and for an I/O thread, which epoll sent, it reads. */
static enum step fill_ahead(sock_conn *k, int at_start)
{
    k->rx_head = k->rx_tail = 0;
    if (at_start && !k->by_poller && k->drained_ns && tcpx_now_ns() - k->drained_ns < SOCK_DRAINED_NS)
        return STEP_AGAIN;
    struct iovec v = {k->rxb, SOCK_RXBUF};
    ssize_t m = move_once(k->fd, 0, &v, 1);
    if (m <= 0) {
        k->drained_ns = 0;
        return failed_io(k, m);
    }
    k->rx_tail = (size_t)m;
    k->drained_ns = (size_t)m < SOCK_RXBUF ? tcpx_now_ns() : 0;
    return STEP_DONE;
}

/* Read the rest of a part's body straight into the posted memory; when the
 * window reaches the part's end, the same recvmsg also reads up to
 * SOCK_TAIL_AHEAD bytes beyond it into the (empty) read-ahead buffer: the
 * next message's header, or all of a small one, without another system
 * call and without copying the body. */
static enum step read_direct(sock_conn *k, sock_req *r, size_t want, size_t *budget)
{
    struct iovec win[SOCK_IOV_WINDOW + 1];
    int n = 0;
    window(r, k->off + k->done, want, win, &n);
    size_t body = 0;
    for (int i = 0; i < n; i++) body += win[i].iov_len;
    size_t asked = body;
    k->rx_head = k->rx_tail = 0; /* empty: read_direct runs only when nothing is read ahead */
    if (body == k->len - k->done) {
        win[n++] = (struct iovec){k->rxb, SOCK_TAIL_AHEAD};
        asked += SOCK_TAIL_AHEAD;
    }
    ssize_t m = move_once(k->fd, 0, win, n);
    if (m <= 0) return failed_io(k, m);
    size_t got = (size_t)m < body ? (size_t)m : body;
    k->done += got;
    *budget -= got < *budget ? got : *budget;
    k->rx_tail = (size_t)m - got;
    k->drained_ns = (size_t)m < asked ? tcpx_now_ns() : 0;
    return STEP_DONE;
}

/* A socket that receives small messages acknowledges them late. Every
 * socket carries one direction only (a comm sends or receives), so no
 * answer ever carries an ACK: in TCP's default (quick-ACK) mode each small
 * message costs its receiver a pure ACK, sent from the recvmsg that read
 * it, and its sender the processing of that ACK, on the path to the
 * answer (~2 us per message on two cores: a single 4 KiB NIXL READ 12.3 ->
 * 10.0 us). TCP_QUICKACK = 0 puts the socket in delayed-ACK (ping-pong)
 * mode; an ACK still leaves once more than a segment is unacknowledged, so
 * the sender's window never waits on the delayed-ACK timer for long. The
 * kernel leaves that mode by itself (when the delayed-ACK timer fires, at
 * least 40 ms after the last unacknowledged message), so it is set again
 * at most every SOCK_ACK_REFRESH_NS. Called with k->mu held. */
static void delay_acks(sock_conn *k)
{
    uint64_t now = tcpx_now_ns();
    if (k->acks_set_ns && now - k->acks_set_ns < SOCK_ACK_REFRESH_NS) return;
    int off = 0;
    setsockopt(k->fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off); /* a hint: failure changes nothing */
    k->acks_set_ns = now;
}

/* A receive's part is read through the read-ahead buffer (its header and
 * body with one system call) when the posted share is at most
 * SOCK_AHEAD_MAX; a larger one reads its header alone and its body straight
 * into the posted memory (read_direct), since copying a large body out of
 * the read-ahead buffer costs more than the system call it saves. Bytes
 * already read ahead are always taken first. */
static enum step step_recv(sock_conn *k, sock_req *r, size_t *budget)
{
    if (!k->started) {
        k->hdr_done = 0;
        k->started = 1;
    }
    size_t off, cap_share;
    sock_part_range(r->size, k->comm->nsocks, k->index, &off, &cap_share);
    int ahead = cap_share <= SOCK_AHEAD_MAX;
    while (k->hdr_done < 8) {
        size_t avail = k->rx_tail - k->rx_head;
        if (avail) {
            size_t n = 8 - k->hdr_done < avail ? 8 - k->hdr_done : avail;
            memcpy(k->hdr + k->hdr_done, k->rxb + k->rx_head, n);
            k->rx_head += n;
            k->hdr_done += n;
        } else if (ahead) {
            enum step st = fill_ahead(k, k->hdr_done == 0);
            if (st != STEP_DONE) return st;
        } else {
            struct iovec h = {k->hdr + k->hdr_done, 8 - k->hdr_done};
            ssize_t m = move_once(k->fd, 0, &h, 1);
            if (m <= 0) return failed_io(k, m);
            k->hdr_done += (size_t)m;
        }
        if (k->hdr_done == 8 && take_header(k, r) != STEP_DONE) return STEP_FAIL;
        if (k->hdr_done == 8 && k->len <= SOCK_AHEAD_MAX) delay_acks(k);
    }
    while (k->done < k->len) {
        if (!*budget) return STEP_BUDGET;
        size_t want = k->len - k->done < *budget ? k->len - k->done : *budget;
        size_t avail = k->rx_tail - k->rx_head;
        if (avail) {
            size_t n = want < avail ? want : avail;
            take_ahead(k, r, n);
            *budget -= n;
            continue;
        }
        enum step st = k->len - k->done <= SOCK_AHEAD_MAX ? fill_ahead(k, 0) /* a small rest: read ahead */
                                                          : read_direct(k, r, want, budget);
        if (st != STEP_DONE) return st;
    }
    return STEP_DONE;
}

static sock_part *queue_head(sock_conn *k)
{
    pthread_mutex_lock(&k->qmu);
    sock_part *p = k->head;
    pthread_mutex_unlock(&k->qmu);
    return p;
}

/* The head part is finished (ok or not): pop it; the request's last part
 * notifies. */
static void part_done(sock_conn *k, sock_part *p, int ok)
{
    pthread_mutex_lock(&k->qmu);
    k->head = p->next;
    if (!k->head) k->tail = NULL;
    pthread_mutex_unlock(&k->qmu);
    k->started = 0;
    sock_req *r = p->req;
    sock_comm *c = k->comm;
    if (!ok) atomic_store_explicit(&r->failed, 1, memory_order_relaxed);
    /* Last touch of r: after this the caller may free it. */
    if (atomic_fetch_sub_explicit(&r->parts_left, 1, memory_order_acq_rel) == 1 && !atomic_load(&c->closing))
        sock_notify(c->net);
}

/* Move parts until the queue is empty, the socket would block or the
 * budget is spent. Called with k->mu held. */
static enum sock_stop advance(sock_conn *k, size_t budget)
{
    sock_comm *c = k->comm;
    for (;;) {
        sock_part *p = queue_head(k);
        if (!p) return SOCK_STOP_EMPTY;
        sock_req *r = p->req;
        if (sock_comm_failed(c)) { /* drain without touching user memory */
            part_done(k, p, 0);
            continue;
        }
        enum step s = r->is_send ? step_send(k, r, &budget) : step_recv(k, r, &budget);
        if (s == STEP_DONE || s == STEP_FAIL) {
            part_done(k, p, s == STEP_DONE);
            continue;
        }
        return s == STEP_BUDGET ? SOCK_STOP_BUDGET : SOCK_STOP_AGAIN;
    }
}

/* Bytes the head part still owes (*known = 0 for a receive whose header
 * has not come: then its posted share, an upper bound). Called with k->mu
 * held; 0 without a head part. */
static size_t head_left(sock_conn *k, int *known)
{
    sock_part *p = queue_head(k);
    *known = 0;
    if (!p) return 0;
    sock_req *r = p->req;
    if (!r->is_send && (!k->started || k->hdr_done < 8)) {
        size_t off, len;
        sock_part_range(r->size, k->comm->nsocks, k->index, &off, &len);
        return len;
    }
    *known = 1;
    return k->started ? k->len - k->done : 0;
}

/* The part that waits on k has at most SOCK_LAZY_MAX bytes to go. */
static int small_head(sock_conn *k)
{
    int known;
    return queue_head(k) && head_left(k, &known) <= SOCK_LAZY_MAX;
}

/* A receive waiting in a large body wakes its poller once a good piece of
 * it has come (SO_RCVLOWAT), not for every segment; a header or a body's
 * last bytes wake it at once. Never more than the part still owes, so the
 * mark is always reached. (Measured on 16 cores, 16 streams of 256 MiB GPU
 * messages: 15.2 -> 19.2 GB/s with 16 threads.) The mark matters only to a
 * socket armed in epoll; a mover that does not arm it (a polling caller
 * keeps it, or it is carried over) only lowers a mark above what the part
 * owes, and then to 1, where it stays: a caller polling a long body
 * otherwise paid a setsockopt for every piece that came (1 MiB WRITE on two
 * cores: ~9 per request). Called with k->mu held. */
static void set_lowat(sock_conn *k, int arming)
{
    if (k->comm->is_send) return;
    int known;
    size_t left = head_left(k, &known);
    int want = !known || !left ? 1 : left > SOCK_LOWAT_MAX ? (int)SOCK_LOWAT_MAX : (int)left;
    if (!arming) {
        if (k->lowat <= want) return;
        want = 1;
    }
    if (want == k->lowat) return;
    if (setsockopt(k->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) k->lowat = want;
}

/* The transport whose sockets this thread is polling (sock_caller_polls),
 * where such a caller moves every part itself. */
static __thread sock_net *tl_polling;

void sock_caller_polls(tcpx_net *net, int on)
{
    sock_net *n = (sock_net *)net;
    tl_polling = on && n->pollers_move_all ? n : NULL;
}

/* A caller that comes back at once (it polls) and moves every part: what it
 * leaves waits on the lazy list for its next poll, not for an I/O thread. */
static int caller_keeps(const sock_conn *k, int by_poller) { return !by_poller && tl_polling == k->comm->net; }

void sock_conn_run(sock_conn *k, int by_poller)
{
    int keep = caller_keeps(k, by_poller);
    /* A caller that keeps its sockets is their mover: it gets an I/O
     * thread's budget (a single 1 MiB NIXL WRITE on two cores, four calls
     * of 256 KiB -> one: 190 -> 177 us). */
    size_t budget = by_poller || keep ? SOCK_POLLER_BUDGET : SOCK_CALLER_BUDGET;
    for (;;) {
        if (pthread_mutex_trylock(&k->mu)) {
            /* Busy: ask the mover to look again, unless it just let go. */
            atomic_store(&k->kick, 1);
            if (pthread_mutex_trylock(&k->mu)) return;
        }
        atomic_store(&k->kick, 0);
        k->by_poller = by_poller;
        /* A comm being closed is left alone (its requests are abandoned). */
        enum sock_stop st = atomic_load(&k->comm->closing) ? SOCK_STOP_EMPTY : advance(k, budget);
        int arm = st == SOCK_STOP_AGAIN && !keep && (by_poller || !small_head(k));
        set_lowat(k, arm);
        if (st == SOCK_STOP_BUDGET) {
            if (keep)
                sock_conn_lazy(k);
            else
                sock_conn_carry(k);
        } else if (st == SOCK_STOP_AGAIN) {
            if (arm)
                sock_conn_arm(k);
            else
                sock_conn_lazy(k);
        }
        pthread_mutex_unlock(&k->mu);
        if (!atomic_load(&k->kick)) return;
        /* A caller does not take over a large part because the poller keeps
         * finding it busy: the poller may have taken k off its list and
         * given up, so k goes back there. */
        if (st == SOCK_STOP_BUDGET && !by_poller) {
            if (keep)
                sock_conn_lazy(k);
            else
                sock_conn_carry(k);
            return;
        }
    }
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
    *request = r;
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        sock_part *p = &r->parts[i];
        p->req = r;
        p->next = NULL;
        pthread_mutex_lock(&k->qmu);
        int first = !k->head;
        if (k->tail)
            k->tail->next = p;
        else
            k->head = p;
        k->tail = p;
        pthread_mutex_unlock(&k->qmu);
        /* The short path: nothing queued ahead, so the caller moves it now
         * (a large part: its first SOCK_CALLER_BUDGET bytes, the pool the
         * rest: measured, that beats handing it over whole). Behind others:
         * the mover of those gets to it. */
        if (first) sock_conn_run(k, 0);
    }
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
    sock_comm *c = r->comm;
    if (atomic_load_explicit(&r->parts_left, memory_order_acquire) > 0) {
        /* The short path: the caller moves a small request's parts at the
         * head of their sockets itself (a receive's answer is read by whoever
         * polls). Large ones are the I/O threads' (a poll that moved them
         * would take milliseconds: a window of chunks), except for a polling
         * caller on a machine of one or two cores (sock_caller_polls), who
         * moves up to SOCK_POLLER_BUDGET of them per socket and call. A
         * part left on the lazy list (a caller stopped at its small rest)
         * waits for exactly this poll, whatever the request's size: a
         * request spread over several sockets (socks_per_comm > 1) left a
         * part there, which stalled until some thread went to sleep, and a
         * caller polling in a loop (NIXL's agent) never does. */
        int mine = r->size <= SOCK_CALLER_BUDGET || tl_polling == c->net;
        for (int i = 0; i < c->nsocks; i++) {
            sock_conn *k = &c->conns[i];
            if (queue_head(k) == &r->parts[i] && (mine || sock_conn_is_lazy(k))) sock_conn_run(k, 0);
        }
        if (atomic_load_explicit(&r->parts_left, memory_order_acquire) > 0) return TCPX_OK;
    }
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
