/* test_pack.c - the pieces of one-sided lists (src/core/pack.c, mem.c):
 *   - pack_cut cuts a stream the same way at both ends whatever the memory
 *     behind it: chunks of at most `chunk` bytes and TCPX_PACK_MAX_SEGS
 *     pieces, covering the stream exactly, in order;
 *   - pack_contiguous finds runs of one registration and nothing else;
 *   - pack_copy gathers host pieces into a slot and scatters them back,
 *     every byte checked, nothing outside the pieces touched;
 *   - mem_access refuses unknown ids, wrong keys, regions being
 *     deregistered and every out-of-bounds block, offset + length
 *     overflowing 64 bits included, with a sentence naming the block.
 * Random lists from a printed seed (TCPX_TEST_SEED reproduces). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "check.h"

static size_t below(size_t n) { return (size_t)(rnd() % n); }

/* An op over n pieces of the given lengths in one host region. */
static void make_op(tcpx_op *op, tcpx_region *r, size_t n, const size_t *lens, int contiguous)
{
    memset(op, 0, sizeof *op);
    op->segs = calloc(n, sizeof *op->segs);
    size_t pos = below(64);
    for (size_t i = 0; i < n; i++) {
        op->segs[i] = (tcpx_seg){r->ptr + pos, lens[i], r};
        pos += lens[i] + (contiguous ? 0 : 1 + below(100));
        op->size += lens[i];
    }
    op->nsegs = n;
    CHECK(pos <= r->size, "test bug: pieces do not fit");
}

/* Chunks of a stream over pieces: lengths, in order, exactly covering it. */
static size_t cut_all(const tcpx_op *op, size_t chunk, size_t *out, size_t cap)
{
    size_t seg = 0, off = 0, n = 0, total = 0;
    while (total < op->size && n < cap) {
        size_t first_seg = seg;
        size_t len = pack_cut(op, &seg, &off, chunk);
        CHECK(len > 0 && len <= chunk, "chunk %zu of %zu bytes (chunk %zu)", n, len, chunk);
        size_t touched = seg - first_seg + (off != 0);
        CHECK(touched <= TCPX_PACK_MAX_SEGS, "chunk %zu touches %zu pieces", n, touched);
        out[n++] = len;
        total += len;
    }
    CHECK(total == op->size, "chunks cover %zu of %zu bytes", total, op->size);
    return n;
}

static void test_cut(void)
{
    static uint8_t mem_a[1 << 22], mem_b[1 << 22];
    tcpx_region ra = {.id = 1, .ptr = mem_a, .size = sizeof mem_a}, rb = {.id = 2, .ptr = mem_b, .size = sizeof mem_b};
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + below(round < 100 ? 20 : 3000);
        size_t *lens = calloc(n, sizeof *lens);
        size_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            lens[i] = below(4) ? 1 + below(600) : 1 + below(20000);
            if (sum + lens[i] > (1u << 21)) lens[i] = 1;
            sum += lens[i];
        }
        size_t chunk = below(2) ? 4096 + below(70000) : 1u << 20;
        tcpx_op a, b;
        make_op(&a, &ra, n, lens, 0);
        make_op(&b, &rb, n, lens, 1);
        size_t *ca = calloc(n + sum / 4096 + 8, sizeof *ca), *cb = calloc(n + sum / 4096 + 8, sizeof *cb);
        size_t na = cut_all(&a, chunk, ca, n + sum / 4096 + 8), nb = cut_all(&b, chunk, cb, n + sum / 4096 + 8);
        CHECK(na == nb && !memcmp(ca, cb, na * sizeof *ca), "round %d: the two ends cut %zu vs %zu chunks", round, na, nb);
        /* Contiguous pieces of one region are one run; separated ones are not. */
        tcpx_region *r;
        CHECK(pack_contiguous(&b, 0, 0, b.size, &r) == b.segs[0].ptr && r == &rb, "round %d: contiguous run", round);
        if (n > 1) CHECK(pack_contiguous(&a, 0, 0, a.segs[0].len + 1, &r) == NULL, "round %d: gap seen", round);
        CHECK(pack_contiguous(&a, n - 1, 0, a.segs[n - 1].len, &r) == a.segs[n - 1].ptr, "round %d: one piece", round);
        free(ca);
        free(cb);
        free(a.segs);
        free(b.segs);
        free(lens);
    }
    /* Two pieces of two regions side by side in memory are not one run. */
    tcpx_region r1 = {.id = 1, .ptr = mem_a, .size = 100}, r2 = {.id = 2, .ptr = mem_a + 100, .size = 100};
    tcpx_seg two[2] = {{mem_a, 100, &r1}, {mem_a + 100, 100, &r2}};
    tcpx_op op = {.segs = two, .nsegs = 2, .size = 200};
    tcpx_region *r;
    CHECK(pack_contiguous(&op, 0, 50, 100, &r) == NULL, "a run across two registrations");
    /* TCPX_PACK_MAX_SEGS bounds the pieces of a chunk. */
    size_t lens[3000];
    for (int i = 0; i < 3000; i++) lens[i] = 1;
    make_op(&op, &ra, 3000, lens, 1);
    size_t seg = 0, off = 0;
    CHECK(pack_cut(&op, &seg, &off, 1u << 20) == TCPX_PACK_MAX_SEGS && seg == TCPX_PACK_MAX_SEGS,
          "3000 one-byte pieces: first chunk of %d", TCPX_PACK_MAX_SEGS);
    free(op.segs);
}

