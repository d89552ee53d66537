/* test_gpu.c - the CUDA support layer (src/gpu/).
 *
 * Without a usable CUDA device (no CUDA in the build, no driver, no GPU) it
 * checks the host half (reproducible test data) and that GPU requests fail
 * with TCPX_ERR_UNSUPPORTED, then exits 77 with "SKIP: no CUDA device: ...".
 * With a device: pointer checks, pinned memory, copies and events, the
 * fill/compare kernels against the host generator, error reporting. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu.h"

static int g_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " [last error: %s]\n", tcpx_last_error());          \
            g_failures++;                                                       \
        }                                                                       \
    } while (0)

/* A call that must succeed; a failure ends the test (nothing after it
 * would be meaningful). */
#define MUST(call)                                                              \
    do {                                                                        \
        tcpx_status must_st_ = (call);                                          \
        if (must_st_ != TCPX_OK) {                                              \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,  \
                    tcpx_strerror(must_st_), tcpx_last_error());                \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

#define MIB ((size_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static uint64_t rnd(void) { return tcpx_random_word(0x5eed, rng_state++); }

/* ------------------------------------------------------------ host only */

static void test_host_generator(void)
{
    /* Known answer: pins the sequence (host and device must both follow it,
     * and data written by one version is checked by another). */
    static const unsigned char seed1[16] = {0x2a, 0x22, 0xe2, 0xc3, 0x96, 0x79, 0x28, 0x90,
                                            0xef, 0x1b, 0x80, 0x20, 0x95, 0x1c, 0xa1, 0xbb};
    unsigned char b[64];
    tcpx_fill_random_host(b, 16, 1);
    CHECK(memcmp(b, seed1, 16) == 0, "seed 1 known answer");
    CHECK(tcpx_random_word(tcpx_random_key(0x0123456789abcdefull), 1000000) == 0x001cab4d5cf08115ull,
          "word 1000000 known answer");

    /* Every length is a prefix of a longer fill; bytes past n untouched. */
    unsigned char ref[4096 + 16];
    tcpx_fill_random_host(ref, sizeof ref, 42);
    for (size_t n = 0; n <= 64; n++) {
        unsigned char buf[80];
        memset(buf, 0xA5, sizeof buf);
        tcpx_fill_random_host(buf + 3, n, 42);
        CHECK(buf[0] == 0xA5 && buf[1] == 0xA5 && buf[2] == 0xA5, "n=%zu: bytes before touched", n);
        CHECK(memcmp(buf + 3, ref, n) == 0, "n=%zu: not a prefix", n);
        for (size_t i = 3 + n; i < sizeof buf; i++) CHECK(buf[i] == 0xA5, "n=%zu: byte %zu after touched", n, i);
        CHECK(tcpx_compare_random_host(buf + 3, n, 42) == UINT64_MAX, "n=%zu: compare of a good buffer", n);
    }
    /* Different seeds, different data. */
    tcpx_fill_random_host(b, sizeof b, 43);
    CHECK(memcmp(b, ref, sizeof b) != 0, "seeds 42 and 43 gave the same bytes");

    /* Compare finds the first flipped byte. */
    for (int t = 0; t < 200; t++) {
        size_t n = 1 + rnd() % sizeof ref;
        size_t p = rnd() % n;
        unsigned char buf[sizeof ref];
        memcpy(buf, ref, n);
        buf[p] ^= (unsigned char)(1u << (rnd() % 8));
        uint64_t got = tcpx_compare_random_host(buf, n, 42);
        CHECK(got == p, "host compare: n=%zu flipped %zu, got %llu", n, p, (unsigned long long)got);
        if (p + 1 < n) {
            buf[n - 1] ^= 0xFF;
            CHECK(tcpx_compare_random_host(buf, n, 42) == p, "host compare: two flips, first at %zu", p);
        }
    }
}

static void test_unsupported(void)
{
    tcpx_gpu *g = (tcpx_gpu *)1;
    tcpx_status st = tcpx_gpu_open(0, &g);
    CHECK(st == TCPX_ERR_UNSUPPORTED, "open without a device: %s", tcpx_strerror(st));
    CHECK(g == NULL, "open without a device left a handle");
    CHECK(tcpx_last_error()[0] != '\0', "open without a device: no sentence");
    if (!tcpx_gpu_built())
        CHECK(strstr(tcpx_last_error(), "no CUDA support") != NULL, "no-CUDA sentence: %s", tcpx_last_error());
}

/* ------------------------------------------------------------ device */

static void test_check_ptr(tcpx_gpu *g, int ndev)
{
    const size_t sz = 4 * MIB;
    unsigned char *d;
    MUST(tcpx_gpu_malloc(g, sz, (void **)&d));
    CHECK(tcpx_gpu_check_ptr(g, d, sz) == TCPX_OK, "whole cudaMalloc allocation");
    CHECK(tcpx_gpu_check_ptr(g, d + 100, 1000) == TCPX_OK, "inside a cudaMalloc allocation");
    CHECK(tcpx_gpu_check_ptr(g, d + sz - 1, 1) == TCPX_OK, "last byte of an allocation");
    CHECK(tcpx_gpu_check_ptr(g, d, 0) == TCPX_OK, "pointer alone");

    tcpx_status st = tcpx_gpu_check_ptr(g, d, sz + 1);
    CHECK(st == TCPX_ERR_INVALID, "range past the allocation: %s", tcpx_strerror(st));
    CHECK(strstr(tcpx_last_error(), "past the end") != NULL, "sentence: %s", tcpx_last_error());
    st = tcpx_gpu_check_ptr(g, d + sz - 1, 2);
    CHECK(st == TCPX_ERR_INVALID, "last byte + 1 past the allocation: %s", tcpx_strerror(st));
    st = tcpx_gpu_check_ptr(g, d, SIZE_MAX);
    CHECK(st == TCPX_ERR_INVALID, "size wrapping around: %s", tcpx_strerror(st));

    void *h = malloc(sz);
    st = tcpx_gpu_check_ptr(g, h, 64);
    CHECK(st == TCPX_ERR_INVALID, "host malloc memory accepted: %s", tcpx_strerror(st));
    CHECK(strstr(tcpx_last_error(), "not CUDA device memory") != NULL, "sentence: %s", tcpx_last_error());
    free(h);
    int on_stack = 0;
    CHECK(tcpx_gpu_check_ptr(g, &on_stack, sizeof on_stack) == TCPX_ERR_INVALID, "stack memory accepted");
    CHECK(tcpx_gpu_check_ptr(g, NULL, 1) == TCPX_ERR_INVALID, "NULL accepted");

    void *pinned;
    MUST(tcpx_gpu_host_alloc(g, MIB, &pinned));
    st = tcpx_gpu_check_ptr(g, pinned, MIB);
    CHECK(st == TCPX_ERR_INVALID, "pinned host memory accepted as device memory: %s", tcpx_strerror(st));
    /* The sentence says pinned: cudaPointerGetAttributes saw cudaMemoryTypeHost,
     * i.e. host_alloc really pinned it. */
    CHECK(strstr(tcpx_last_error(), "pinned host memory") != NULL, "host_alloc memory is not pinned: %s",
          tcpx_last_error());
    tcpx_gpu_host_free(g, pinned);

    if (ndev > 1) {
        tcpx_gpu *g1;
        MUST(tcpx_gpu_open(1, &g1));
        void *d1;
        MUST(tcpx_gpu_malloc(g1, MIB, &d1));
        CHECK(tcpx_gpu_check_ptr(g1, d1, MIB) == TCPX_OK, "device 1 memory on device 1");
        st = tcpx_gpu_check_ptr(g, d1, MIB);
        CHECK(st == TCPX_ERR_INVALID, "device 1 memory accepted for device 0: %s", tcpx_strerror(st));
        CHECK(strstr(tcpx_last_error(), "device 1") && strstr(tcpx_last_error(), "device 0"),
              "sentence names both devices: %s", tcpx_last_error());
        tcpx_gpu_stream *s1;
        tcpx_gpu_event *e0;
        MUST(tcpx_gpu_stream_create(g1, &s1));
        MUST(tcpx_gpu_event_create(g, &e0));
        CHECK(tcpx_gpu_event_record(e0, s1) == TCPX_ERR_INVALID, "event recorded on another device's stream");
        tcpx_gpu_event_destroy(e0);
        tcpx_gpu_stream_destroy(s1);
        tcpx_gpu_free(g1, d1);
        tcpx_gpu_close(g1);
    } else {
        printf("  (one device: wrong-device check skipped)\n");
    }
    tcpx_gpu_free(g, d);
}

/* Wait for an event with a deadline, never blocking in CUDA. */
static tcpx_status wait_event(tcpx_gpu_event *e, double timeout_s, long *polls)
{
    double end = now_s() + timeout_s;
    for (*polls = 1;; ++*polls) {
        tcpx_status st = tcpx_gpu_event_query(e);
        if (st != TCPX_IN_PROGRESS) return st;
        if (now_s() > end) return TCPX_ERR_TIMEOUT;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

static void test_copies_events(tcpx_gpu *g)
{
    const size_t sz = 64 * MIB;
    unsigned char *h, *h2, *d;
    MUST(tcpx_gpu_host_alloc(g, sz, (void **)&h));
    MUST(tcpx_gpu_host_alloc(g, sz, (void **)&h2));
    MUST(tcpx_gpu_malloc(g, sz, (void **)&d));
    tcpx_gpu_stream *s;
    tcpx_gpu_event *e;
    MUST(tcpx_gpu_stream_create(g, &s));
    MUST(tcpx_gpu_event_create(g, &e));
    CHECK(tcpx_gpu_event_query(e) == TCPX_OK, "an event never recorded is complete");

    tcpx_fill_random_host(h, sz, 7);
    memset(h2, 0, sz);
    MUST(tcpx_gpu_memcpy_async(s, d, h, sz));
    MUST(tcpx_gpu_memcpy_async(s, h2, d, sz));
    MUST(tcpx_gpu_event_record(e, s));
    long polls;
    tcpx_status st = wait_event(e, 20.0, &polls);
    CHECK(st == TCPX_OK, "event after H2D+D2H of 64 MiB: %s", tcpx_strerror(st));
    printf("  64 MiB H2D + D2H done after %ld event queries\n", polls);
    CHECK(memcmp(h, h2, sz) == 0, "round trip through the device changed the bytes");
    CHECK(tcpx_gpu_memcpy_async(s, d, h, 0) == TCPX_OK, "zero-byte copy");

    /* D2D and the synchronous forms. */
    unsigned char *d2;
    MUST(tcpx_gpu_malloc(g, MIB, (void **)&d2));
    MUST(tcpx_gpu_memset(g, d2, 0x5A, MIB));
    MUST(tcpx_gpu_memcpy(g, h2, d2, MIB));
    size_t bad = 0;
    for (size_t i = 0; i < MIB; i++) bad += h2[i] != 0x5A;
    CHECK(bad == 0, "memset: %zu bytes differ", bad);
    MUST(tcpx_gpu_memcpy_async(s, d2, d + 12345, MIB));
    MUST(tcpx_gpu_stream_sync(s));
    MUST(tcpx_gpu_memcpy(g, h2, d2, MIB));
    CHECK(memcmp(h2, h + 12345, MIB) == 0, "device-to-device copy");

    tcpx_gpu_event_destroy(e);
    tcpx_gpu_stream_destroy(s);
    tcpx_gpu_free(g, d2);
    tcpx_gpu_free(g, d);
    tcpx_gpu_host_free(g, h2);
    tcpx_gpu_host_free(g, h);
}

static void flip_byte(tcpx_gpu *g, unsigned char *d, uint64_t at, unsigned char mask)
{
    unsigned char b;
    MUST(tcpx_gpu_memcpy(g, &b, d + at, 1));
    b ^= mask;
    MUST(tcpx_gpu_memcpy(g, d + at, &b, 1));
}

static void test_fill_compare(tcpx_gpu *g)
{
    static const size_t sizes[] = {1, 7, 8, 15, 16, 17, 4096 + 3, 64 * MIB + 5};
    static const size_t offsets[] = {0, 1, 3, 8, 13};
    const size_t guard = 32, cap = 64 * MIB + 5 + 16 + 2 * guard;
    unsigned char *d, *h, *ref;
    MUST(tcpx_gpu_malloc(g, cap, (void **)&d));
    MUST(tcpx_gpu_host_alloc(g, cap, (void **)&h));
    ref = malloc(cap);
    if (!ref) exit(1);
    tcpx_fill_random_host(ref, cap, 99);
    tcpx_gpu_stream *s;
    MUST(tcpx_gpu_stream_create(g, &s));

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof offsets / sizeof offsets[0]; j++) {
            size_t n = sizes[i], off = guard + offsets[j], span = n + off + guard;
            MUST(tcpx_gpu_memset_async(s, d, 0xA5, span));
            MUST(tcpx_gpu_fill_random(s, d + off, n, 99));
            uint64_t bad;
            MUST(tcpx_gpu_compare_random(s, d + off, n, 99, &bad));
            CHECK(bad == UINT64_MAX, "n=%zu off=%zu: device compare of device fill: %llu", n, off,
                  (unsigned long long)bad);
            MUST(tcpx_gpu_memcpy_async(s, h, d, span));
            MUST(tcpx_gpu_stream_sync(s));
            CHECK(memcmp(h + off, ref, n) == 0, "n=%zu off=%zu: device bytes differ from host bytes (first at %llu)",
                  n, off, (unsigned long long)tcpx_compare_random_host(h + off, n, 99));
            size_t touched = 0;
            for (size_t k = 0; k < off; k++) touched += h[k] != 0xA5;
            for (size_t k = off + n; k < span; k++) touched += h[k] != 0xA5;
            CHECK(touched == 0, "n=%zu off=%zu: %zu bytes outside the buffer written", n, off, touched);

            /* Single flipped bytes: at the edges and at random places. */
            uint64_t at[4] = {0, n - 1, rnd() % n, rnd() % n};
            for (int t = 0; t < 4; t++) {
                unsigned char mask = (unsigned char)(1u << (rnd() % 8));
                flip_byte(g, d + off, at[t], mask);
                MUST(tcpx_gpu_compare_random(s, d + off, n, 99, &bad));
                CHECK(bad == at[t], "n=%zu off=%zu: flipped byte %llu, compare says %llu", n, off,
                      (unsigned long long)at[t], (unsigned long long)bad);
                flip_byte(g, d + off, at[t], mask);
            }
            /* Two flips: the first one is reported. */
            if (n > 2) {
                uint64_t p = rnd() % (n - 1), q = p + 1 + rnd() % (n - 1 - p);
                flip_byte(g, d + off, q, 0x80);
                flip_byte(g, d + off, p, 0x01);
                MUST(tcpx_gpu_compare_random(s, d + off, n, 99, &bad));
                CHECK(bad == p, "n=%zu off=%zu: flips at %llu and %llu, compare says %llu", n, off,
                      (unsigned long long)p, (unsigned long long)q, (unsigned long long)bad);
                flip_byte(g, d + off, q, 0x80);
                flip_byte(g, d + off, p, 0x01);
            }
            MUST(tcpx_gpu_compare_random(s, d + off, n, 100, &bad));
            CHECK(n < 16 || bad < 16, "n=%zu off=%zu: wrong seed not detected early: %llu", n, off,
                  (unsigned long long)bad);
        }
    }
    uint64_t bad = 0;
    CHECK(tcpx_gpu_compare_random(s, d, 0, 1, &bad) == TCPX_OK && bad == UINT64_MAX, "empty compare");
    CHECK(tcpx_gpu_fill_random(s, d, 0, 1) == TCPX_OK, "empty fill");

    /* Throughput, for information. */
    size_t n = 64 * MIB;
    tcpx_gpu_event *e;
    MUST(tcpx_gpu_event_create(g, &e));
    MUST(tcpx_gpu_fill_random(s, d, n, 5));
    MUST(tcpx_gpu_stream_sync(s));
    double t0 = now_s();
    for (int r = 0; r < 10; r++) MUST(tcpx_gpu_fill_random(s, d, n, 5));
    MUST(tcpx_gpu_stream_sync(s));
    double t1 = now_s();
    for (int r = 0; r < 10; r++) MUST(tcpx_gpu_compare_random(s, d, n, 5, &bad));
    double t2 = now_s();
    printf("  fill_random %.0f GB/s, compare_random %.0f GB/s (64 MiB, incl. launch + sync)\n",
           10.0 * n / (t1 - t0) / 1e9, 10.0 * n / (t2 - t1) / 1e9);
    tcpx_gpu_event_destroy(e);
    tcpx_gpu_stream_destroy(s);
    free(ref);
    tcpx_gpu_host_free(g, h);
    tcpx_gpu_free(g, d);
}

/* A stamped message (tools/bench's layout): le64(stamp) in the first and
 * last h bytes, the sequence of key elsewhere. Every byte is checked: a
 * flip in a stamp, next to one, or anywhere between is reported at its
 * index; h = 0 is the plain comparison. */
static void test_check_stamped(tcpx_gpu *g)
{
    static const size_t sizes[] = {1, 5, 8, 9, 15, 16, 17, 24, 31, 4096, 4096 + 3, 1 * MIB + 8};
    static const size_t offsets[] = {0, 1, 8, 13};
    const uint64_t seed = 0x5EED, key = tcpx_random_key(seed), stamp = 0x1122334455667788ull;
    const size_t cap = 1 * MIB + 8 + 64;
    unsigned char *d, *ref = malloc(cap);
    if (!ref) exit(1);
    MUST(tcpx_gpu_malloc(g, cap, (void **)&d));
    tcpx_gpu_stream *s;
    MUST(tcpx_gpu_stream_create(g, &s));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof offsets / sizeof offsets[0]; j++) {
            size_t n = sizes[i], off = offsets[j], h = n < 8 ? n : 8;
            /* Reference bytes on the host: sequence, then head stamp, then tail stamp. */
            tcpx_fill_random_host(ref, n, seed);
            for (size_t k = 0; k < h; k++) ref[k] = (unsigned char)(stamp >> (8 * k));
            for (size_t k = 0; k < h; k++) ref[n - h + k] = (unsigned char)(stamp >> (8 * k));
            MUST(tcpx_gpu_memcpy(g, d + off, ref, n));
            uint64_t bad = 0;
            MUST(tcpx_gpu_check_stamped(s, d + off, n, key, h, stamp, &bad));
            CHECK(bad == UINT64_MAX, "n=%zu off=%zu: good stamped message reported bad at %llu", n, off,
                  (unsigned long long)bad);
            uint64_t at[6] = {0, h - 1, h < n ? h : n - 1, n - h, n - 1, rnd() % n};
            for (int t = 0; t < 6; t++) {
                unsigned char mask = (unsigned char)(1u << (rnd() % 8));
                flip_byte(g, d + off, at[t], mask);
                MUST(tcpx_gpu_check_stamped(s, d + off, n, key, h, stamp, &bad));
                CHECK(bad == at[t], "n=%zu off=%zu: flipped byte %llu, check says %llu", n, off,
                      (unsigned long long)at[t], (unsigned long long)bad);
                flip_byte(g, d + off, at[t], mask);
            }
            MUST(tcpx_gpu_check_stamped(s, d + off, n, key, h, stamp ^ 1, &bad));
            CHECK(bad == 0, "n=%zu off=%zu: wrong stamp reported at %llu", n, off,
                  (unsigned long long)bad);
            if (n > 16) {
                MUST(tcpx_gpu_check_stamped(s, d + off, n, key + 1, h, stamp, &bad));
                CHECK(bad >= h && bad < 24, "n=%zu off=%zu: wrong key reported at %llu", n, off,
                      (unsigned long long)bad);
            }
        }
    }
    /* h = 0: the sequence everywhere, as tcpx_gpu_compare_random. */
    tcpx_fill_random_host(ref, 4096, seed);
    MUST(tcpx_gpu_memcpy(g, d, ref, 4096));
    uint64_t bad = 0;
    MUST(tcpx_gpu_check_stamped(s, d, 4096, key, 0, stamp, &bad));
    CHECK(bad == UINT64_MAX, "h=0: good sequence reported bad at %llu", (unsigned long long)bad);
    CHECK(tcpx_gpu_check_stamped(s, d, 4096, key, 9, stamp, &bad) == TCPX_ERR_INVALID && bad == UINT64_MAX,
          "stamps of 9 bytes accepted");
    CHECK(tcpx_gpu_check_stamped(s, d, 4, key, 8, stamp, &bad) == TCPX_ERR_INVALID, "stamps longer than the message");
    tcpx_gpu_stream_destroy(s);
    tcpx_gpu_free(g, d);
    free(ref);
}

