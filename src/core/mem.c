/* mem.c - the session's memory registry and the per-comm transport
 * registrations made lazily from it (regMr is per comm in ncclNet). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/error.h"
#include "util/random.h"

tcpx_region *mem_find(tcpx_session *s, tcpx_mem_id id)
{
    for (tcpx_region *r = s->mem[id % TCPX_MEM_BUCKETS]; r; r = r->next)
        if (r->id == id) return r;
    return NULL;
}

void *mem_mr(tcpx_session *s, tcpx_region *r, void *comm, tcpx_status *st)
{
    for (int i = 0; i < r->nmrs; i++)
        if (r->mrs[i].comm == comm) return r->mrs[i].mh;
    if (r->nmrs == r->cap_mrs) {
        int ncap = r->cap_mrs ? r->cap_mrs * 2 : 8;
        tcpx_mr *m = realloc(r->mrs, (size_t)ncap * sizeof *m);
        if (!m) {
            *st = tcpx_set_error(TCPX_ERR_NOMEM, "registration cache growth failed");
            return NULL;
        }
        r->mrs = m;
        r->cap_mrs = ncap;
    }
    void *mh = NULL;
    int type = r->kind == TCPX_MEM_CUDA ? TCPX_NET_PTR_CUDA : TCPX_NET_PTR_HOST;
    int rc = s->net->reg_mr(s->net, comm, r->reg_ptr, r->reg_size, type, &mh);
    if (rc) {
        *st = (tcpx_status)rc;
        return NULL;
    }
    r->mrs[r->nmrs++] = (tcpx_mr){comm, mh};
    return mh;
}

static void region_drop_mrs(tcpx_session *s, tcpx_region *r, void *only_comm)
{
    for (int i = 0; i < r->nmrs;) {
        if (only_comm && r->mrs[i].comm != only_comm) {
            i++;
            continue;
        }
        s->net->dereg_mr(s->net, r->mrs[i].comm, r->mrs[i].mh);
        r->mrs[i] = r->mrs[--r->nmrs];
    }
}

void mem_drop_comm(tcpx_session *s, void *comm)
{
    for (int b = 0; b < TCPX_MEM_BUCKETS; b++)
        for (tcpx_region *r = s->mem[b]; r; r = r->next) region_drop_mrs(s, r, comm);
}

void mem_free_all(tcpx_session *s)
{
    for (int b = 0; b < TCPX_MEM_BUCKETS; b++) {
        while (s->mem[b]) {
            tcpx_region *r = s->mem[b];
            s->mem[b] = r->next;
            region_drop_mrs(s, r, NULL);
            free(r->mrs);
            free(r);
        }
    }
}

tcpx_status tcpx_mem_register(tcpx_session *s, void *ptr, size_t size, tcpx_mem_kind kind, tcpx_mem_id *id)
{
    if (!s || !ptr || !size || !id)
        return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: NULL session/pointer/id or size 0");
    if (kind != TCPX_MEM_HOST && kind != TCPX_MEM_CUDA)
        return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: unknown memory kind %d", (int)kind);
    if ((uintptr_t)ptr + size < (uintptr_t)ptr) return tcpx_set_error(TCPX_ERR_INVALID, "mem_register: range wraps");
    if (kind == TCPX_MEM_CUDA) {
        if (!s->gpu)
            return tcpx_set_error(TCPX_ERR_UNSUPPORTED,
                                  "mem_register: GPU memory needs a session created with gpu_id >= 0 (TCPX_GPU)");
        tcpx_status st = tcpx_gpu_check_ptr(s->gpu, ptr, size);
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
    r->key = tcpx_random_u64();
    sess_lock(s);
    r->id = s->next_mem_id++;
    r->next = s->mem[r->id % TCPX_MEM_BUCKETS];
    s->mem[r->id % TCPX_MEM_BUCKETS] = r;
    *id = r->id;
    sess_unlock(s);
    return TCPX_OK;
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
        *link = r->next;
        region_drop_mrs(s, r, NULL);
        free(r->mrs);
        free(r);
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
