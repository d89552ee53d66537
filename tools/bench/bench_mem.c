/* bench_mem.c - the memory the benchmark moves.
 *
 * Every buffer access of the benchmark goes through a bench_mem_ops table:
 * host memory, and CUDA device memory (TCPX_MEM_CUDA, filled and checked
 * through the host staging below with synchronous copies, outside the timed
 * loops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "util/bytes.h"
#include "gpu/gpu.h"

#define STAGE_BYTES (1u << 20)

/* ------------------------------------------------------------- host */

static int host_alloc(bench_mem *m, size_t size)
{
    /* Page-aligned and touched up front, so page faults stay out of the timed loop. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return -1;
    m->base = p;
    m->size = size;
    return 0;
}

static void host_free(bench_mem *m)
{
    if (m->base) munmap(m->base, m->size);
    m->base = NULL;
    m->size = 0;
}

static int host_write(bench_mem *m, size_t off, const void *src, size_t n)
{
    if (off > m->size || n > m->size - off) return -1;
    memcpy((char *)m->base + off, src, n);
    return 0;
}

static int host_read(const bench_mem *m, size_t off, void *dst, size_t n)
{
    if (off > m->size || n > m->size - off) return -1;
    memcpy(dst, (const char *)m->base + off, n);
    return 0;
}

static const bench_mem_ops host_ops = {
    .name = "host",
    .kind = TCPX_MEM_HOST,
    .alloc = host_alloc,
    .free = host_free,
    .write = host_write,
    .read = host_read,
};

/* ------------------------------------------------------------- cuda */

static int cuda_alloc(bench_mem *m, size_t size)
{
    tcpx_gpu *g = NULL;
    tcpx_gpu_stream *s = NULL;
    if (tcpx_gpu_open(m->gpu, &g) || tcpx_gpu_stream_create(g, &s) || tcpx_gpu_malloc(g, size, &m->base)) {
        fprintf(stderr, "tcpx-bench [%s]: GPU %d: %s\n", bench_role, m->gpu, tcpx_last_error());
        tcpx_gpu_stream_destroy(s);
        tcpx_gpu_close(g);
        return -1;
    }
    m->handle = g;
    m->stream = s;
    m->size = size;
    return 0;
}

static void cuda_free(bench_mem *m)
{
    tcpx_gpu_free(m->handle, m->base);
    tcpx_gpu_stream_destroy(m->stream);
    tcpx_gpu_close(m->handle);
    m->handle = m->base = m->stream = NULL;
    m->size = 0;
}

static int cuda_write(bench_mem *m, size_t off, const void *src, size_t n)
{
    if (off > m->size || n > m->size - off) return -1;
    return tcpx_gpu_memcpy(m->handle, (char *)m->base + off, src, n) ? -1 : 0;
}

static int cuda_read(const bench_mem *m, size_t off, void *dst, size_t n)
{
    if (off > m->size || n > m->size - off) return -1;
    return tcpx_gpu_memcpy(m->handle, dst, (const char *)m->base + off, n) ? -1 : 0;
}

/* The stream's words are tcpx_random_word(seed, j) (bench_random_fill):
 * the kernel's key is the seed itself. */
static int cuda_check_stamped(const bench_mem *m, size_t off, size_t n, uint64_t seed, size_t h, uint64_t stamp,
                              uint64_t *first_bad)
{
    if (off > m->size || n > m->size - off) return -1;
    return tcpx_gpu_check_stamped(m->stream, (const char *)m->base + off, n, seed, h, stamp, first_bad) ? -1 : 0;
}

static const bench_mem_ops cuda_ops = {
    .name = "cuda",
    .kind = TCPX_MEM_CUDA,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .write = cuda_write,
    .read = cuda_read,
    .check_stamped = cuda_check_stamped,
};

/* ------------------------------------------------------------- registry */

static const bench_mem_ops *const kinds[] = {&host_ops, &cuda_ops};

const bench_mem_ops *bench_mem_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i]->name, name)) return kinds[i];
    return NULL;
}

const char *bench_mem_kinds(void)
{
    static char buf[128];
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (i) strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        strncat(buf, kinds[i]->name, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

/* ------------------------------------------------------------- fill / verify */

void bench_mem_fill_random(bench_mem *m, size_t off, size_t n, uint64_t seed)
{
    if (m->ops->kind == TCPX_MEM_HOST) { /* straight into the buffer */
        bench_random_fill(seed, 0, (char *)m->base + off, n);
        return;
    }
    static uint8_t stage[STAGE_BYTES];
    for (size_t done = 0; done < n; done += STAGE_BYTES) {
        size_t k = n - done < STAGE_BYTES ? n - done : STAGE_BYTES;
        bench_random_fill(seed, done, stage, k);
        if (m->ops->write(m, off + done, stage, k)) bench_die("%s memory: write failed", m->ops->name);
    }
}

size_t bench_mem_verify_random(const bench_mem *m, size_t off, size_t n, uint64_t seed, const char *what)
{
    static uint8_t want[STAGE_BYTES], got[STAGE_BYTES];
    size_t bad = 0;
    for (size_t done = 0; done < n; done += STAGE_BYTES) {
        size_t k = n - done < STAGE_BYTES ? n - done : STAGE_BYTES;
        bench_random_fill(seed, done, want, k);
        const uint8_t *have = got;
        if (m->ops->kind == TCPX_MEM_HOST) have = (const uint8_t *)m->base + off + done;
        else if (m->ops->read(m, off + done, got, k)) bench_die("%s memory: read failed", m->ops->name);
        if (memcmp(want, have, k) == 0) continue;
        for (size_t i = 0; i < k; i++) {
            if (want[i] == have[i]) continue;
            if (bad < 8)
                fprintf(stderr,
                        "tcpx-bench [%s]: MISMATCH %s: byte %zu of %zu: expected 0x%02x, got 0x%02x\n", bench_role,
                        what, done + i, n, want[i], have[i]);
            bad++;
        }
    }
    if (bad > 8) fprintf(stderr, "tcpx-bench [%s]: MISMATCH %s: %zu bytes differ in all\n", bench_role, what, bad);
    return bad;
}

int bench_mem_crc(const bench_mem *m, size_t off, size_t n, uint32_t *crc)
{
    if (m->ops->kind != TCPX_MEM_HOST) return 1; /* GPU memory: stamps only */
    *crc = tcpx_crc32c_update(*crc, (const uint8_t *)m->base + off, n);
    return 0;
}