static void test_errors(tcpx_gpu *g)
{
    void *p = (void *)1;
    tcpx_status st = tcpx_gpu_malloc(g, (size_t)1 << 52, &p);
    CHECK(st == TCPX_ERR_CUDA, "4 PiB allocation: %s", tcpx_strerror(st));
    CHECK(p == NULL, "failed allocation left a pointer");
    CHECK(strncmp(tcpx_last_error(), "cudaMalloc failed: ", 19) == 0, "sentence: %s", tcpx_last_error());
    /* The failure must not leak into later calls. */
    tcpx_gpu_stream *s;
    MUST(tcpx_gpu_stream_create(g, &s));
    MUST(tcpx_gpu_malloc(g, 4096, &p));
    MUST(tcpx_gpu_fill_random(s, p, 4096, 3));
    uint64_t bad;
    MUST(tcpx_gpu_compare_random(s, p, 4096, 3, &bad));
    CHECK(bad == UINT64_MAX, "fill after an error");
    tcpx_gpu_free(g, p);
    tcpx_gpu_stream_destroy(s);
    tcpx_gpu *bad_g;
    st = tcpx_gpu_open(4096, &bad_g);
    CHECK(st == TCPX_ERR_INVALID, "device 4096: %s", tcpx_strerror(st));
    CHECK(tcpx_gpu_host_alloc(g, 0, &p) == TCPX_ERR_INVALID, "pinned 0 bytes");
}

