/* devmem_emu_pool.c - the bounce pool and the random streams.
 *
 * The pool is one device allocation (host memory in host mode) of
 * DEVMEM_EMU_POOL_MB MiB cut into 4 KiB pages, shared by every recv comm of
 * the process, as the real plugin's bounce buffer is. It is made when the
 * first recv comm is accepted and freed when the last one closes. Free pages
 * sit in an array; taking one picks a random index (and moves the last entry
 * there), so a message's pages come out scattered.
 *
 * Randomness: one seed per process (DEVMEM_EMU_SEED, else the time), from
 * which every comm draws its own splitmix64 stream, so that comms used by
 * different threads need no shared generator.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devmem_emu.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_seed, g_seed_state;

static struct {
    int users;
    uint8_t *base;
    size_t bytes;
    uint32_t npages, nfree;
    uint32_t *free;
} g_pool;

uint64_t emu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void emu_seed_init(void)
{
    const char *env = getenv("DEVMEM_EMU_SEED");
    uint64_t s;
    if (env && *env) {
        s = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    pthread_mutex_lock(&g_mu);
    g_seed = g_seed_state = s;
    pthread_mutex_unlock(&g_mu);
}

uint64_t emu_seed(void)
{
    pthread_mutex_lock(&g_mu);
    uint64_t s = g_seed;
    pthread_mutex_unlock(&g_mu);
    return s;
}

uint64_t emu_seed_next(void)
{
    pthread_mutex_lock(&g_mu);
    uint64_t s = emu_rand(&g_seed_state);
    pthread_mutex_unlock(&g_mu);
    return s;
}

static size_t pool_bytes_from_env(void)
{
    const char *env = getenv("DEVMEM_EMU_POOL_MB");
    long mb = env && *env ? strtol(env, NULL, 10) : 256;
    /* At least one largest message; page offsets must fit 32 bits. */
    if (mb < 8) mb = 8;
    if (mb > 4095) mb = 4095;
    return (size_t)mb << 20;
}

int emu_pool_acquire(uint8_t **base, size_t *bytes)
{
    int rc = TCPX_NCCL_SUCCESS;
    pthread_mutex_lock(&g_mu);
    if (g_pool.users == 0) {
        size_t want = pool_bytes_from_env();
        uint32_t npages = (uint32_t)(want / EMU_PAGE);
        uint32_t *fl = malloc((size_t)npages * sizeof *fl);
        void *p = NULL;
        if (!fl) {
            EMU_WARN("NET/DevmemEmu: cannot allocate the free list of %u bounce pages", npages);
            rc = TCPX_NCCL_SYSTEM_ERROR;
        } else if (!(rc = emu_mem_ops->bind())) {
            rc = emu_mem_ops->dev_alloc(want, &p);
        }
        if (rc) {
            free(fl);
            pthread_mutex_unlock(&g_mu);
            return rc;
        }
        for (uint32_t i = 0; i < npages; i++) fl[i] = i;
        g_pool.base = p;
        g_pool.bytes = want;
        g_pool.npages = g_pool.nfree = npages;
        g_pool.free = fl;
        EMU_INFO("NET/DevmemEmu: bounce pool of %zu MiB (%u pages) in %s memory at %p", want >> 20, npages,
                 emu_mem_ops->name, p);
    }
    g_pool.users++;
    *base = g_pool.base;
    *bytes = g_pool.bytes;
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void emu_pool_release(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_pool.users > 0 && --g_pool.users == 0) {
        if (g_pool.nfree != g_pool.npages)
            EMU_WARN("NET/DevmemEmu: %u bounce pages still taken when the pool is freed",
                     g_pool.npages - g_pool.nfree);
        emu_mem_ops->dev_free(g_pool.base);
        free(g_pool.free);
        memset(&g_pool, 0, sizeof g_pool);
    }
    pthread_mutex_unlock(&g_mu);
}

int emu_pool_take(uint32_t n, uint32_t *pages, uint64_t *rng)
{
    pthread_mutex_lock(&g_mu);
    if (g_pool.nfree < n) {
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(emu_rand(rng) % g_pool.nfree);
        pages[i] = g_pool.free[k];
        g_pool.free[k] = g_pool.free[--g_pool.nfree];
    }
    pthread_mutex_unlock(&g_mu);
    return 1;
}

void emu_pool_give(const uint32_t *pages, uint32_t n)
{
    pthread_mutex_lock(&g_mu);
    for (uint32_t i = 0; i < n && g_pool.nfree < g_pool.npages; i++) g_pool.free[g_pool.nfree++] = pages[i];
    pthread_mutex_unlock(&g_mu);
}

int emu_pool_poison(uint8_t *base, const uint32_t *pages, uint32_t n)
{
    /* The pages are the caller's until given back: no lock needed. Runs of
     * adjacent pages go in one memset. */
    int rc = TCPX_NCCL_SUCCESS;
    for (uint32_t i = 0; i < n && !rc;) {
        uint32_t j = i + 1;
        while (j < n && pages[j] == pages[j - 1] + 1) j++;
        rc = emu_mem_ops->fill(base + (size_t)pages[i] * EMU_PAGE, EMU_POISON, (size_t)(j - i) * EMU_PAGE);
        i = j;
    }
    int wrc = emu_mem_ops->wait();
    return rc ? rc : wrc;
}
