/* bench_ceiling.c - raw TCP throughput over loopback between the two
 * benchmark processes: `streams` connections, a thread per stream on each
 * side, 1 MiB write()s for a fixed time, read()s until EOF. Each side walks
 * through buffers as large as the benchmark's own (the working set, split
 * over the streams), so the ceiling pays the same memory traffic as the
 * library does; called with one megabyte per stream it gives the classic
 * cache-hot figure. Only the transfer is timed: both sides map and fill
 * their buffers and connect first, the receiver's threads start reading,
 * and only then (a "go" over the bootstrap) does the sender start writing.
 * The rate is measured by the receiver: bytes read over the time from the
 * first byte to the last, across all streams. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define IO_BYTES (1u << 20)

typedef struct stream {
    pthread_t thread;
    int fd;
    double until;          /* sender: stop writing at this time */
    uint64_t bytes;
    double first, last;    /* receiver: times of the first and last bytes read */
    int err;
    uint8_t *buf;          /* this stream's slice of the working set */
    size_t len;            /* a multiple of IO_BYTES */
} stream;

/* The working set, page-backed up front, one slice per stream. */
static uint8_t *slices(stream *ss, int streams, size_t working_set)
{
    size_t per = working_set / (size_t)streams / IO_BYTES * IO_BYTES;
    if (per < IO_BYTES) per = IO_BYTES;
    uint8_t *m = mmap(NULL, per * (size_t)streams, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                      -1, 0);
    if (m == MAP_FAILED) bench_die("ceiling: cannot map %zu bytes", per * (size_t)streams);
    bench_random_fill(0xCE11, 0, m, per * (size_t)streams);
    for (int i = 0; i < streams; i++) {
        ss[i].buf = m + per * (size_t)i;
        ss[i].len = per;
    }
    return m;
}

static void *recv_thread(void *arg)
{
    stream *st = arg;
    size_t pos = 0;
    for (;;) {
        size_t n = IO_BYTES - pos % IO_BYTES;
        ssize_t r = read(st->fd, st->buf + pos, n);
        if (r > 0) {
            double t = bench_now();
            if (!st->bytes) st->first = t;
            st->last = t;
            st->bytes += (uint64_t)r;
            pos = (pos + (size_t)r) % st->len;
        } else if (r == 0) break;
        else if (errno != EINTR) {
            st->err = errno;
            break;
        }
    }
    return NULL;
}

static void *send_thread(void *arg)
{
    stream *st = arg;
    for (size_t base = 0; bench_now() < st->until; base = (base + IO_BYTES) % st->len) {
        size_t off = 0;
        while (off < IO_BYTES) {
            ssize_t w = write(st->fd, st->buf + base + off, IO_BYTES - off);
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

double bench_ceiling_recv(int boot, int streams, size_t working_set)
{
    stream *ss = calloc((size_t)streams, sizeof *ss);
    if (!ss) bench_die("ceiling: out of memory");
    uint8_t *ws = slices(ss, streams, working_set); /* before the clock can start */
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
    for (int i = 0; i < streams; i++) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, BENCH_IO_TIMEOUT_MS) != 1) bench_die("ceiling: sender did not connect");
        ss[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (ss[i].fd < 0) bench_die("ceiling: accept: %s", strerror(errno));
    }
    close(lfd);
    for (int i = 0; i < streams; i++)
        if (pthread_create(&ss[i].thread, NULL, recv_thread, &ss[i])) bench_die("ceiling: pthread_create");
    boot_send_u64(boot, 1); /* go */
    uint64_t total = 0;
    double first = 0, last = 0;
    for (int i = 0; i < streams; i++) {
        pthread_join(ss[i].thread, NULL);
        if (ss[i].err) bench_die("ceiling: read on stream %d: %s", i, strerror(ss[i].err));
        if (ss[i].bytes) {
            if (!total || ss[i].first < first) first = ss[i].first;
            if (ss[i].last > last) last = ss[i].last;
        }
        total += ss[i].bytes;
        close(ss[i].fd);
    }
    munmap(ws, ss[0].len * (size_t)streams);
    free(ss);
    double gbps = total && last > first ? (double)total / (last - first) / 1e9 : 0;
    boot_send_u64(boot, total);
    boot_send_f64(boot, gbps);
    return gbps;
}

double bench_ceiling_send(int boot, int streams, double seconds, size_t working_set)
{
    stream *ss = calloc((size_t)streams, sizeof *ss);
    if (!ss) bench_die("ceiling: out of memory");
    uint8_t *ws = slices(ss, streams, working_set);
    uint16_t port = (uint16_t)boot_recv_u64(boot);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    for (int i = 0; i < streams; i++) {
        ss[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ss[i].fd < 0 || connect(ss[i].fd, (struct sockaddr *)&a, sizeof a))
            bench_die("ceiling: connect to 127.0.0.1:%u: %s", port, strerror(errno));
    }
    boot_recv_u64(boot); /* the receiver reads on every stream */
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
    double gbps = boot_recv_f64(boot);
    for (int i = 0; i < streams; i++) close(ss[i].fd);
    munmap(ws, ss[0].len * (size_t)streams);
    free(ss);
    if (got != sent) bench_die("ceiling: sent %llu bytes, receiver read %llu", (unsigned long long)sent,
                               (unsigned long long)got);
    return gbps;
}

size_t bench_ceiling_working_set(const bench_opts *o)
{
    if (o->ceiling_ws) return o->ceiling_ws;
    size_t max = 0;
    for (int i = 0; i < o->nsizes; i++)
        if (o->sizes[i] > max) max = o->sizes[i];
    max *= (size_t)o->blocks; /* a message is a list of that many blocks */
    size_t ws = max * (size_t)o->inflight;
    if (ws / (size_t)o->inflight != max || ws > o->max_slot_bytes) ws = o->max_slot_bytes;
    return ws;
}
