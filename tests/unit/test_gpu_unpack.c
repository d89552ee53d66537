/* test_gpu_unpack.c - the GPUDirect-TCPX unpack kernel (src/gpu/unpack.h).
 *
 * Always: tcpx_unpack_check (host validation of a fragment list). Without a
 * usable CUDA device it then exits 77 with "SKIP: no CUDA device: ...".
 * With a device: a 64 MiB device bounce buffer filled with the reproducible
 * sequence (its host twin gives the expected bytes), fragment lists in pinned
 * host memory read by the kernel through their device address, scattered
 * page layouts of many message sizes (aligned and odd destination bases),
 * random byte-granular layouts (every alignment case of the copy), guard
 * bytes around the destination, out-of-range fragments never written,
 * argument errors, and the throughput of a 256-page unpack (informational). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu.h"
#include "gpu/unpack.h"

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

#define MUST(call)                                                              \
    do {                                                                        \
        tcpx_status must_st_ = (call);                                          \
        if (must_st_ != TCPX_OK) {                                              \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,  \
                    tcpx_strerror(must_st_), tcpx_last_error());                \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define PAGE ((size_t)TCPX_UNPACK_PAGE_SIZE)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static uint64_t rnd(void) { return tcpx_random_word(0xc0ffee, rng_state++); }
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static tcpx_unpack_frag frag(uint32_t src_off, uint32_t len, uint64_t dst_off)
{
    tcpx_unpack_frag f;
    memset(&f, 0, sizeof f);
    f.src_off = src_off;
    f.len = len;
    f.dst_off = dst_off;
    return f;
}

/* ------------------------------------------------------------ host only */

static void test_layout(void)
{
    tcpx_unpack_frag f = frag(0x11223344u, 0x55667788u, 0x99aabbccddeeff00ull);
    /* Little-endian: r64[0] = len << 32 | src_off, r64[1] = dst_off. */
    CHECK(f.r64[0] == 0x5566778811223344ull && f.r64[1] == 0x99aabbccddeeff00ull, "fragment words");
    CHECK(sizeof(tcpx_unpack_meta) == 524416, "meta size %zu", sizeof(tcpx_unpack_meta));
}

