/* bench_xfer.c - one message size, sender and receiver.
 *
 * Both sides register `slots` buffers of `size` bytes (one registration)
 * and keep one message per slot in flight: tcpx_xfer_create, post (tag =
 * slot), and, when the slot comes round again, tcpx_xfer_wait + release.
 *
 * Script per size (bootstrap messages in brackets):
 *   S [size, slots] -> R        both check they agree
 *   S [b1] [b2] ... [0] -> R: warm-up batches of doubling size; the last
 *           one's rate picks N when --iters is auto
 *   S [N] -> R, N timed messages. S stamps a value derived from the
 *           iteration number into the first and last 8 bytes of every
 *           message (warm-up too), R checks every one
 *   verification: S rewrites its slots with pure random data, R poisons
 *           its slots with another pattern, one message per slot, R compares
 *           every byte with the regenerated random data
 *   R [cpu%, errors, stamped, verified, crc-checked] -> S
 * Between its stamps a message carries its slot's fixed random bytes: R
 * checks their CRC-32C in every message of host memory, and for GPU memory
 * the stamps and every byte in one compare kernel (not --no-crc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct loop {
    bench_ctx *c;
    int send;
    bench_mem mem;
    tcpx_mem_id id;
    size_t size;
    int slots;
    uint64_t size_seed;
    tcpx_xfer **x;
    uint64_t errors;
    long stamped;
    long crc_checked;      /* receiver: messages whose every byte went through CRC-32C */
    uint32_t *mid_crc;     /* receiver: CRC-32C of each slot's bytes between the stamps */
    bench_lat lat;
} loop;

static uint64_t slot_seed(const loop *l, int slot) { return bench_mix(l->size_seed, 0x5107000u + (uint64_t)slot); }
static uint64_t stamp_value(const loop *l, long iter) { return bench_mix(l->size_seed ^ 0x57A3Dull, (uint64_t)iter); }

static int slots_for(const bench_opts *o, size_t size)
{
    size_t k = (size_t)o->inflight;
    size_t cap = o->max_slot_bytes / size;
    if (k > cap) k = cap ? cap : 1;
    return (int)k;
}

/* The stamp: le64(v) truncated to h = min(8, size) bytes, written at 0 and
 * then at size - h (the second write wins where they overlap). */
static void stamp_write(loop *l, int slot, long iter)
{
    uint64_t v = stamp_value(l, iter);
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    size_t h = l->size < 8 ? l->size : 8, base = (size_t)slot * l->size;
    if (l->mem.ops->write(&l->mem, base, b, h) || l->mem.ops->write(&l->mem, base + l->size - h, b, h))
        bench_die("stamp write failed");
}

/* GPU memory: the stamps and every byte between them in one kernel (one
 * synchronous step per message, where reading the two stamps is two). */
static void device_check(loop *l, int slot, long iter, uint64_t v, size_t h)
{
    uint64_t bad = UINT64_MAX;
    if (l->mem.ops->check_stamped(&l->mem, (size_t)slot * l->size, l->size, slot_seed(l, slot), h, v, &bad))
        bench_die("message check failed: %s", tcpx_last_error());
    l->stamped++;
    l->crc_checked++;
    if (bad == UINT64_MAX) return;
    if (l->errors < 8)
        fprintf(stderr, "tcpx-bench [recv]: MISMATCH size %zu slot %d message %ld: byte at offset %llu differs (%s)\n",
                l->size, slot, iter, (unsigned long long)bad,
                bad < h || bad >= l->size - h ? "a stamp" : "between the stamps");
    l->errors++;
}

