/* soak_plan.c - the random plan of one soak round (see soak.h). */
#include <stdio.h>
#include <string.h>

#include "soak.h"

const char *const soak_fault_names[F_NKINDS] = {"partial", "eintr", "eagain", "reset", "close", "stall", "flip"};

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Log-uniform in [lo, hi]. */
static size_t log_uniform(hx_rng *r, size_t lo, size_t hi)
{
    int elo = 63 - __builtin_clzll(lo), ehi = 63 - __builtin_clzll(hi);
    for (;;) {
        int e = elo + (int)hx_rng_below(r, (uint64_t)(ehi - elo + 1));
        size_t base = (size_t)1 << e;
        size_t v = base + (size_t)hx_rng_below(r, base);
        if (v >= lo && v <= hi) return v;
    }
}

/* 1 B..64 MiB, large sizes rarer: 80% up to 64 KiB, 18% up to 4 MiB, 2% up to 64 MiB. */
static size_t pick_size(hx_rng *r, size_t max)
{
    uint64_t c = hx_rng_below(r, 100);
    size_t v = c < 80 ? log_uniform(r, 1, 64 * KiB) : c < 98 ? log_uniform(r, 64 * KiB, 4 * MiB)
                                                             : log_uniform(r, 4 * MiB, 64 * MiB);
    return v > max ? 1 + (size_t)hx_rng_below(r, max) : v;
}

typedef struct cursor {
    size_t used, cap;
} cursor;

/* Room for size bytes after a random gap (scattered offsets); 0 if full. */
static int place(hx_rng *r, cursor *c, size_t size, size_t *off)
{
    size_t gap = (size_t)hx_rng_below(r, 64);
    if (c->used + gap + size > c->cap) return 0;
    *off = c->used + gap;
    c->used += gap + size;
    return 1;
}

