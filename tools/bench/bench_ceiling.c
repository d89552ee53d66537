/* bench_ceiling.c - raw TCP throughput over loopback between the two
 * benchmark processes: `streams` connections, a thread per stream on each
 * side, 1 MiB write()s for a fixed time, read() into a 1 MiB buffer until
 * EOF. The rate is the bytes the receiver read over the time from the
 * sender's start to the receiver's report that every stream hit EOF. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define IO_BYTES (1u << 20)

typedef struct stream {
    pthread_t thread;
    int fd;
    double until;          /* sender: stop writing at this time */
    uint64_t bytes;
    int err;
    const uint8_t *src;    /* sender: data to write */
} stream;

static void *recv_thread(void *arg)
{
    stream *st = arg;
    uint8_t *buf = malloc(IO_BYTES);
    if (!buf) {
        st->err = ENOMEM;
        return NULL;
    }
    for (;;) {
        ssize_t r = read(st->fd, buf, IO_BYTES);
        if (r > 0) st->bytes += (uint64_t)r;
        else if (r == 0) break;
        else if (errno != EINTR) {
            st->err = errno;
            break;
        }
    }
    free(buf);
    return NULL;
}

static void *send_thread(void *arg)
{
    stream *st = arg;
    while (bench_now() < st->until) {
        size_t off = 0;
        while (off < IO_BYTES) {
            ssize_t w = write(st->fd, st->src + off, IO_BYTES - off);
            if (w > 0) {
                off += (size_t)w;
                st->bytes += (uint64_t)w;
            } else if (errno != EINTR) {
                st->err = errno;
                return NULL;
            }
        }
    }
    shutdown(st->fd, SHUT_WR);
    return NULL;
}

void bench_ceiling_recv(int boot, int streams)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) bench_die("ceiling: socket: %s", strerror(errno));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, streams) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen))
        bench_die("ceiling: listen on 127.0.0.1: %s", strerror(errno));
    boot_send_u64(boot, ntohs(a.sin_port));

    stream *ss = calloc((size_t)streams, sizeof *ss);
    for (int i = 0; i < streams; i++) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, BENCH_IO_TIMEOUT_MS) != 1) bench_die("ceiling: sender did not connect");
        ss[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (ss[i].fd < 0) bench_die("ceiling: accept: %s", strerror(errno));
    }
    close(lfd);
    for (int i = 0; i < streams; i++)
        if (pthread_create(&ss[i].thread, NULL, recv_thread, &ss[i])) bench_die("ceiling: pthread_create");
    uint64_t total = 0;
    for (int i = 0; i < streams; i++) {
        pthread_join(ss[i].thread, NULL);
        if (ss[i].err) bench_die("ceiling: read on stream %d: %s", i, strerror(ss[i].err));
        total += ss[i].bytes;
        close(ss[i].fd);
    }
    free(ss);
    boot_send_u64(boot, total);
}

double bench_ceiling_send(int boot, int streams, double seconds)
{
    uint16_t port = (uint16_t)boot_recv_u64(boot);
    uint8_t *src = malloc(IO_BYTES);
    if (!src) bench_die("ceiling: out of memory");
    bench_random_fill(0xCE11, 0, src, IO_BYTES);

    stream *ss = calloc((size_t)streams, sizeof *ss);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    for (int i = 0; i < streams; i++) {
        ss[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ss[i].fd < 0 || connect(ss[i].fd, (struct sockaddr *)&a, sizeof a))
            bench_die("ceiling: connect to 127.0.0.1:%u: %s", port, strerror(errno));
        ss[i].src = src;
    }
    double t0 = bench_now();
    for (int i = 0; i < streams; i++) {
        ss[i].until = t0 + seconds;
        if (pthread_create(&ss[i].thread, NULL, send_thread, &ss[i])) bench_die("ceiling: pthread_create");
    }
    uint64_t sent = 0;
    for (int i = 0; i < streams; i++) {
        pthread_join(ss[i].thread, NULL);
        if (ss[i].err) bench_die("ceiling: write on stream %d: %s", i, strerror(ss[i].err));
        sent += ss[i].bytes;
    }
    uint64_t got = boot_recv_u64(boot);
    double t1 = bench_now();
    for (int i = 0; i < streams; i++) close(ss[i].fd);
    free(ss);
    free(src);
    if (got != sent) bench_die("ceiling: sent %llu bytes, receiver read %llu", (unsigned long long)sent,
                               (unsigned long long)got);
    return (double)got / (t1 - t0) / 1e9;
}