static void stamp_check(loop *l, int slot, long iter)
{
    uint64_t v = stamp_value(l, iter);
    size_t h = l->size < 8 ? l->size : 8, base = (size_t)slot * l->size, tail = l->size - h;
    if (l->c->o->crc && l->mem.ops->check_stamped) {
        device_check(l, slot, iter, v, h);
        return;
    }
    uint8_t head[8], last[8];
    if (l->mem.ops->read(&l->mem, base, head, h) || l->mem.ops->read(&l->mem, base + tail, last, h))
        bench_die("stamp read failed");
    l->stamped++;
    for (size_t p = 0; p < h; p++) {
        size_t q = tail + p; /* offset of last[p] in the message */
        uint8_t want_head = p >= tail ? (uint8_t)(v >> (8 * (p - tail))) : (uint8_t)(v >> (8 * p));
        uint8_t want_last = (uint8_t)(v >> (8 * p));
        const char *which = NULL;
        size_t off = 0;
        uint8_t want = 0, got = 0;
        if (head[p] != want_head) which = "head", off = p, want = want_head, got = head[p];
        else if (last[p] != want_last) which = "tail", off = q, want = want_last, got = last[p];
        if (!which) continue;
        if (l->errors < 8)
            fprintf(stderr,
                    "tcpx-bench [recv]: MISMATCH size %zu slot %d message %ld: stamp %s byte at offset %zu: "
                    "expected 0x%02x, got 0x%02x\n",
                    l->size, slot, iter, which, off, want, got);
        l->errors++;
        return;
    }
    /* Between the stamps every message of a slot carries the slot's fixed
     * random bytes: their CRC-32C catches a flipped bit anywhere. */
    size_t mid = l->size > 2 * h ? l->size - 2 * h : 0;
    uint32_t crc = 0;
    if (!l->c->o->crc) return;
    if (mid && !bench_mem_crc(&l->mem, base + h, mid, &crc)) {
        l->crc_checked++;
        if (crc != l->mid_crc[slot]) {
            if (l->errors < 8)
                fprintf(stderr,
                        "tcpx-bench [recv]: MISMATCH size %zu slot %d message %ld: CRC-32C of bytes %zu..%zu is "
                        "0x%08x, expected 0x%08x\n",
                        l->size, slot, iter, h, l->size - h - 1, crc, l->mid_crc[slot]);
            l->errors++;
        }
    } else if (!mid) {
        l->crc_checked++; /* the stamps are the whole message */
    }
}

static void finish(loop *l, int slot, long iter, int check)
{
    tcpx_status st = tcpx_xfer_wait(l->x[slot], BENCH_IO_TIMEOUT_MS);
    if (st != TCPX_OK) {
        char what[96];
        snprintf(what, sizeof what, "tcpx_xfer_wait (%s, size %zu, slot %d, message %ld)", l->send ? "send" : "recv",
                 l->size, slot, iter);
        bench_check(st, what);
    }
    bench_lat_done(&l->lat, slot);
    tcpx_xfer_release(l->x[slot]);
    l->x[slot] = NULL;
    if (l->send && iter == l->c->o->flip_at) bench_mem_flip_bit(&l->mem, (size_t)slot * l->size + l->size / 2);
    if (check && !l->send) stamp_check(l, slot, iter);
}

/* n messages, iterations first..first+n-1; stamped when `stamp`. */
static void run(loop *l, long first, long n, int stamp)
{
    for (long k = 0; k < n; k++) {
        int slot = (int)(k % l->slots);
        if (l->x[slot]) finish(l, slot, first + k - l->slots, stamp);
        if (l->send && stamp) stamp_write(l, slot, first + k);
        if (l->send && first + k == l->c->o->flip_at) /* undone when the message is over */
            bench_mem_flip_bit(&l->mem, (size_t)slot * l->size + l->size / 2);
        bench_lat_posted(&l->lat, slot);
        bench_check(tcpx_xfer_create(l->c->s, l->c->peer, &l->x[slot]), "tcpx_xfer_create");
        size_t off = (size_t)slot * l->size;
        tcpx_status st = l->send ? tcpx_xfer_post_send(l->x[slot], l->id, off, l->size, (uint64_t)slot)
                                 : tcpx_xfer_post_recv(l->x[slot], l->id, off, l->size, (uint64_t)slot);
        bench_check(st, l->send ? "tcpx_xfer_post_send" : "tcpx_xfer_post_recv");
    }
    for (long k = n; k < n + l->slots; k++) {
        int slot = (int)(k % l->slots);
        if (l->x[slot]) finish(l, slot, first + k - l->slots, stamp);
    }
}

static void run_stamped(void *l, long first, long n) { run(l, first, n, 1); }

static void setup(loop *l, bench_ctx *c, int send, size_t size)
{
    memset(l, 0, sizeof *l);
    l->c = c;
    l->send = send;
    l->size = size;
    l->slots = slots_for(c->o, size);
    l->size_seed = bench_mix(c->o->seed, size);
    l->mem.ops = c->mem;
    l->mem.gpu = c->gpu;
    size_t total = (size_t)l->slots * size;
    if (c->mem->alloc(&l->mem, total))
        bench_die("cannot allocate %d x %zu bytes of %s memory", l->slots, size, c->mem->name);
    bench_check(tcpx_mem_register(c->s, l->mem.base, total, c->mem->kind, &l->id), "tcpx_mem_register");
    l->x = calloc((size_t)l->slots, sizeof *l->x);
    if (!l->x) bench_die("out of memory");
    bench_lat_init(&l->lat, l->slots);
    l->mid_crc = calloc((size_t)l->slots, sizeof *l->mid_crc);
    if (!l->mid_crc) bench_die("out of memory");
    size_t h = size < 8 ? size : 8;
    if (!send && c->o->crc && size > 2 * h)
        for (int i = 0; i < l->slots; i++) l->mid_crc[i] = bench_random_crc(0, slot_seed(l, i), h, size - 2 * h);
    /* Sender: random data. Receiver: a different pattern, so that a message
     * that never lands cannot pass for one that did. */
    for (int i = 0; i < l->slots; i++)
        bench_mem_fill_random(&l->mem, (size_t)i * size, size, send ? slot_seed(l, i) : ~slot_seed(l, i));
}

