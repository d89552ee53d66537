/* soak_data.c - the bytes a soak round moves, and their checks (see soak.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

uint64_t soak_blk_seed(const soak_plan *p, uint32_t b)
{
    return hx_mix(p->seed, 0x100000u + b);
}

static uint64_t notif_seed(const soak_plan *p, int i)
{
    return hx_mix(p->seed, 0x200000u + (uint64_t)i);
}

/* Op index (8 bytes, little endian), then the op's pattern. */
void soak_notif_fill(const soak_plan *p, int i, uint8_t *buf)
{
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)i >> (8 * k));
    hx_fill(buf + 8, p->op[i].notif_len - 8u, notif_seed(p, i), 0);
}

int soak_notif_check(const soak_plan *p, const uint8_t *buf, size_t len, int *op)
{
    if (len < 8) return 0;
    uint64_t i = 0;
    for (int k = 0; k < 8; k++) i |= (uint64_t)buf[k] << (8 * k);
    if (i >= (uint64_t)p->nops || len != p->op[i].notif_len) return 0;
    *op = (int)i;
    return hx_verify(buf + 8, len - 8, notif_seed(p, (int)i), 0) == SIZE_MAX;
}

void soak_fill_blk(const soak_plan *p, uint32_t b, gt_region *r, size_t off)
{
    gt_fill(r, off, p->blk[b].size, soak_blk_seed(p, b));
}

/* The bytes of [off, +len) of r on the host: r's own memory, or a copy of
 * GPU memory in *copy (to be freed). */
static const uint8_t *host_bytes(gt_region *r, size_t off, size_t len, uint8_t **copy)
{
    *copy = NULL;
    if (r->kind == TCPX_MEM_HOST) return r->ptr + off;
    *copy = malloc(len);
    HX_CHECK(*copy, "malloc %zu bytes", len);
    tcpx_status st = tcpx_gpu_memcpy(r->gpu->g, *copy, r->ptr + off, len);
    HX_CHECK(st == TCPX_OK, "copying %zu bytes of GPU region %s back: %s: %s", len, r->name, tcpx_strerror(st),
             tcpx_last_error());
    return *copy;
}

uint64_t soak_check_blk(const soak_plan *p, uint32_t b, gt_region *r, size_t off, const char *what, soak_stats *st)
{
    size_t len = p->blk[b].size;
    uint64_t seed = soak_blk_seed(p, b);
    uint64_t first = gt_first_bad(r, off, len, seed); /* on the device for GPU memory */
    st->bytes_verified += len;
    if (r->kind == TCPX_MEM_CUDA) st->bytes_verified_gpu += len;
    if (first == UINT64_MAX) return 0;
    uint8_t *copy, *want = malloc(len);
    HX_CHECK(want, "malloc %zu bytes", len);
    const uint8_t *got = host_bytes(r, off, len, &copy);
    tcpx_fill_random_host(want, len, seed);
    uint64_t bad = 0;
    for (size_t j = 0; j < len; j++) bad += want[j] != got[j];
    hx_log("CORRUPTED: round %d (seed %" PRIu64 "), %s, block %u (%s memory): %" PRIu64 " of %zu bytes wrong, "
           "first at %" PRIu64 ": expected 0x%02x, got 0x%02x",
           p->round, p->seed, what, b, gt_kind_name(r->kind), bad, len, first, want[first], got[first]);
    free(want);
    free(copy);
    st->corrupted += bad ? bad : 1;
    return bad;
}
