/* test_net_socket_util.h - helpers shared by the socket transport tests
 * (test_net_socket.c, test_net_socket_faults.c): a CHECK that counts
 * failures, connecting a pair in one process with a deadline, random data
 * without zeros, waiting on a request with a deadline, one verified message,
 * and raw TCP peers for fault injection. */
#ifndef TEST_NET_SOCKET_UTIL_H
#define TEST_NET_SOCKET_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "net/socket/sock.h"
#include "util/clock.h"

static int failures;
static atomic_int notifies;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, " (last error: %s)\n", tcpx_last_error());     \
        }                                                                  \
    } while (0)

#define DEADLINE_MS 10000

static inline void on_notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notifies, 1);
}

static inline tcpx_net *make_net(int socks, const char *bind)
{
    tcpx_net_opts o = {.socks_per_comm = socks,
                       .peer_timeout_ms = 10000,
                       .bind_addr = bind,
                       .notify = on_notify,
                       .notify_arg = NULL};
    tcpx_net *n = NULL;
    int rc = tcpx_net_socket_create(&o, &n);
    CHECK(rc == 0 && n, "create(%d sockets, \"%s\") = %d", socks, bind, rc);
    return n;
}

/* Connect n's send comm to listener l of m (may be the same instance). */
static inline int connect_pair(tcpx_net *n, tcpx_net *m, void *l, const void *handle, void **sc, void **rc_)
{
    void *state = NULL;
    *sc = *rc_ = NULL;
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while (!*sc || !*rc_) {
        if (!*sc) {
            int rc = n->connect_send(n, 0, handle, &state, sc);
            if (rc) {
                CHECK(0, "connect failed: %d", rc);
                return -1;
            }
        }
        if (!*rc_) {
            int rc = m->accept(m, l, rc_);
            if (rc) {
                CHECK(0, "accept failed: %d", rc);
                if (state) n->connect_abort(n, state);
                return -1;
            }
        }
        if (tcpx_past(dl)) {
            CHECK(0, "connect/accept did not finish in time");
            if (state) n->connect_abort(n, state);
            return -1;
        }
        if (!*sc || !*rc_) usleep(200);
    }
    CHECK(state == NULL, "connect state left after success");
    return 0;
}

static inline void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint8_t b = (uint8_t)(x >> 24);
        p[i] = b ? b : 0x5a;
    }
}

/* Index of the first differing byte, or -1. */
static inline long diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (!memcmp(a, b, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return (long)i;
    return -1;
}

/* Test req until done or error or deadline: returns rc, *done, *size. */
static inline int wait_req(tcpx_net *n, void *req, size_t *size, int ms)
{
    uint64_t dl = tcpx_deadline_ms(ms);
    for (;;) {
        int done = 0;
        int rc = n->test(n, req, &done, size);
        if (rc || done) return rc;
        if (tcpx_past(dl)) return 1; /* still pending: caller reports */
        usleep(50);
    }
}

/* One message of `size` bytes into a receive of `cap` bytes, verified. */
static inline void xfer(tcpx_net *n, void *sc, void *rcm, size_t size, size_t cap, uint64_t seed)
{
    uint8_t *src = malloc(size ? size : 1), *dst = malloc(cap ? cap : 1);
    fill(src, size, seed);
    memset(dst, 0, cap ? cap : 1);
    void *rr = NULL, *sr = NULL;
    int rc = n->irecv(n, rcm, cap ? dst : NULL, cap, 0, NULL, &rr);
    CHECK(rc == 0 && rr, "irecv(%zu) = %d", cap, rc);
    rc = n->isend(n, sc, size ? src : NULL, size, 0, NULL, &sr);
    CHECK(rc == 0 && sr, "isend(%zu) = %d", size, rc);
    size_t got = 12345, sent = 12345;
    if (sr) CHECK((rc = wait_req(n, sr, &sent, DEADLINE_MS)) == 0, "send of %zu bytes: rc %d", size, rc);
    if (rr) CHECK((rc = wait_req(n, rr, &got, DEADLINE_MS)) == 0, "recv of %zu bytes: rc %d", size, rc);
    CHECK(sent == size, "send reported %zu of %zu", sent, size);
    CHECK(got == size, "recv reported %zu of %zu", got, size);
    long d = diff(src, dst, size);
    CHECK(d < 0, "message of %zu bytes differs at byte %ld", size, d);
    for (size_t i = size; i < cap && i < size + 4096; i++)
        if (dst[i] != 0) {
            CHECK(0, "byte %zu past a %zu-byte message was written", i, size);
            break;
        }
    free(src);
    free(dst);
}


static inline int raw_connect(const void *handle)
{
    sock_handle h;
    if (sock_handle_decode(handle, TCPX_NET_HANDLE_SIZE, &h) != TCPX_OK) return -1;
    int fd = socket(h.ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&h.ss, h.len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 once the listener has closed its end of fd (EOF or reset). */
static inline int raw_closed(int fd)
{
    char b[256];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0) return 1;
        if (r > 0) continue;
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

static inline int send_hdr(int fd, uint64_t total)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(total >> (8 * i));
    return send(fd, b, sizeof b, MSG_NOSIGNAL) == (ssize_t)sizeof b ? 0 : -1;
}

/* A hand-made 2-socket peer: checks the wire format (hello, 8-byte header
 * on every socket, 4 KiB-aligned contiguous parts) and that sockets that
 * disagree on a message size fail the comm with TCPX_ERR_PROTOCOL. */
static inline double secs(uint64_t t0) { return (double)(tcpx_now_ns() - t0) / 1e9; }

#endif