static void test_check(void)
{
    const size_t bounce = 64 * KIB, dsz = 10000;
    tcpx_unpack_frag f[4] = {frag(0, 4096, 0), frag(8192, 4096, 4096), frag(61440, 1808, 8192),
                             frag(0, 0, 10000)};
    static tcpx_unpack_frag big[TCPX_UNPACK_MAX_PAGES + 1];

    CHECK(tcpx_unpack_check(f, 4, bounce, dsz) == TCPX_OK, "valid list (ends exactly at both buffer ends)");
    CHECK(tcpx_unpack_check(NULL, 0, bounce, dsz) == TCPX_OK, "empty list");
    CHECK(tcpx_unpack_check(NULL, 1, bounce, dsz) == TCPX_ERR_INVALID, "NULL list");
    for (size_t i = 0; i < TCPX_UNPACK_MAX_PAGES + 1; i++)
        big[i] = frag((uint32_t)(i * PAGE), (uint32_t)PAGE, i * PAGE);
    size_t bsz = (TCPX_UNPACK_MAX_PAGES + 1) * PAGE;
    CHECK(tcpx_unpack_check(big, TCPX_UNPACK_MAX_PAGES, bsz, bsz) == TCPX_OK, "max count");
    CHECK(tcpx_unpack_check(big, TCPX_UNPACK_MAX_PAGES + 1, bsz, bsz) == TCPX_ERR_PROTOCOL, "count > max");

    tcpx_unpack_frag g[4];
    memcpy(g, f, sizeof g);
    g[2].len++;   /* src 61440 + 1809 fits 64 KiB; dst 8192 + 1809 > 10000 */
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_ERR_PROTOCOL, "dst_off + len > dst size");
    CHECK(strstr(tcpx_last_error(), "fragment 2 ") != NULL, "error names the fragment: %s", tcpx_last_error());
    CHECK(strstr(tcpx_last_error(), "dst_off 8192") != NULL, "error names the values: %s", tcpx_last_error());

    memcpy(g, f, sizeof g);
    g[1].src_off = (uint32_t)(bounce - 4095);
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_ERR_PROTOCOL, "src_off + len > bounce size");
    CHECK(strstr(tcpx_last_error(), "fragment 1 ") != NULL && strstr(tcpx_last_error(), "bounce") != NULL,
          "error names the fragment: %s", tcpx_last_error());

    memcpy(g, f, sizeof g);
    g[0].src_off = UINT32_MAX;   /* src_off + len past 32 bits: computed in 64 */
    g[0].len = 4096;
    CHECK(tcpx_unpack_check(g, 4, (size_t)1 << 33, dsz) == TCPX_OK, "src_off + len past 2^32 in a larger buffer");
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_ERR_PROTOCOL, "src_off near 2^32");

    memcpy(g, f, sizeof g);
    g[1].dst_off = UINT64_MAX - 100;   /* dst_off + len overflows 64 bits */
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_ERR_PROTOCOL, "dst_off + len overflow");

    memcpy(g, f, sizeof g);
    g[3].dst_off = dsz + 1;   /* zero-length, but its offset is out of range */
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_ERR_PROTOCOL, "zero-length fragment past the end");
    g[3].dst_off = dsz;
    g[3].src_off = (uint32_t)bounce;
    CHECK(tcpx_unpack_check(g, 4, bounce, dsz) == TCPX_OK, "zero-length fragments at the ends are accepted");

    memcpy(g, f, sizeof g);
    g[0].len = (uint32_t)dsz + 1;
    CHECK(tcpx_unpack_check(g, 1, (size_t)1 << 20, dsz) == TCPX_ERR_PROTOCOL, "len > dst size");
}

/* ----------------------------------------------------------- with a GPU */

#define BOUNCE_SIZE (64 * MIB)
#define BOUNCE_PAGES (BOUNCE_SIZE / PAGE)
#define GUARD (64 * KIB)                 /* bytes checked on each side of the destination */
#define DST_MAX (16 * MIB)               /* largest destination range used */
#define DST_AREA (GUARD + DST_MAX + 64 + GUARD)
#define GUARD_BYTE 0xA5
#define BOUNCE_SEED 0x7c9a11u

static tcpx_gpu *g_gpu;
static tcpx_gpu_stream *g_s;
static uint8_t *g_bounce;        /* device */
static uint8_t *g_bounce_host;   /* the same bytes on the host */
static uint8_t *g_area;          /* device destination area, GUARD bytes each side */
static uint8_t *g_expect, *g_got;
static tcpx_unpack_meta *g_meta;       /* pinned host */
static tcpx_unpack_meta *g_meta_dev;   /* its device address */
static unsigned g_slot;
static uint32_t g_pages[BOUNCE_PAGES];

/* Put list[0..count) in the next queue slot; returns the slot. */
static unsigned post(const tcpx_unpack_frag *list, uint64_t count)
{
    unsigned slot = g_slot++ % TCPX_UNPACK_SLOTS;
    memcpy(g_meta->mem[slot], list, count * sizeof *list);
    g_meta->cnt[slot] = count;
    return slot;
}

/* Unpack list into the area at offset GUARD + base (dst_size bytes) and
 * compare the whole area with the expected bytes. `valid` says whether the
 * list passes tcpx_unpack_check (invalid fragments must leave no trace). */
