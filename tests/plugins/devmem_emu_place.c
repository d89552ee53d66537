/* devmem_emu_place.c - turning a received message into bounce pages and a
 * fragment list, as GPUDirect-TCPX's receive path leaves it.
 *
 * Plan (once per message, when all its bytes are staged): about one message
 * in 4 of at least 64 bytes keeps 1..128 leading bytes out of the pages;
 * they go straight into the posted buffer (the real plugin does this with
 * bytes that land in the kernel's linear buffer). The rest is cut into
 * pieces of a whole page, except that about one piece in 8 gets a random
 * length of 1..4096 bytes while the list still fits its 2048 entries.
 *
 * Place (retried while the pool lacks free pages: backpressure, never an
 * error): every piece gets its own random free page and a random in-page
 * offset where it fits; the pieces are copied there (and the leading bytes
 * into the posted buffer), the list is shuffled, and cnt is written last.
 */
#include <stdatomic.h>
#include <string.h>

#include "devmem_emu.h"

static void plan(emu_rcomm *c, emu_rreq *r, int slot)
{
    size_t size = (size_t)c->hdr.size, off = 0;
    tcpx_unpack_frag *f = c->meta->mem[slot];
    uint32_t n = 0;
    r->linear = 0;
    if (size >= 64 && emu_rand(&c->rng) % 4 == 0) {
        size_t lin = 1 + emu_rand(&c->rng) % EMU_LINEAR_MAX;
        r->linear = (uint32_t)(lin < size ? lin : size - 1);
        off = r->linear;
    }
    /* Invariant: n + ceil((size - off) / EMU_PAGE) <= EMU_MAX_FRAGS (true
     * at the start since size <= EMU_MAX_MSG; whole pages keep it). */
    while (off < size) {
        size_t rem = size - off, len = rem < EMU_PAGE ? rem : EMU_PAGE;
        if (emu_rand(&c->rng) % 8 == 0) {
            size_t s = 1 + emu_rand(&c->rng) % EMU_PAGE;
            if (s < len && n + 1 + (rem - s + EMU_PAGE - 1) / EMU_PAGE <= EMU_MAX_FRAGS) len = s;
        }
        f[n].src_off = 0;
        f[n].len = (uint32_t)len;
        f[n].dst_off = off;
        n++;
        off += len;
    }
    r->size = size;
    r->nfrags = n;
    r->planned = 1;
}

tcpx_ncclResult_t emu_place(emu_rcomm *c, emu_rreq *r, int *placed)
{
    int slot = (int)(r->seq % EMU_SLOTS);
    *placed = 0;
    if (!r->planned) plan(c, r, slot);
    uint32_t n = r->nfrags;
    if (!emu_pool_take(n, r->pages, &c->rng)) return TCPX_NCCL_SUCCESS;
    tcpx_unpack_frag *f = c->meta->mem[slot];
    const emu_mem *m = emu_mem_ops;
    tcpx_ncclResult_t rc = TCPX_NCCL_SUCCESS;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = f[i].len;
        uint32_t in_page = len == EMU_PAGE ? 0 : (uint32_t)(emu_rand(&c->rng) % (EMU_PAGE - len + 1));
        f[i].src_off = r->pages[i] * (uint32_t)EMU_PAGE + in_page;
        if (!rc) rc = m->put(c->bounce + f[i].src_off, c->staging + f[i].dst_off, len);
    }
    if (!rc && r->linear) rc = m->put(r->data, c->staging, r->linear);
    tcpx_ncclResult_t wrc = m->wait(); /* also after a failed put: the staging buffer must be free */
    if (rc || wrc) {
        emu_pool_give(r->pages, n);
        return rc ? rc : wrc;
    }
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(emu_rand(&c->rng) % i);
        tcpx_unpack_frag t = f[i - 1];
        f[i - 1] = f[j];
        f[j] = t;
    }
    /* The list, then its count: a reader that sees cnt sees the list. */
    atomic_thread_fence(memory_order_release);
    ((volatile uint64_t *)c->meta->cnt)[slot] = n;
    *placed = 1;
    return TCPX_NCCL_SUCCESS;
}
