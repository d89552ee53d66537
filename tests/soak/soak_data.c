/* soak_data.c - the bytes a soak round moves, and their checks (see soak.h). */
#include <inttypes.h>
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

uint64_t soak_check_blk(const soak_plan *p, uint32_t b, const uint8_t *buf, const char *what, soak_stats *st)
{
    size_t len = p->blk[b].size;
    uint64_t seed = soak_blk_seed(p, b);
    size_t first = hx_verify(buf, len, seed, 0);
    st->bytes_verified += len;
    if (first == SIZE_MAX) return 0;
    uint8_t want[4096];
    uint64_t bad = 0;
    for (size_t off = 0; off < len; off += sizeof want) {
        size_t n = len - off < sizeof want ? len - off : sizeof want;
        hx_fill(want, n, seed, off);
        for (size_t j = 0; j < n; j++) bad += want[j] != buf[off + j];
    }
    uint8_t w;
    hx_fill(&w, 1, seed, first);
    hx_log("CORRUPTED: round %d (seed %" PRIu64 "), %s, block %u: %" PRIu64 " of %zu bytes wrong, first at %zu: "
           "expected 0x%02x, got 0x%02x",
           p->round, p->seed, what, b, bad, len, first, w, buf[first]);
    st->corrupted += bad;
    return bad;
}