static void teardown(loop *l)
{
    bench_check(tcpx_mem_deregister(l->c->s, l->id), "tcpx_mem_deregister");
    l->mem.ops->free(&l->mem);
    free(l->x);
    free(l->mid_crc);
    bench_lat_free(&l->lat);
}

/* First warm-up batch: a few MiB, 2..64 messages per slot. */
static long warmup_count(int slots, size_t size)
{
    size_t per_slot = (4u << 20) / size;
    if (per_slot < 2) per_slot = 2;
    if (per_slot > 64) per_slot = 64;
    return (long)per_slot * slots;
}

void bench_size_send(bench_ctx *c, size_t size, bench_result *r)
{
    loop l;
    setup(&l, c, 1, size);
    boot_send_u64(c->boot, size);
    boot_send_u64(c->boot, (uint64_t)l.slots);

    long w = 0;
    long n = bench_warmup(c, l.slots, warmup_count(l.slots, size), run_stamped, &l, &w);
    double cpu0 = bench_cpu(), t0 = bench_now();
    l.lat.on = 1;
    run(&l, w, n, 1);
    l.lat.on = 0;
    double t1 = bench_now(), cpu1 = bench_cpu();

    /* Verification round: pure random data, every byte checked by R. */
    for (int i = 0; i < l.slots; i++) bench_mem_fill_random(&l.mem, (size_t)i * size, size, slot_seed(&l, i));
    run(&l, w + n, l.slots, 0);

    memset(r, 0, sizeof *r);
    r->size = size;
    r->slots = l.slots;
    r->msgs = n;
    r->seconds = t1 - t0;
    r->gbps = (double)n * (double)size / r->seconds / 1e9;
    r->us_per_msg = r->seconds / (double)n * 1e6;
    r->cpu_send = (cpu1 - cpu0) / r->seconds * 100;
    r->p50_us = bench_lat_pct(&l.lat, 50);
    r->p99_us = bench_lat_pct(&l.lat, 99);
    r->cpu_recv = boot_recv_f64(c->boot);
    r->errors = boot_recv_u64(c->boot);
    r->stamped_msgs = (long)boot_recv_u64(c->boot);
    r->verified_msgs = (long)boot_recv_u64(c->boot);
    r->crc_msgs = (long)boot_recv_u64(c->boot);
    teardown(&l);
}

void bench_size_recv(bench_ctx *c, size_t size)
{
    loop l;
    setup(&l, c, 0, size);
    uint64_t s_size = boot_recv_u64(c->boot), s_slots = boot_recv_u64(c->boot);
    if (s_size != size || s_slots != (uint64_t)l.slots)
        bench_die("sender runs size %llu with %llu slots, receiver expected %zu with %d", (unsigned long long)s_size,
                  (unsigned long long)s_slots, size, l.slots);

    long w = 0, batch;
    while ((batch = (long)boot_recv_u64(c->boot)) > 0) { /* warm-up batches */
        run(&l, w, batch, 1);
        w += batch;
    }
    long n = (long)boot_recv_u64(c->boot);
    double cpu0 = bench_cpu(), t0 = bench_now();
    run(&l, w, n, 1);
    double t1 = bench_now(), cpu1 = bench_cpu();

    /* Poison with yet another pattern, receive one more message per slot,
     * and compare every byte. */
    for (int i = 0; i < l.slots; i++)
        bench_mem_fill_random(&l.mem, (size_t)i * size, size, bench_mix(~slot_seed(&l, i), 0xBAD));
    run(&l, w + n, l.slots, 0);
    long verified = 0;
    for (int i = 0; i < l.slots; i++) {
        char what[64];
        snprintf(what, sizeof what, "size %zu slot %d (verification message)", size, i);
        l.errors += bench_mem_verify_random(&l.mem, (size_t)i * size, size, slot_seed(&l, i), what);
        verified++;
    }

    boot_send_f64(c->boot, (cpu1 - cpu0) / (t1 - t0) * 100);
    boot_send_u64(c->boot, l.errors);
    boot_send_u64(c->boot, (uint64_t)l.stamped);
    boot_send_u64(c->boot, (uint64_t)verified);
    boot_send_u64(c->boot, (uint64_t)l.crc_checked);
    teardown(&l);
}
