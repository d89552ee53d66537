/* mem.c - the session's memory registry, the per-comm transport
 * registrations made lazily from it (regMr is per comm in ncclNet), and the
 * check of peers' one-sided access. The public calls are in memory.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"

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

void mem_free_region(tcpx_session *s, tcpx_region *r)
{
    region_drop_mrs(s, r, NULL);
    free(r->mrs);
    free(r);
}

void mem_free_all(tcpx_session *s)
{
    for (int b = 0; b < TCPX_MEM_BUCKETS; b++) {
        while (s->mem[b]) {
            tcpx_region *r = s->mem[b];
            s->mem[b] = r->next;
            mem_free_region(s, r);
        }
    }
}

tcpx_status mem_access(tcpx_session *s, const tcpx_wire_block *b, uint32_t index, tcpx_region **out, char *why,
                       size_t cap)
{
    tcpx_region *r = mem_find(s, b->mem_id);
    unsigned long long id = (unsigned long long)b->mem_id;
    *out = r;
    if (!r) snprintf(why, cap, "block %u: memory id %llu is not registered at %s", index, id, s->cfg.name);
    else if (r->closing) snprintf(why, cap, "block %u: memory id %llu is being deregistered", index, id);
    else if (r->key != b->key) snprintf(why, cap, "block %u: wrong key for memory id %llu", index, id);
    else if (b->offset > r->size || b->len > r->size - b->offset)
        snprintf(why, cap, "block %u: [%llu, +%llu) lies outside the %zu bytes of memory id %llu", index,
                 (unsigned long long)b->offset, (unsigned long long)b->len, r->size, id);
    else return TCPX_OK;
    return TCPX_ERR_ACCESS;
}