static void run_case(const char *name, const tcpx_unpack_frag *list, uint64_t count, size_t base, size_t dst_size,
                     int valid)
{
    if (g_failures > 20) return;
    unsigned slot = post(list, count);
    tcpx_status st = tcpx_unpack_check(g_meta->mem[slot], g_meta->cnt[slot], BOUNCE_SIZE, dst_size);
    CHECK(valid ? st == TCPX_OK : st == TCPX_ERR_PROTOCOL, "%s: tcpx_unpack_check -> %s", name, tcpx_strerror(st));

    memset(g_expect, GUARD_BYTE, DST_AREA);
    uint8_t *e = g_expect + GUARD + base;
    for (uint64_t i = 0; i < count; i++) {
        const tcpx_unpack_frag *f = &list[i];
        if (f->len > dst_size || f->dst_off > dst_size - f->len) continue;   /* skipped by the kernel */
        memcpy(e + f->dst_off, g_bounce_host + f->src_off, f->len);
    }
    MUST(tcpx_gpu_memset(g_gpu, g_area, GUARD_BYTE, DST_AREA));
    MUST(tcpx_gpu_unpack(g_s, g_meta_dev->mem[slot], g_meta->cnt[slot], g_bounce, g_area + GUARD + base, dst_size));
    MUST(tcpx_gpu_stream_sync(g_s));
    MUST(tcpx_gpu_memcpy(g_gpu, g_got, g_area, DST_AREA));
    if (memcmp(g_got, g_expect, DST_AREA) != 0) {
        size_t i = 0;
        while (g_got[i] == g_expect[i]) i++;
        long long rel = (long long)i - (long long)(GUARD + base);
        const char *where = rel < 0 ? "guard before the destination"
                            : (size_t)rel >= dst_size ? "guard after the destination"
                                                      : "destination";
        CHECK(0, "%s (%llu fragments, base %zu, %zu bytes): first bad byte at destination offset %lld (%s): "
                 "got 0x%02x, want 0x%02x",
              name, (unsigned long long)count, base, dst_size, rel, where, g_got[i], g_expect[i]);
    }
}

/* Message of `size` bytes in pages at random distinct page-aligned bounce
 * offsets, destination contiguous; descriptor order shuffled when asked. */
static uint64_t page_layout(tcpx_unpack_frag *list, size_t size, int shuffle_order)
{
    uint64_t n = (size + PAGE - 1) / PAGE;
    for (uint64_t i = 0; i < n; i++) {   /* partial Fisher-Yates over all bounce pages */
        uint64_t j = i + rnd_below(BOUNCE_PAGES - i);
        uint32_t t = g_pages[i];
        g_pages[i] = g_pages[j];
        g_pages[j] = t;
        size_t len = size - i * PAGE < PAGE ? size - i * PAGE : PAGE;
        list[i] = frag((uint32_t)(g_pages[i] * PAGE), (uint32_t)len, i * PAGE);
    }
    if (shuffle_order)
        for (uint64_t i = n; i > 1; i--) {
            uint64_t j = rnd_below(i);
            tcpx_unpack_frag t = list[i - 1];
            list[i - 1] = list[j];
            list[j] = t;
        }
    return n;
}

static tcpx_unpack_frag g_list[TCPX_UNPACK_MAX_PAGES];

static void test_pages(void)
{
    static const size_t sizes[] = {1, 7, 15, 16, 17, 4095, 4096, 4097, 65536 + 13, MIB + 5,
                                   TCPX_UNPACK_MAX_PAGES * PAGE};
    char name[96];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int variant = 0; variant < 4; variant++) {
            /* 0: aligned base; 1: random odd base; 2: base 8 (8- not 16-aligned),
             * descriptors shuffled; 3: random odd base, descriptors shuffled. */
            size_t base = variant == 0 ? 0 : variant == 2 ? 8 : (size_t)(rnd_below(8) * 2 + 1);
            uint64_t n = page_layout(g_list, sizes[k], variant >= 2);
            snprintf(name, sizeof name, "pages size %zu variant %d", sizes[k], variant);
            run_case(name, g_list, n, base, sizes[k], 1);
        }
    }
}

/* Fragments of random length (0..5000) at random byte offsets of the bounce
 * buffer, destination ranges with random gaps: every combination of source
 * and destination alignment, head, tail and length. */