static void test_copy(void)
{
    static uint8_t mem[1 << 21], slot[1 << 20], back[1 << 21];
    tcpx_region r = {.id = 1, .ptr = mem, .size = sizeof mem, .kind = TCPX_MEM_HOST};
    for (int round = 0; round < 100; round++) {
        size_t n = 1 + below(400), lens[400];
        for (size_t i = 0; i < n; i++) lens[i] = 1 + below(2000);
        tcpx_op op;
        make_op(&op, &r, n, lens, 0);
        for (size_t i = 0; i < sizeof mem; i++) mem[i] = (uint8_t)rnd();
        memcpy(back, mem, sizeof mem);
        size_t chunk = 4096 + below(100000), seg = 0, off = 0, pos = 0;
        while (pos < op.size) {
            tcpx_chunk ch = {.op = &op, .off = pos, .seg = seg, .seg_off = off};
            ch.len = pack_cut(&op, &seg, &off, chunk);
            memset(slot, 0xEE, ch.len + 16);
            int queued = -1;
            CHECK(pack_copy(&ch, 1, slot, 0, NULL, NULL, NULL, &queued) == TCPX_OK && queued == 0, "gather");
            /* The slot holds the stream bytes [pos, pos+len), in order. */
            size_t k = 0, s2 = ch.seg, o2 = ch.seg_off;
            for (size_t left = ch.len; left; s2++, o2 = 0) {
                size_t take = op.segs[s2].len - o2 < left ? op.segs[s2].len - o2 : left;
                CHECK(!memcmp(slot + k, op.segs[s2].ptr + o2, take), "round %d: gathered piece", round);
                k += take;
                left -= take;
            }
            CHECK(slot[ch.len] == 0xEE, "gather wrote past the chunk");
            /* Scatter a changed slot back: exactly the pieces change. */
            for (size_t i = 0; i < ch.len; i++) slot[i] ^= 0x5A;
            CHECK(pack_copy(&ch, 0, slot, 0, NULL, NULL, NULL, &queued) == TCPX_OK && queued == 0, "scatter");
            pos += ch.len;
        }
        /* Every piece byte flipped once, everything else untouched. */
        uint8_t *want = malloc(sizeof mem);
        memcpy(want, back, sizeof mem);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < op.segs[i].len; j++) want[op.segs[i].ptr - mem + j] ^= 0x5A;
        CHECK(!memcmp(want, mem, sizeof mem), "round %d: scatter changed bytes outside the pieces or missed some",
              round);
        free(want);
        free(op.segs);
    }
}

static void test_access(void)
{
    tcpx_session s;
    memset(&s, 0, sizeof s);
    snprintf(s.cfg.name, sizeof s.cfg.name, "T");
    static uint8_t mem[4096];
    tcpx_region r = {.id = 7, .ptr = mem, .size = sizeof mem, .key = 0x1234};
    s.mem[7 % TCPX_MEM_BUCKETS] = &r;
    char why[256];
    tcpx_region *out;
    struct {
        tcpx_wire_block b;
        tcpx_status want;
        const char *says;
    } cases[] = {
        {{7, 0x1234, 0, 4096}, TCPX_OK, NULL},
        {{7, 0x1234, 4096, 0}, TCPX_OK, NULL},
        {{7, 0x1234, 4000, 96}, TCPX_OK, NULL},
        {{8, 0x1234, 0, 1}, TCPX_ERR_ACCESS, "block 3: memory id 8 is not registered at T"},
        {{7, 0x1235, 0, 1}, TCPX_ERR_ACCESS, "wrong key"},
        {{7, 0x1234, 4000, 97}, TCPX_ERR_ACCESS, "lies outside the 4096 bytes"},
        {{7, 0x1234, 4097, 0}, TCPX_ERR_ACCESS, "lies outside"},
        {{7, 0x1234, 100, UINT64_MAX}, TCPX_ERR_ACCESS, "lies outside"},
        {{7, 0x1234, UINT64_MAX, 2}, TCPX_ERR_ACCESS, "lies outside"},
        {{7, 0x1234, UINT64_MAX - 1000, 2000}, TCPX_ERR_ACCESS, "lies outside"}, /* offset + len wraps */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        why[0] = 0;
        tcpx_status st = mem_access(&s, &cases[i].b, 3, &out, why, sizeof why);
        CHECK(st == cases[i].want, "case %zu: %s", i, tcpx_strerror(st));
        if (cases[i].says) CHECK(strstr(why, cases[i].says) && strstr(why, "block 3"), "case %zu says \"%s\"", i, why);
        if (st == TCPX_OK) CHECK(out == &r, "case %zu: region", i);
    }
    r.closing = 1;
    tcpx_wire_block ok = {7, 0x1234, 0, 1};
    CHECK(mem_access(&s, &ok, 0, &out, why, sizeof why) == TCPX_ERR_ACCESS && strstr(why, "being deregistered"),
          "region being deregistered: \"%s\"", why);
}

int main(void)
{
    uint64_t seed = check_seed("test_pack");
    test_cut();
    test_copy();
    test_access();
    return check_done("test_pack", seed);
}
