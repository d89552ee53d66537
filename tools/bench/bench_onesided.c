/* bench_onesided.c - one size of --op write|read: the sender initiates, the
 * receiver is the target.
 *
 * A message is a list of --blocks N blocks of `size` bytes. On the sender's
 * side the blocks of a slot lie in order, `gap` bytes apart; on the
 * target's side in a scattered order (a fixed permutation), so that neither
 * side is one contiguous run and the lists really gather and scatter.
 *
 * WRITE: message i goes from sender slot i % K to target slot i % 2K with
 *   an attached notification (the iteration number). The target checks the
 *   stamps (first 8 bytes of block 0, last 8 of block N-1) of each message
 *   when its notification arrives, and returns credits (notifications
 *   "verified up to i") every K/2 messages; the sender reuses a target slot
 *   only once it was verified.
 * READ: message i comes from target slot i % (K+1) (random data, fixed)
 *   into sender slot i % K, so a sender slot's next message comes from
 *   another target slot: the sender checks the stamp bytes after each read,
 *   and a read that did not land leaves the previous source's stamps. (When
 *   the stamps of two target slots are alike, as with 1-byte blocks, the
 *   sender also poisons them before each read; so it does for blocks under
 *   8 bytes, whose stamps are too short to tell sources apart.) So each side's checking
 *   costs what it costs in WRITE: two stamp copies per message, which for
 *   GPU memory are two synchronous copies. The target's application only
 *   waits on the bootstrap: its progress thread serves every read.
 * Host memory: the checking side (WRITE: the target; READ: the initiator)
 * also checks the CRC-32C of every timed message's bytes (WRITE: all but
 * the stamps) against that of the data it must hold (not --no-crc).
 * Verification round: K messages of pure random data checked byte for byte
 * (by the target for WRITE, by the sender for READ).
 *
 * Script per size (after [size, slots] and the target's descriptor):
 *   warm-up batches [b]..., [0], timed [n], [1] once the timed loop is over,
 *   verification, [2] once that is over, then
 *   R [cpu%, errors, stamped, verified] -> S.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct os_loop {
    bench_ctx *c;
    int sender;
    bench_mem mem;
    tcpx_mem_id id;
    size_t size, stride, span;   /* block, block pitch, slot */
    int blocks, slots, rslots;   /* rslots: target slots */
    uint32_t *perm;              /* target order of the blocks */
    uint64_t seed;
    tcpx_memdesc remote;
    tcpx_xfer **x;
    tcpx_block *list;
    uint64_t errors;
    long stamped;
    long verified_upto;          /* sender, WRITE: credits received */
    uint32_t *want_crc;          /* the checking side: CRC-32C a message must have, per slot it comes from */
    long crc_checked;            /* messages whose bytes went through CRC-32C */
    bench_lat lat;               /* sender: post to completion of timed messages */
    long next_check;             /* target, WRITE: messages checked */
    int poison;                  /* sender, READ: stamps of target slots alike, poison before each read */
} os_loop;

static uint64_t block_seed(const os_loop *l, int slot, int j)
{
    return bench_mix(l->seed, 0xB10C0000ull + (uint64_t)slot * 1048576u + (uint64_t)j);
}
static uint64_t stamp_of(const os_loop *l, long iter) { return bench_mix(l->seed ^ 0x57A3Dull, (uint64_t)iter); }

static size_t local_off(const os_loop *l, int slot, int j) { return (size_t)slot * l->span + (size_t)j * l->stride; }
static size_t remote_off(const os_loop *l, int slot, int j)
{
    return (size_t)slot * l->span + (size_t)l->perm[j] * l->stride;
}

/* Where the stamps are in a slot laid out by off_fn: h bytes at the head of
 * block 0 and at the tail of block N-1. */
static void stamp_places(const os_loop *l, int slot, int remote, size_t *a, size_t *b, size_t *h)
{
    *h = l->size < 8 ? l->size : 8;
    *a = remote ? remote_off(l, slot, 0) : local_off(l, slot, 0);
    *b = (remote ? remote_off(l, slot, l->blocks - 1) : local_off(l, slot, l->blocks - 1)) + l->size - *h;
}