static void sort_sizes(size_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            size_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static void pick_round(soak_plan *p, hx_rng *r, const soak_opts *o, size_t *max_op, size_t *cap)
{
    uint64_t t = hx_rng_below(r, 100);
    p->type = o->fault_ok && t < 25 ? R_FAULT : t >= 85 ? R_KILL : R_CLEAN;
    p->digest = hx_rng_below(r, 4) == 0;
    p->channels = 1 + (int)hx_rng_below(r, 8);
    static const size_t chunks[] = {16 * KiB, 64 * KiB, 256 * KiB, 0};
    p->chunk = chunks[hx_rng_below(r, 4)];
    p->peer_timeout_ms = 30000;
    p->strict = 1;
    *max_op = 64 * MiB;
    *cap = hx_rng_below(r, 10) < 3 ? o->max_region : o->max_region < 32 * MiB ? o->max_region : 32 * MiB;
    if (p->type == R_KILL) {
        p->victim = (int)hx_rng_below(r, 2);
        p->kill_ms = (int)hx_rng_below(r, 400);
        p->peer_timeout_ms = 2000;
        p->strict = 0;
    }
    if (p->type == R_FAULT) {
        p->fault_side = (int)hx_rng_below(r, 2);
        p->fault_kind = (int)hx_rng_below(r, F_NKINDS);
        const char *name = soak_fault_names[p->fault_kind];
        if (p->fault_kind <= F_EAGAIN) { /* faults that must not fail anything: slow, so smaller */
            snprintf(p->fault_spec, sizeof p->fault_spec, "%s", name);
            *max_op = p->fault_kind == F_PARTIAL ? 256 * KiB : 4 * MiB;
            *cap = p->fault_kind == F_PARTIAL ? 4 * MiB : 32 * MiB;
        } else {
            snprintf(p->fault_spec, sizeof p->fault_spec, "%s:%llu", name,
                     (unsigned long long)hx_rng_below(r, 2 * MiB));
            p->peer_timeout_ms = 2000;
            p->strict = 0;
            if (p->fault_kind == F_FLIP) p->digest = 1; /* without a digest a flipped data bit is TCP's job */
        }
    }
}

void soak_plan_make(soak_plan *p, uint64_t base_seed, int round, const soak_opts *o)
{
    memset(p, 0, sizeof *p);
    p->seed = hx_mix(base_seed, (uint64_t)round);
    p->round = round;
    hx_rng r;
    hx_rng_seed(&r, p->seed);
    size_t max_op, cap;
    pick_round(p, &r, o, &max_op, &cap);
    cursor src[2] = {{0, cap}, {0, cap}}, dst[2] = {{0, cap}, {0, cap}};
    int want = 20 + (int)hx_rng_below(&r, SOAK_MAX_OPS - 20);
    int cut[9]; /* receives of tag t with op index below cut[t] are posted early */
    for (int t = 0; t < 9; t++) cut[t] = (int)hx_rng_below(&r, (uint64_t)want + 1);
    for (int i = 0; i < want; i++) {
        soak_op *op = &p->op[p->nops];
        memset(op, 0, sizeof *op);
        uint64_t k = hx_rng_below(&r, 100);
        op->kind = k < 40 ? OP_SEND : k < 70 ? OP_WRITE : k < 90 ? OP_READ : OP_NOTIFY;
        op->init = (uint8_t)hx_rng_below(&r, 2);
        op->notif_len = (uint16_t)(8 + (hx_rng_below(&r, 10) ? hx_rng_below(&r, 64) : hx_rng_below(&r, SOAK_MAX_NOTIF - 7)));
        if (op->kind == OP_NOTIFY) {
            p->nops++;
            continue;
        }
        int owner = op->kind == OP_READ ? !op->init : op->init; /* whose src holds the bytes */
        size_t size = pick_size(&r, max_op);
        uint32_t nblk = op->kind == OP_SEND ? 1 : 1 + (uint32_t)hx_rng_below(&r, SOAK_MAX_BLOCKS);
        if (nblk > size) nblk = size ? (uint32_t)size : 1;
        size_t cuts[SOAK_MAX_BLOCKS + 1];
        cuts[0] = 0;
        for (uint32_t b = 1; b < nblk; b++) cuts[b] = (size_t)hx_rng_below(&r, size + 1);
        cuts[nblk] = size;
        sort_sizes(cuts + 1, nblk - 1);
        cursor s0 = src[owner], d0 = dst[!owner];
        int fits = 1;
        op->blk0 = (uint32_t)p->nblk;
        for (uint32_t b = 0; b < nblk && fits; b++) {
            soak_blk *bk = &p->blk[p->nblk + (int)b];
            bk->size = cuts[b + 1] - cuts[b];
            fits = place(&r, &src[owner], bk->size, &bk->src_off) && place(&r, &dst[!owner], bk->size, &bk->dst_off);
        }
        if (!fits) { /* this region is full: undo and stop growing the round */
            src[owner] = s0, dst[!owner] = d0;
            break;
        }
        op->nblk = nblk;
        op->size = size;
        p->nblk += (int)nblk;
        op->notif = op->kind != OP_SEND && hx_rng_below(&r, 2);
        op->tag = 1 + hx_rng_below(&r, 8);
        op->early = (int)p->nops < cut[op->tag];
        if (hx_rng_below(&r, 100) < 8) {
            op->rel_mode = (uint8_t)(REL_AT_POST + hx_rng_below(&r, 3));
            op->rel_side = op->kind == OP_SEND ? (uint8_t)hx_rng_below(&r, 2) : op->init;
            op->rel_arg = op->rel_mode == REL_LATER_POST ? 1 + (uint32_t)hx_rng_below(&r, 10)
                                                         : (uint32_t)hx_rng_below(&r, 21);
            /* a tag of its own: a withdrawn send or receive must not shift the matching of others */
            op->tag = 1000000 + (uint64_t)p->nops;
            op->early = (uint8_t)hx_rng_below(&r, 2);
        }
        p->nops++;
    }
    for (int s = 0; s < 2; s++) {
        p->src_size[s] = src[s].used < 4096 ? 4096 : src[s].used;
        p->dst_size[s] = dst[s].used < 4096 ? 4096 : dst[s].used;
    }
    /* Drawn last, so that a host-only run's plans stay what they were. */
    for (int s = 0; s < 2; s++) {
        int any = 0;
        for (int k = 0; k < 2; k++) {
            p->kind[s][k] = o->gpu && hx_rng_below(&r, 2) ? TCPX_MEM_CUDA : TCPX_MEM_HOST;
            any |= p->kind[s][k] == TCPX_MEM_CUDA;
        }
        p->gpu[s] = any ? o->gpu_dev[s] : -1;
    }
}

const char *soak_mem_name(const soak_plan *p)
{
    static char buf[96];
    if (p->gpu[0] < 0 && p->gpu[1] < 0) return "";
    snprintf(buf, sizeof buf, " [A src %s dst %s, B src %s dst %s]", gt_kind_name(p->kind[0][0]),
             gt_kind_name(p->kind[0][1]), gt_kind_name(p->kind[1][0]), gt_kind_name(p->kind[1][1]));
    return buf;
}

const char *soak_round_name(const soak_plan *p)
{
    static char buf[96];
    if (p->type == R_KILL) snprintf(buf, sizeof buf, "kill %s after %d ms", p->victim ? "B" : "A", p->kill_ms);
    else if (p->type == R_FAULT) snprintf(buf, sizeof buf, "fault %s in %s", p->fault_spec, p->fault_side ? "B" : "A");
    else snprintf(buf, sizeof buf, "clean");
    return buf;
}

void soak_plan_dump(const soak_plan *p)
{
    for (int i = 0; i < p->nops; i++) {
        const soak_op *op = &p->op[i];
        hx_log("op %d: kind %d from %c, %zu bytes in %u blocks, tag %llu, early %d, notif %d, release %d by %c (%u)", i,
               op->kind, 'A' + op->init, op->size, op->nblk, (unsigned long long)op->tag, op->early, op->notif,
               op->rel_mode, 'A' + op->rel_side, op->rel_arg);
    }
}