static void test_random_bytes(void)
{
    char name[96];
    static const uint64_t counts[] = {1, 2, 3, 8, 9, 31, 33, 100, 257, 1000, TCPX_UNPACK_MAX_PAGES};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        for (int rep = 0; rep < 3; rep++) {
            uint64_t n = counts[k], dst = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint32_t len = (uint32_t)(rnd_below(8) == 0 ? rnd_below(17) : rnd_below(5001));
                uint32_t src = (uint32_t)rnd_below(BOUNCE_SIZE - len + 1);
                dst += rnd_below(20);
                g_list[i] = frag(src, len, dst);
                dst += len;
            }
            size_t base = (size_t)rnd_below(16);
            snprintf(name, sizeof name, "random bytes count %llu rep %d", (unsigned long long)n, rep);
            if (dst > DST_MAX) continue;
            run_case(name, g_list, n, base, (size_t)dst + rnd_below(5), 1);
        }
    }
    /* One fragment larger than a page (the kernel takes any len). */
    g_list[0] = frag(3, (uint32_t)(3 * MIB + 77), 5);
    run_case("one 3 MiB fragment", g_list, 1, 1, 3 * MIB + 82, 1);
}

/* Fragments past the destination end are skipped by the kernel: no byte
 * outside [dst, dst + dst_size) is written; the rest are copied. */
static void test_out_of_range(void)
{
    const size_t dsz = 3 * PAGE;
    g_list[0] = frag(0, (uint32_t)PAGE, 0);
    g_list[1] = frag((uint32_t)(7 * PAGE), (uint32_t)PAGE, 2 * PAGE + 1);          /* 1 byte past the end */
    g_list[2] = frag((uint32_t)(9 * PAGE), (uint32_t)PAGE, PAGE);
    g_list[3] = frag((uint32_t)(11 * PAGE), 16, UINT64_MAX - 8);                   /* offset wraps around */
    g_list[4] = frag((uint32_t)(12 * PAGE), (uint32_t)(dsz + 1), 0);                /* longer than dst */
    run_case("out-of-range fragments", g_list, 5, 0, dsz, 0);
}

static void test_errors(void)
{
    unsigned slot = post(g_list, 1);
    const tcpx_unpack_frag *f = g_meta_dev->mem[slot];
    CHECK(tcpx_gpu_unpack(g_s, f, TCPX_UNPACK_MAX_PAGES + 1, g_bounce, g_area, 1) == TCPX_ERR_INVALID, "count > max");
    CHECK(tcpx_gpu_unpack(g_s, NULL, 1, g_bounce, g_area, 1) == TCPX_ERR_INVALID, "NULL fragment list");
    CHECK(tcpx_gpu_unpack(g_s, f, 1, NULL, g_area, 1) == TCPX_ERR_INVALID, "NULL bounce");
    CHECK(tcpx_gpu_unpack(g_s, f, 1, g_bounce, NULL, 1) == TCPX_ERR_INVALID, "NULL destination");
    CHECK(tcpx_gpu_unpack(NULL, f, 1, g_bounce, g_area, 1) == TCPX_ERR_INVALID, "NULL stream");
    CHECK(tcpx_gpu_unpack(g_s, (const tcpx_unpack_frag *)((const char *)f + 8), 1, g_bounce, g_area, 1) ==
              TCPX_ERR_INVALID,
          "misaligned fragment list");
    CHECK(tcpx_gpu_unpack(g_s, NULL, 0, NULL, NULL, 0) == TCPX_OK, "count 0 is a no-op");

    void *d = (void *)1;
    CHECK(tcpx_gpu_host_device_ptr(g_gpu, NULL, &d) == TCPX_ERR_INVALID && d == NULL, "host_device_ptr(NULL)");
    CHECK(tcpx_gpu_host_device_ptr(g_gpu, g_meta, NULL) == TCPX_ERR_INVALID, "host_device_ptr no result");
    tcpx_status st = tcpx_gpu_host_device_ptr(g_gpu, &g_meta->cnt[3], &d);
    CHECK(st == TCPX_OK && d == (void *)&g_meta_dev->cnt[3], "device address of an interior pointer: %s %p",
          tcpx_strerror(st), d);
    MUST(tcpx_gpu_stream_sync(g_s));
}