/* Several threads, each with its own stream, share one tcpx_gpu. */
struct worker {
    tcpx_gpu *g;
    uint64_t seed;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const size_t n = 8 * MIB + 11;
    tcpx_gpu_stream *s;
    void *d;
    if (tcpx_gpu_stream_create(w->g, &s)) return NULL;
    if (tcpx_gpu_malloc(w->g, n + 1, &d) == TCPX_OK) {
        uint64_t bad = 0;
        int ok = 1;
        for (int r = 0; r < 20 && ok; r++) {
            ok = tcpx_gpu_fill_random(s, (char *)d + 1, n, w->seed + r) == TCPX_OK &&
                 tcpx_gpu_compare_random(s, (char *)d + 1, n, w->seed + r, &bad) == TCPX_OK && bad == UINT64_MAX &&
                 tcpx_gpu_check_ptr(w->g, d, n + 1) == TCPX_OK;
        }
        w->ok = ok;
        tcpx_gpu_free(w->g, d);
    }
    tcpx_gpu_stream_destroy(s);
    return NULL;
}

static void test_threads(tcpx_gpu *g)
{
    enum { N = 4 };
    pthread_t t[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){g, 1000 * (uint64_t)(i + 1), 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok, "thread %d failed", i);
    }
}

int main(void)
{
    rng_state = (uint64_t)time(NULL);
    printf("test_gpu: random positions from seed %llu\n", (unsigned long long)rng_state);
    test_host_generator();

    int ndev = 0;
    tcpx_status st = tcpx_gpu_device_count(&ndev);
    if (st != TCPX_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", tcpx_last_error());
        CHECK(st == TCPX_ERR_UNSUPPORTED, "device count: %s", tcpx_strerror(st));
        CHECK(reason[0] != '\0', "device count failed without a sentence");
        test_unsupported();
        if (g_failures) {
            fprintf(stderr, "test_gpu: %d failure(s)\n", g_failures);
            return 1;
        }
        printf("SKIP: no CUDA device: %s\n", reason);
        return 77;
    }

    int drv, rt;
    char desc[256];
    MUST(tcpx_gpu_versions(&drv, &rt));
    MUST(tcpx_gpu_describe(0, desc, sizeof desc));
    printf("  %d device(s); driver %d, runtime %d; device 0: %s\n", ndev, drv, rt, desc);

    tcpx_gpu *g;
    MUST(tcpx_gpu_open(0, &g));
    CHECK(tcpx_gpu_device(g) == 0, "device id");
    test_check_ptr(g, ndev);
    test_copies_events(g);
    test_fill_compare(g);
    test_check_stamped(g);
    test_errors(g);
    test_threads(g);
    tcpx_gpu_close(g);

    if (g_failures) {
        fprintf(stderr, "test_gpu: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_gpu: ok\n");
    return 0;
}
