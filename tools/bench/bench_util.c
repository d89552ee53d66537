/* bench_util.c - errors, clocks, CPU time, bootstrap framing, random data. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "util/bytes.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bench_random_fill assumes a little-endian host"
#endif

const char *bench_role = "main";

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tcpx-bench [%s]: ", bench_role);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(NULL);
    _exit(1);
}

void bench_check(tcpx_status st, const char *what)
{
    if (st != TCPX_OK) bench_die("%s failed: %s (%d): %s", what, tcpx_strerror(st), (int)st, tcpx_last_error());
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ------------------------------------------------------------- bootstrap */

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) bench_die("bootstrap write: %s (peer process gone?)", w < 0 ? strerror(errno) : "0 bytes");
        c += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, BENCH_IO_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) bench_die("bootstrap read: no word from the other process in %d s", BENCH_IO_TIMEOUT_MS / 1000);
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) bench_die("bootstrap read: the other process exited");
        if (r < 0) bench_die("bootstrap read: %s", strerror(errno));
        c += r;
        n -= (size_t)r;
    }
}

void boot_send(int fd, const void *p, uint32_t len)
{
    uint8_t h[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    write_all(fd, h, 4);
    if (len) write_all(fd, p, len);
}

uint32_t boot_recv(int fd, void *p, uint32_t cap)
{
    uint8_t h[4];
    read_all(fd, h, 4);
    uint32_t len = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
    if (len > cap) bench_die("bootstrap: message of %u bytes, expected at most %u", len, cap);
    if (len) read_all(fd, p, len);
    return len;
}

void boot_send_u64(int fd, uint64_t v) { boot_send(fd, &v, sizeof v); }

uint64_t boot_recv_u64(int fd)
{
    uint64_t v;
    if (boot_recv(fd, &v, sizeof v) != sizeof v) bench_die("bootstrap: short number");
    return v;
}

void boot_send_f64(int fd, double v) { boot_send(fd, &v, sizeof v); }

double boot_recv_f64(int fd)
{
    double v;
    if (boot_recv(fd, &v, sizeof v) != sizeof v) bench_die("bootstrap: short number");
    return v;
}

/* ------------------------------------------------------------- random data */

uint64_t bench_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Word j of stream `seed` is splitmix64(seed + j * golden): seekable, and
 * fast enough (several GB/s) that filling and checking stay cheap. */
static inline uint64_t word_at(uint64_t seed, uint64_t j)
{
    uint64_t z = seed + (j + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bench_random_fill(uint64_t seed, size_t offset, void *dst, size_t n)
{
    uint8_t *d = dst;
    size_t o = offset;
    while (n && (o & 7)) { /* unaligned head */
        *d++ = (uint8_t)(word_at(seed, o >> 3) >> (8 * (o & 7)));
        o++;
        n--;
    }
    uint64_t j = o >> 3;
    for (; n >= 8; n -= 8, d += 8, j++) {
        uint64_t w = word_at(seed, j);
        memcpy(d, &w, 8); /* little-endian hosts: byte k of the word is byte o+k */
    }
    if (n) {
        uint64_t w = word_at(seed, j);
        for (size_t k = 0; k < n; k++) d[k] = (uint8_t)(w >> (8 * k));
    }
}

long bench_warmup(bench_ctx *c, int slots, long batch, bench_run_fn run, void *loop, long *w)
{
    double per_msg = 0, min_batch = c->o->seconds / 10;
    if (min_batch < 0.02) min_batch = 0.02;
    if (min_batch > 0.5) min_batch = 0.5;
    for (int round = 0;; round++) {
        boot_send_u64(c->boot, (uint64_t)batch);
        double t = bench_now();
        run(loop, *w, batch);
        double dt = bench_now() - t;
        *w += batch;
        per_msg = dt / (double)batch;
        if (round >= 1 && (dt >= min_batch || c->o->iters)) break;
        if (round >= 20 || *w > 100000000L) break;
        if (round >= 1) batch *= 2;
    }
    boot_send_u64(c->boot, 0);
    long n = c->o->iters;
    if (!n) {
        double want = c->o->seconds / (per_msg > 1e-9 ? per_msg : 1e-9);
        n = want > 5e7 ? 50000000L : (long)want + 1;
        if (n < 2L * slots) n = 2L * slots;
        n = (n + slots - 1) / slots * slots;
    }
    boot_send_u64(c->boot, (uint64_t)n);
    return n;
}

uint32_t bench_random_crc(uint32_t crc, uint64_t seed, size_t offset, size_t n)
{
    static __thread uint8_t tmp[256 * 1024];
    uint32_t c = crc;
    while (n) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        bench_random_fill(seed, offset, tmp, k);
        c = tcpx_crc32c_update(c, tmp, k);
        offset += k;
        n -= k;
    }
    return c;
}

void bench_mem_flip_bit(bench_mem *m, size_t off)
{
    uint8_t b;
    if (m->ops->read(m, off, &b, 1)) bench_die("--flip-bit-at: read failed");
    b ^= 0x10;
    if (m->ops->write(m, off, &b, 1)) bench_die("--flip-bit-at: write failed");
}
