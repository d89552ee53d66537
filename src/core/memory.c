/* memory.c - the public memory calls: register, deregister (which waits,
 * bounded, for peers' operations on the region), info, descriptors. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

/* The session's GPU, for GPU memory at ptr: with gpu_id -2 the device of
 * the first GPU memory registered is opened now. It never changes once set. */
static tcpx_status session_gpu(tcpx_session *s, const void *ptr)
{
    sess_lock(s);
    tcpx_status st = TCPX_OK;
    int dev = -1;
    if (!s->gpu && s->cfg.gpu_id == -2 && !(st = tcpx_gpu_pointer_device(ptr, &dev)) &&
        !(st = tcpx_gpu_open(dev, &s->gpu))) {
        s->cfg.gpu_id = dev;
        s->plugin_on_gpu = strcmp(s->net->name, "socket") != 0;
        TCPX_INFO("session %s: GPU %d (of the first GPU memory registered)", s->cfg.name, dev);
    }
    if (!st && !s->gpu)
        st = tcpx_set_error(TCPX_ERR_UNSUPPORTED, "mem_register: GPU memory needs a session created with gpu_id >= 0 "
                                                  "(TCPX_GPU), or -2 for the device of the first GPU memory registered");
    else if (st)
        st = tcpx_set_error(st, "mem_register: %s", tcpx_last_error());
    sess_unlock(s);
    return st;
}

/* splitmix64's finaliser: a good 64-bit mix. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A region's id and key are a function of (session secret, address, size,
 * kind): registering the same memory again after deregistering it gives
 * the same descriptor, so a peer holding the old one (NIXL caches remote
 * agents' metadata and refuses a changed copy) finds it valid again, and
 * nobody without the secret can guess one. A second registration of the
 * same range while the first lives, or a hash collision, steps to the next
 * free id. Called with the session lock held. */
static void region_name(tcpx_session *s, tcpx_region *r)
{
    uint64_t h = mix64(s->mem_secret ^ (uint64_t)(uintptr_t)r->ptr);
    h = mix64(h ^ (uint64_t)r->size ^ ((uint64_t)r->kind << 62));
    for (;;) {
        tcpx_mem_id id = h >> 1; /* ids stay below 2^63: easy to print, never negative as int64 */
        if (id && !mem_find(s, id)) {
            r->id = id;
            break;
        }
        h = mix64(h + 1);
    }
    r->key = mix64(r->id ^ mix64(s->mem_secret + 0x9e3779b97f4a7c15ull));
    r->serial = ++s->mem_serial;
}

tcpx_status tcpx_mem_register(tcpx_session *s, void *ptr, size_t size, tcpx_mem_kind kind, tcpx_mem_id *id)
{
    if (!s || !ptr || !size || !id)
        return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: NULL session/pointer/id or size 0");
    if (kind != TCPX_MEM_HOST && kind != TCPX_MEM_CUDA)
        return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: unknown memory kind %d", (int)kind);
    if ((uintptr_t)ptr + size < (uintptr_t)ptr) return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: range wraps");
    if (kind == TCPX_MEM_CUDA) {
        tcpx_status st = session_gpu(s, ptr);
        if (!st) st = tcpx_gpu_check_ptr(s->gpu, ptr, size);
        if (st) return st;
    }
    tcpx_region *r = calloc(1, sizeof *r);
    if (!r) return tcpx_set_error(TCPX_ERR_NOMEM, "mem_register: allocation failed");
    r->ptr = ptr;
    r->size = size;
    r->reg_ptr = ptr;
    r->reg_size = size;
    r->kind = kind;
    if (kind == TCPX_MEM_CUDA) {
        /* GPUDirect-TCPX registers (dma-buf exports) page-aligned GPU
         * memory only: register from the page boundary below ptr when it
         * lies in the same allocation. Offsets into the registration are
         * the transport's business; the memory itself is not touched. */
        void *base = NULL;
        size_t len = 0;
        uintptr_t page = (uintptr_t)ptr & ~(uintptr_t)(TCPX_UNPACK_PAGE_SIZE - 1);
        if (!tcpx_gpu_alloc_range(s->gpu, ptr, &base, &len) && page >= (uintptr_t)base) {
            r->reg_ptr = (uint8_t *)page;
            r->reg_size = size + ((uintptr_t)ptr - page);
        }
    }
    r->device = kind == TCPX_MEM_CUDA ? tcpx_gpu_device(s->gpu) : -1;
    sess_lock(s);
    region_name(s, r);
    r->next = s->mem[r->id % TCPX_MEM_BUCKETS];
    s->mem[r->id % TCPX_MEM_BUCKETS] = r;
    *id = r->id;
    sess_unlock(s);
    return TCPX_OK;
}