static void bench(size_t pages, size_t base, int iters)
{
    size_t size = pages * PAGE;
    uint64_t n = page_layout(g_list, size, 0);
    unsigned slot = post(g_list, n);
    const tcpx_unpack_frag *f = g_meta_dev->mem[slot];
    uint8_t *dst = g_area + GUARD + base;
    for (int i = 0; i < 10; i++) MUST(tcpx_gpu_unpack(g_s, f, n, g_bounce, dst, size));
    MUST(tcpx_gpu_stream_sync(g_s));
    double t0 = now_s();
    for (int i = 0; i < iters; i++) MUST(tcpx_gpu_unpack(g_s, f, n, g_bounce, dst, size));
    MUST(tcpx_gpu_stream_sync(g_s));
    double dt = now_s() - t0;
    printf("unpack %zu pages (%zu KiB), dst base +%zu: %d launches in %.3f ms, %.1f us each, %.1f GB/s\n", pages,
           size / KIB, base, iters, dt * 1e3, dt / iters * 1e6, (double)size * iters / dt / 1e9);
}

int main(void)
{
    test_layout();
    test_check();

    int ndev = 0;
    tcpx_status st = tcpx_gpu_device_count(&ndev);
    if (st != TCPX_OK) {
        if (g_failures) {
            fprintf(stderr, "test_gpu_unpack: %d failure(s)\n", g_failures);
            return 1;
        }
        printf("SKIP: no CUDA device: %s\n", tcpx_last_error());
        return 77;
    }

    MUST(tcpx_gpu_open(0, &g_gpu));
    MUST(tcpx_gpu_stream_create(g_gpu, &g_s));
    void *p;
    MUST(tcpx_gpu_malloc(g_gpu, BOUNCE_SIZE, &p));
    g_bounce = p;
    MUST(tcpx_gpu_malloc(g_gpu, DST_AREA, &p));
    g_area = p;
    MUST(tcpx_gpu_host_alloc(g_gpu, sizeof(tcpx_unpack_meta), &p));
    g_meta = p;
    memset(g_meta, 0, sizeof *g_meta);
    MUST(tcpx_gpu_host_device_ptr(g_gpu, g_meta, &p));
    g_meta_dev = p;
    g_bounce_host = malloc(BOUNCE_SIZE);
    g_expect = malloc(DST_AREA);
    g_got = malloc(DST_AREA);
    if (!g_bounce_host || !g_expect || !g_got) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < BOUNCE_PAGES; i++) g_pages[i] = i;
    MUST(tcpx_gpu_fill_random(g_s, g_bounce, BOUNCE_SIZE, BOUNCE_SEED));
    tcpx_fill_random_host(g_bounce_host, BOUNCE_SIZE, BOUNCE_SEED);
    MUST(tcpx_gpu_stream_sync(g_s));

    test_pages();
    test_random_bytes();
    test_out_of_range();
    test_errors();

    if (!g_failures) {
        bench(256, 0, 1000);
        bench(256, 1, 1000);
        bench(TCPX_UNPACK_MAX_PAGES, 0, 200);
    }

    free(g_bounce_host);
    free(g_expect);
    free(g_got);
    tcpx_gpu_host_free(g_gpu, g_meta);
    tcpx_gpu_free(g_gpu, g_area);
    tcpx_gpu_free(g_gpu, g_bounce);
    tcpx_gpu_stream_destroy(g_s);
    tcpx_gpu_close(g_gpu);
    if (g_failures) {
        fprintf(stderr, "test_gpu_unpack: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_gpu_unpack: ok\n");
    return 0;
}
