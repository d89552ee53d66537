/* test_crc32c.c - CRC-32C (src/util/crc32c.c).
 *
 * The standard check values; the instruction path against the table path
 * on random data of every length 0..2048 at every alignment 0..15;
 * chaining (a split anywhere gives the CRC of the whole); every single-bit
 * flip of a random buffer changes the CRC; a large buffer in pieces.
 *
 * Seed: TCPX_TEST_SEED=<n> reproduces a run; the seed is printed first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/bytes.h"

static int g_failures;

#define CHECK(cond, ...)                                             \
    do {                                                             \
        if (!(cond)) {                                               \
            if (g_failures++ < 50) {                                 \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                        \
                fprintf(stderr, "\n");                               \
            }                                                        \
        }                                                            \
    } while (0)

static uint64_t g_x;
static uint8_t rnd(void)
{
    g_x ^= g_x << 13;
    g_x ^= g_x >> 7;
    g_x ^= g_x << 17;
    return (uint8_t)(g_x >> 24);
}

int main(void)
{
    const char *e = getenv("TCPX_TEST_SEED");
    uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    printf("test_crc32c: seed %" PRIu64 " (TCPX_TEST_SEED reproduces)\n", seed);
    g_x = seed | 1;

    /* Check values of CRC-32C (RFC 3720 B.4 and the usual "123456789"). */
    CHECK(tcpx_crc32c("123456789", 9) == 0xE3069283u, "\"123456789\": 0x%08x", tcpx_crc32c("123456789", 9));
    uint8_t z[32], ff[32], inc[32];
    memset(z, 0, sizeof z);
    memset(ff, 0xFF, sizeof ff);
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    CHECK(tcpx_crc32c(z, 32) == 0x8A9136AAu, "32 zero bytes: 0x%08x", tcpx_crc32c(z, 32));
    CHECK(tcpx_crc32c(ff, 32) == 0x62A8AB43u, "32 0xFF bytes: 0x%08x", tcpx_crc32c(ff, 32));
    CHECK(tcpx_crc32c(inc, 32) == 0x46DD794Eu, "bytes 0..31: 0x%08x", tcpx_crc32c(inc, 32));
    CHECK(tcpx_crc32c(NULL, 0) == 0, "empty: 0x%08x", tcpx_crc32c(NULL, 0));

    /* Instruction (where the CPU has it) and table agree everywhere. */
    enum { MAX = 2048 };
    uint8_t *buf = malloc(MAX + 16);
    for (int i = 0; i < MAX + 16; i++) buf[i] = rnd();
    for (int align = 0; align < 16; align++)
        for (size_t n = 0; n <= MAX; n++) {
            uint32_t a = tcpx_crc32c_update(0, buf + align, n), b = tcpx_crc32c_table_update(0, buf + align, n);
            if (a != b) {
                CHECK(0, "length %zu at offset %d: 0x%08x by instruction, 0x%08x by table", n, align, a, b);
                break;
            }
        }

    /* Long inputs (three-stripe path of the instruction version): around
     * multiples of 12 KiB, at odd alignments. */
    {
        size_t cap = 100000;
        uint8_t *l = malloc(cap + 16);
        for (size_t i = 0; i < cap + 16; i++) l[i] = rnd();
        static const size_t lens[] = {767,   768,   769,   1535,  1536,  4096,      4104,  4152, 12287,
                                      12288, 12289, 12295, 24575, 24576, 36864, 49152 + 7, 99999};
        for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
            for (int align = 0; align < 16; align += 3) {
                uint32_t a = tcpx_crc32c_update(0x1234567u, l + align, lens[t]);
                uint32_t b = tcpx_crc32c_table_update(0x1234567u, l + align, lens[t]);
                CHECK(a == b, "long input of %zu at offset %d: 0x%08x, by table 0x%08x", lens[t], align, a, b);
            }
        free(l);
    }

    /* Chaining: any split gives the CRC of the whole. */
    uint32_t whole = tcpx_crc32c(buf, MAX);
    for (size_t cut = 0; cut <= MAX; cut += 1 + rnd() % 13) {
        uint32_t c = tcpx_crc32c_update(tcpx_crc32c(buf, cut), buf + cut, MAX - cut);
        CHECK(c == whole, "split at %zu: 0x%08x, whole 0x%08x", cut, c, whole);
    }

    /* Every single-bit flip is seen. */
    for (size_t bit = 0; bit < 8 * 512; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint32_t flipped = tcpx_crc32c(buf, 512);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(flipped != tcpx_crc32c(buf, 512), "flip of bit %zu not seen", bit);
    }

    /* A large buffer, in random pieces. */
    size_t big = 8u << 20;
    uint8_t *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = rnd();
    uint32_t ref = tcpx_crc32c_table_update(0, b, big), c = 0;
    for (size_t off = 0; off < big;) {
        size_t n = 1 + ((size_t)rnd() << 8 | rnd()) % 100000;
        if (n > big - off) n = big - off;
        c = tcpx_crc32c_update(c, b + off, n);
        off += n;
    }
    CHECK(c == ref, "8 MiB in pieces: 0x%08x, by table 0x%08x", c, ref);
    free(b);
    free(buf);
    if (g_failures) {
        fprintf(stderr, "test_crc32c: FAILED (%d failures)\n", g_failures);
        return 1;
    }
    printf("test_crc32c: ok\n");
    return 0;
}