/* Refuse peers from now on and wait (bounded) for their operations on r
 * that are under way. The lock is released while waiting: the caller looks
 * r up again afterwards. */
static tcpx_status wait_remote_done(tcpx_session *s, tcpx_region *r)
{
    r->closing = 1;
    uint64_t deadline = tcpx_deadline_ms(s->cfg.peer_timeout_ms);
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        sess_progress_locked(s);
        if (!r->rbusy) return TCPX_OK;
        if (tcpx_past(deadline))
            return tcpx_set_error(TCPX_ERR_TIMEOUT,
                                  "mem_deregister: memory id %llu: %d operations of peers still under way after %d ms "
                                  "(it stays registered and refuses peers; deregister again later)",
                                  (unsigned long long)r->id, r->rbusy, s->cfg.peer_timeout_ms);
        tcpx_mem_id id = r->id;
        uint64_t serial = r->serial;
        sess_nap_locked(s, seen, deadline);
        r = mem_find(s, id);
        if (!r || r->serial != serial) /* gone (or registered anew): deregistered by another thread */
            return tcpx_set_error(TCPX_ERR_NOT_FOUND, "mem_deregister: memory id %llu was deregistered meanwhile",
                                  (unsigned long long)id);
        if (r->busy) /* the caller posted on it meanwhile */
            return tcpx_set_error(TCPX_ERR_INVALID, "mem_deregister: memory id %llu is used by %d pending operations",
                                  (unsigned long long)r->id, r->busy);
    }
}

tcpx_status tcpx_mem_deregister(tcpx_session *s, tcpx_mem_id id)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "mem_deregister: NULL session");
    sess_lock(s);
    tcpx_status st = TCPX_OK;
    tcpx_region **link = &s->mem[id % TCPX_MEM_BUCKETS];
    while (*link && (*link)->id != id) link = &(*link)->next;
    tcpx_region *r = *link;
    if (!r) {
        st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "mem_deregister: memory id %llu is not registered",
                            (unsigned long long)id);
    } else if (r->busy) {
        st = tcpx_set_error(TCPX_ERR_INVALID, "mem_deregister: memory id %llu is used by %d pending operations",
                            (unsigned long long)id, r->busy);
    } else {
        st = wait_remote_done(s, r);
    }
    if (!st) {
        for (link = &s->mem[id % TCPX_MEM_BUCKETS]; *link != r; link = &(*link)->next) {
        }
        *link = r->next;
        mem_free_region(s, r);
    }
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_mem_info(tcpx_session *s, tcpx_mem_id id, tcpx_mem_info_t *info)
{
    if (!s || !info) return tcpx_set_error(TCPX_ERR_INVALID, "mem_info: NULL argument");
    sess_lock(s);
    tcpx_region *r = mem_find(s, id);
    if (r) *info = (tcpx_mem_info_t){r->ptr, r->size, r->kind, r->device, r->id};
    sess_unlock(s);
    return r ? TCPX_OK
             : tcpx_set_error(TCPX_ERR_NOT_FOUND, "mem_info: memory id %llu is not registered", (unsigned long long)id);
}

tcpx_status tcpx_memdesc_get(tcpx_session *s, tcpx_mem_id id, tcpx_memdesc *out)
{
    if (!s || !out) return tcpx_set_error(TCPX_ERR_INVALID, "memdesc_get: NULL argument");
    sess_lock(s);
    tcpx_region *r = mem_find(s, id);
    if (r) *out = (tcpx_memdesc){(uint64_t)(uintptr_t)r->ptr, r->size, r->kind, r->id, r->key};
    sess_unlock(s);
    return r ? TCPX_OK
             : tcpx_set_error(TCPX_ERR_NOT_FOUND, "memdesc_get: memory id %llu is not registered",
                              (unsigned long long)id);
}