static void put8(os_loop *l, size_t off, uint64_t v, size_t h)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    if (l->mem.ops->write(&l->mem, off, b, h)) bench_die("stamp write failed");
}

static int match8(os_loop *l, size_t off, uint64_t v, size_t h)
{
    uint8_t b[8];
    if (l->mem.ops->read(&l->mem, off, b, h)) bench_die("stamp read failed");
    for (size_t i = 0; i < h; i++)
        if (b[i] != (uint8_t)(v >> (8 * i))) return 0;
    return 1;
}

/* The first h bytes of the random data of block j of target slot `slot`. */
static uint64_t data_head(const os_loop *l, int slot, int j, size_t skip)
{
    uint8_t b[16] = {0};
    bench_random_fill(block_seed(l, slot, j), skip, b, l->size - skip < 8 ? l->size - skip : 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* READ: whether two target slots have the same stamps (then a read that
 * did not land could leave stamps that look right). */
static int stamps_alike(const os_loop *l)
{
    size_t h = l->size < 8 ? l->size : 8;
    for (int s = 0; s < l->rslots; s++)
        for (int t = s + 1; t < l->rslots; t++)
            if (data_head(l, s, 0, 0) == data_head(l, t, 0, 0) &&
                data_head(l, s, l->blocks - 1, l->size - h) == data_head(l, t, l->blocks - 1, l->size - h))
                return 1;
    return 0;
}

/* --flip-bit-at: the middle byte of the middle block of a sender slot. */
static void flip_middle(os_loop *l, int slot) { bench_mem_flip_bit(&l->mem, local_off(l, slot, l->blocks / 2) + l->size / 2); }

static void report_bad(os_loop *l, const char *what, long iter)
{
    if (l->errors < 8)
        fprintf(stderr, "tcpx-bench [%s]: MISMATCH size %zu x %d blocks, message %ld: %s\n", bench_role, l->size,
                l->blocks, iter, what);
    l->errors++;
}

/* Block j's byte range that a CRC covers: all of it, or (skip_stamps) not
 * the stamp bytes at the head of block 0 and the tail of block N-1. */
static void crc_range(const os_loop *l, int j, int skip_stamps, size_t *lo, size_t *hi)
{
    size_t h = l->size < 8 ? l->size : 8;
    *lo = skip_stamps && j == 0 ? h : 0;
    *hi = skip_stamps && j == l->blocks - 1 ? l->size - h : l->size;
    if (*hi < *lo) *hi = *lo;
}

/* CRC-32C of a message as it lies in slot `slot` of this side's memory
 * (the target's scattered offsets, or the initiator's): 0, or 1 where the
 * memory is not read that way (GPU). */
static int slot_crc(os_loop *l, int slot, int remote, int skip_stamps, uint32_t *crc)
{
    *crc = 0;
    for (int j = 0; j < l->blocks; j++) {
        size_t lo, hi, off = remote ? remote_off(l, slot, j) : local_off(l, slot, j);
        crc_range(l, j, skip_stamps, &lo, &hi);
        if (hi > lo && bench_mem_crc(&l->mem, off + lo, hi - lo, crc)) return 1;
    }
    return 0;
}

/* What slot_crc must give for data of `src_slot` of the moving side. */
static uint32_t expected_crc(const os_loop *l, int src_slot, int skip_stamps)
{
    uint32_t c = 0;
    for (int j = 0; j < l->blocks; j++) {
        size_t lo, hi;
        crc_range(l, j, skip_stamps, &lo, &hi);
        if (hi > lo) c = bench_random_crc(c, block_seed(l, src_slot, j), lo, hi - lo);
    }
    return c;
}

/* The whole-message check of message `iter` in slot `slot` here, data of
 * `src_slot`. */
static void crc_check(os_loop *l, int slot, int remote, int skip_stamps, int src_slot, long iter)
{
    uint32_t got;
    if (!l->want_crc || slot_crc(l, slot, remote, skip_stamps, &got)) return;
    l->crc_checked++;
    if (got != l->want_crc[src_slot]) {
        char what[96];
        snprintf(what, sizeof what, "CRC-32C of the message is 0x%08x, expected 0x%08x", got, l->want_crc[src_slot]);
        report_bad(l, what, iter);
    }
}

static void setup(os_loop *l, bench_ctx *c, int sender, size_t size)
{
    memset(l, 0, sizeof *l);
    l->c = c;
    l->sender = sender;
    l->size = size;
    l->blocks = c->o->blocks;
    l->stride = size + (l->blocks > 1 ? 256 : 0);
    l->span = l->stride * (size_t)l->blocks;
    int k = c->o->inflight;
    size_t cap = c->o->max_slot_bytes / (2 * l->span);
    if ((size_t)k > cap) k = cap ? (int)cap : 1;
    l->slots = k;
    l->rslots = c->o->op == BENCH_OP_WRITE ? 2 * k : k + 1;
    l->seed = bench_mix(c->o->seed, size * 7919 + (uint64_t)l->blocks);
    l->perm = malloc((size_t)l->blocks * sizeof *l->perm);
    l->x = calloc((size_t)l->slots, sizeof *l->x);
    l->list = calloc((size_t)l->blocks, sizeof *l->list);
    bench_lat_init(&l->lat, l->slots);
    if (!l->perm || !l->x || !l->list) bench_die("out of memory");
    /* A fixed scatter: even positions forward, then odd ones backward. */
    int n = 0;
    for (int j = 0; j < l->blocks; j += 2) l->perm[n++] = (uint32_t)j;
    for (int j = l->blocks - 1 - (l->blocks % 2 == 0 ? 0 : 1); j >= 1; j -= 2) l->perm[n++] = (uint32_t)j;
    if (sender && c->o->op == BENCH_OP_READ) l->poison = l->size < 8 || stamps_alike(l);
    l->mem.ops = c->mem;
    l->mem.gpu = c->gpu;
    size_t total = (size_t)(sender ? l->slots : l->rslots) * l->span;
    if (c->mem->alloc(&l->mem, total)) bench_die("cannot allocate %zu bytes of %s memory", total, c->mem->name);
    bench_check(tcpx_mem_register(c->s, l->mem.base, total, c->mem->kind, &l->id), "tcpx_mem_register");
    /* The moving side's data: random per block (READ: the target's). */
    int fills = (sender && c->o->op == BENCH_OP_WRITE) || (!sender && c->o->op == BENCH_OP_READ);
    int nslots = sender ? l->slots : l->rslots;
    for (int s = 0; s < nslots; s++)
        for (int j = 0; j < l->blocks; j++) {
            size_t off = sender ? local_off(l, s, j) : remote_off(l, s, j);
            bench_mem_fill_random(&l->mem, off, l->size, fills ? block_seed(l, s, j) : ~block_seed(l, s, j));
        }
    /* The checking side (WRITE: the target, of the sender's K slots less
     * the stamps; READ: the initiator, of the target's K slots, every byte)
     * knows what each message's bytes must sum to. */
    int checks = (!sender && c->o->op == BENCH_OP_WRITE) || (sender && c->o->op == BENCH_OP_READ);
    if (checks && c->o->crc && c->mem->kind == TCPX_MEM_HOST) {
        int nsrc = c->o->op == BENCH_OP_WRITE ? l->slots : l->rslots;
        l->want_crc = malloc((size_t)nsrc * sizeof *l->want_crc);
        if (!l->want_crc) bench_die("out of memory");
        for (int s = 0; s < nsrc; s++) l->want_crc[s] = expected_crc(l, s, c->o->op == BENCH_OP_WRITE);
    }
}

static void teardown(os_loop *l)
{
    bench_check(tcpx_mem_deregister(l->c->s, l->id), "tcpx_mem_deregister");
    l->mem.ops->free(&l->mem);
    free(l->perm);
    free(l->x);
    free(l->list);
    free(l->want_crc);
    bench_lat_free(&l->lat);
}

/* ---------------------------------------------------------------- sender */

/* WRITE: credits from the target, without blocking. */
static void take_credits(os_loop *l)
{
    char from[TCPX_NAME_MAX];
    uint8_t b[16];
    size_t len;
    tcpx_status st;
    while ((st = tcpx_notify_poll(l->c->s, from, sizeof from, b, sizeof b, &len)) == TCPX_OK) {
        if (len != 8) bench_die("credit of %zu bytes", len);
        long v = 0;
        for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
        if (v > l->verified_upto) l->verified_upto = v;
    }
    if (st != TCPX_IN_PROGRESS) bench_check(st, "tcpx_notify_poll");
}

static void finish(os_loop *l, int slot, long iter, int check)
{
    tcpx_status st = tcpx_xfer_wait(l->x[slot], BENCH_IO_TIMEOUT_MS);
    if (st != TCPX_OK) {
        char what[112];
        snprintf(what, sizeof what, "tcpx_xfer_wait (%s, %zu x %d blocks, slot %d, message %ld)",
                 l->c->o->op == BENCH_OP_WRITE ? "write" : "read", l->size, l->blocks, slot, iter);
        bench_check(st, what);
    }
    bench_lat_done(&l->lat, slot);
    tcpx_xfer_release(l->x[slot]);
    l->x[slot] = NULL;
    if (l->c->o->op == BENCH_OP_WRITE && iter == l->c->o->flip_at) flip_middle(l, slot);
    if (!check || l->c->o->op != BENCH_OP_READ) return;
    size_t a, b, h;
    stamp_places(l, slot, 0, &a, &b, &h);
    int rs = (int)(iter % l->rslots);
    l->stamped++;
    if (!match8(l, a, data_head(l, rs, 0, 0), h) || !match8(l, b, data_head(l, rs, l->blocks - 1, l->size - h), h))
        report_bad(l, "a stamp of the read did not land", iter);
    crc_check(l, slot, 0, 0, rs, iter);
}

static void post(os_loop *l, int slot, long iter, int stamp)
{
    const bench_opts *o = l->c->o;
    int rs = (int)(iter % l->rslots);
    size_t a, b, h;
    stamp_places(l, slot, 0, &a, &b, &h);
    if (stamp && o->op == BENCH_OP_WRITE) {
        put8(l, a, stamp_of(l, iter), h);
        put8(l, b, stamp_of(l, iter), h);
    } else if (stamp && l->poison) { /* READ: poison what must land */
        put8(l, a, ~data_head(l, rs, 0, 0), h);
        put8(l, b, ~data_head(l, rs, l->blocks - 1, l->size - h), h);
    }
    if (o->op == BENCH_OP_WRITE && iter == o->flip_at) flip_middle(l, slot); /* undone in finish */
    if (o->op == BENCH_OP_WRITE) {
        uint64_t deadline_spins = 0;
        while (iter - l->rslots >= l->verified_upto) { /* the target slot is still being checked */
            take_credits(l);
            if (++deadline_spins > 2000000000ull) bench_die("no credit from the target");
            if (iter - l->rslots >= l->verified_upto) sched_yield();
        }
    }
    for (int j = 0; j < l->blocks; j++)
        l->list[j] = (tcpx_block){l->id, local_off(l, slot, j), &l->remote, remote_off(l, rs, j), l->size};
    bench_lat_posted(&l->lat, slot); /* after any wait for credits */
    bench_check(tcpx_xfer_create(l->c->s, l->c->peer, &l->x[slot]), "tcpx_xfer_create");
    uint8_t note[8];
    for (int i = 0; i < 8; i++) note[i] = (uint8_t)((uint64_t)iter >> (8 * i));
    tcpx_notif_msg nm = {note, 8};
    tcpx_status st = o->op == BENCH_OP_WRITE ? tcpx_xfer_post_write_list(l->x[slot], (size_t)l->blocks, l->list, &nm)
                                             : tcpx_xfer_post_read_list(l->x[slot], (size_t)l->blocks, l->list, NULL);
    bench_check(st, o->op == BENCH_OP_WRITE ? "tcpx_xfer_post_write_list" : "tcpx_xfer_post_read_list");
}

/* Messages first..first+n-1; message i uses sender slot i % K. */
static void run_sender(os_loop *l, long first, long n, int stamp)
{
    for (long i = first; i < first + n; i++) {
        int slot = (int)(i % l->slots);
        if (l->x[slot]) finish(l, slot, i - l->slots, stamp);
        post(l, slot, i, stamp);
    }
    for (long i = first + n; i < first + n + l->slots; i++) {
        int slot = (int)(i % l->slots);
        if (l->x[slot]) finish(l, slot, i - l->slots, stamp);
    }
}

static void run_stamped(void *l, long first, long n) { run_sender(l, first, n, 1); }

void bench_os_send(bench_ctx *c, size_t size, bench_result *r)
{
    os_loop l;
    setup(&l, c, 1, size);
    boot_send_u64(c->boot, size);
    boot_send_u64(c->boot, (uint64_t)l.slots);
    uint8_t blob[TCPX_MEMDESC_BLOB_SIZE];
    uint32_t blen = boot_recv(c->boot, blob, sizeof blob);
    bench_check(tcpx_memdesc_deserialize(blob, blen, &l.remote), "tcpx_memdesc_deserialize");
    l.verified_upto = 0;

    long w = 0;
    long n = bench_warmup(c, l.slots, 2L * l.slots, run_stamped, &l, &w);
    double cpu0 = bench_cpu(), t0 = bench_now();
    l.lat.on = 1;
    run_sender(&l, w, n, 1);
    l.lat.on = 0;
    double t1 = bench_now(), cpu1 = bench_cpu();
    boot_send_u64(c->boot, 1); /* the timed loop is over */
    w += n;

    /* Verification: pure random data, one message per slot, every byte. */
    long verified = 0;
    if (c->o->op == BENCH_OP_WRITE) {
        for (int s = 0; s < l.slots; s++)
            for (int j = 0; j < l.blocks; j++) bench_mem_fill_random(&l.mem, local_off(&l, s, j), size, block_seed(&l, s, j));
        /* Message i lands in target slot i % 2K: the target knows. */
        run_sender(&l, w, l.slots, 0);
        /* Take the last credits, so none is left for the next size. */
        double t = bench_now();
        while (l.verified_upto < w + l.slots) {
            take_credits(&l);
            if (bench_now() - t > BENCH_IO_TIMEOUT_MS / 1000.0) bench_die("the target's last credit did not come");
            sched_yield();
        }
    } else {
        for (int s = 0; s < l.slots; s++)
            for (int j = 0; j < l.blocks; j++)
                bench_mem_fill_random(&l.mem, local_off(&l, s, j), size, bench_mix(block_seed(&l, s, j), 0xBAD));
        run_sender(&l, w, l.slots, 0);
        for (int k = 0; k < l.slots; k++) {
            int slot = (int)((w + k) % l.slots), rs = (int)((w + k) % l.rslots);
            for (int j = 0; j < l.blocks; j++) {
                char what[80];
                snprintf(what, sizeof what, "read %zu x %d, slot %d block %d (verification)", size, l.blocks, slot, j);
                l.errors += bench_mem_verify_random(&l.mem, local_off(&l, slot, j), size, block_seed(&l, rs, j), what);
            }
            verified++;
        }
    }
    boot_send_u64(c->boot, 2); /* the verification round is over: the target may let go */
    memset(r, 0, sizeof *r);
    r->size = size;
    r->slots = l.slots;
    r->msgs = n;
    r->seconds = t1 - t0;
    double bytes = (double)n * (double)size * (double)l.blocks;
    r->gbps = bytes / r->seconds / 1e9;
    r->us_per_msg = r->seconds / (double)n * 1e6;
    r->cpu_send = (cpu1 - cpu0) / r->seconds * 100;
    r->p50_us = bench_lat_pct(&l.lat, 50);
    r->p99_us = bench_lat_pct(&l.lat, 99);
    r->cpu_recv = boot_recv_f64(c->boot);
    r->errors = boot_recv_u64(c->boot) + l.errors;
    r->stamped_msgs = (long)boot_recv_u64(c->boot) + l.stamped;
    r->verified_msgs = (long)boot_recv_u64(c->boot) + verified;
    r->crc_msgs = (long)boot_recv_u64(c->boot) + l.crc_checked;
    teardown(&l);
}

/* ---------------------------------------------------------------- target */

static void credit(os_loop *l, long upto)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)upto >> (8 * i));
    bench_check(tcpx_notify_send(l->c->s, l->c->peer, b, 8), "tcpx_notify_send");
}

/* WRITE target: check `count` messages as their notifications arrive. */
static void check_writes(os_loop *l, long count, int full)
{
    long batch = l->slots / 2 > 0 ? l->slots / 2 : 1;
    for (long got = 0; got < count; got++) {
        char from[TCPX_NAME_MAX];
        uint8_t b[16];
        size_t len = 0;
        tcpx_status st;
        double t0 = bench_now();
        while ((st = tcpx_notify_poll(l->c->s, from, sizeof from, b, sizeof b, &len)) == TCPX_IN_PROGRESS) {
            if (bench_now() - t0 > BENCH_IO_TIMEOUT_MS / 1000.0) bench_die("no notification from the sender");
            sched_yield();
        }
        bench_check(st, "tcpx_notify_poll");
        long iter = 0;
        for (int i = 7; i >= 0; i--) iter = iter << 8 | b[i];
        if (len != 8 || iter != l->next_check) report_bad(l, "notification out of order", iter);
        int rs = (int)(iter % l->rslots);
        if (full) {
            for (int j = 0; j < l->blocks; j++) {
                char what[80];
                snprintf(what, sizeof what, "write %zu x %d, target slot %d block %d (verification)", l->size,
                         l->blocks, rs, j);
                /* message i came from sender slot i % K */
                l->errors += bench_mem_verify_random(&l->mem, remote_off(l, rs, j), l->size,
                                                     block_seed(l, (int)(iter % l->slots), j), what);
            }
        } else {
            size_t a, bb, h;
            stamp_places(l, rs, 1, &a, &bb, &h);
            l->stamped++;
            if (!match8(l, a, stamp_of(l, iter), h) || !match8(l, bb, stamp_of(l, iter), h))
                report_bad(l, "a stamp of the write is wrong when its notification came", iter);
            crc_check(l, rs, 1, 1, (int)(iter % l->slots), iter); /* message i came from sender slot i % K */
        }
        l->next_check = iter + 1;
        if (l->next_check % batch == 0 || got == count - 1) credit(l, l->next_check);
    }
}

void bench_os_recv(bench_ctx *c, size_t size)
{
    os_loop l;
    setup(&l, c, 0, size);
    uint64_t s_size = boot_recv_u64(c->boot), s_slots = boot_recv_u64(c->boot);
    if (s_size != size || s_slots != (uint64_t)l.slots)
        bench_die("sender runs size %llu with %llu slots, target expected %zu with %d", (unsigned long long)s_size,
                  (unsigned long long)s_slots, size, l.slots);
    tcpx_memdesc d;
    uint8_t blob[TCPX_MEMDESC_BLOB_SIZE];
    size_t blen;
    bench_check(tcpx_memdesc_get(c->s, l.id, &d), "tcpx_memdesc_get");
    bench_check(tcpx_memdesc_serialize(&d, blob, sizeof blob, &blen), "tcpx_memdesc_serialize");
    boot_send(c->boot, blob, (uint32_t)blen);
    int writes = c->o->op == BENCH_OP_WRITE;
    long batch;
    while ((batch = (long)boot_recv_u64(c->boot)) > 0)
        if (writes) check_writes(&l, batch, 0);
    long n = (long)boot_recv_u64(c->boot);
    double cpu0 = bench_cpu(), t0 = bench_now();
    if (writes) check_writes(&l, n, 0);
    boot_recv_u64(c->boot); /* the sender's timed loop is over (a READ target only waits for this) */
    double t1 = bench_now(), cpu1 = bench_cpu();
    long verified = 0;
    if (writes) {
        check_writes(&l, l.slots, 1);
        verified = l.slots;
    }
    boot_recv_u64(c->boot); /* the sender's verification round is over */
    boot_send_f64(c->boot, (cpu1 - cpu0) / (t1 - t0) * 100);
    boot_send_u64(c->boot, l.errors);
    boot_send_u64(c->boot, (uint64_t)l.stamped);
    boot_send_u64(c->boot, (uint64_t)verified);
    boot_send_u64(c->boot, (uint64_t)l.crc_checked);
    teardown(&l);
}
