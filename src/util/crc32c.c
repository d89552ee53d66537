/* crc32c.c - CRC-32C (Castagnoli), as iSCSI, NVMe/TCP and ext4 use it: the
 * SSE4.2 crc32 instruction where the CPU has it, a byte table otherwise. */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"

static uint32_t g_table[256];
static int g_hw;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_shift(void);

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        g_table[i] = c;
    }
    init_shift();
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    g_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t by_table(uint32_t c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) c = g_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c;
}

/* Long inputs run three independent instruction chains over three
 * consecutive stripes (the instruction's latency is three times its issue
 * rate) and join them: the raw CRC is linear, so
 * crc(s, A || B) = shift(crc(s, A), |B|) ^ crc(0, B), where shift(x, L)
 * runs L zero bytes through x. A shift by a stripe's length is four table
 * lookups (built from the 32 single-bit images). Stripes of 4 KiB for long
 * inputs, of 256 bytes for the rest down to 768 bytes (a 4 KiB control
 * message with its inline payload: 1536 -> ~700 cycles). */
#define STRIPE 4096
#define SMALL_STRIPE 256
static uint32_t g_shift[4][256], g_shift_small[4][256];

static void init_shift_by(uint32_t shift[4][256], int len)
{
    uint32_t bit[32];
    for (int b = 0; b < 32; b++) {
        uint32_t c = 1u << b;
        for (int i = 0; i < len; i++) c = g_table[c & 0xFF] ^ (c >> 8);
        bit[b] = c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (int b = 0; b < 8; b++)
                if (v >> b & 1) x ^= bit[8 * k + b];
            shift[k][v] = x;
        }
}

static void init_shift(void)
{
    init_shift_by(g_shift, STRIPE);
    init_shift_by(g_shift_small, SMALL_STRIPE);
}

static uint32_t shift_by(uint32_t shift[4][256], uint32_t c)
{
    return shift[0][c & 0xFF] ^ shift[1][(c >> 8) & 0xFF] ^ shift[2][(c >> 16) & 0xFF] ^ shift[3][c >> 24];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Three chains over [p, +3 len) from c: the CRC of those bytes. */
__attribute__((target("sse4.2"))) static inline uint32_t three_stripes(uint32_t c, const uint8_t *p, size_t len,
                                                                       uint32_t shift[4][256])
{
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t va, vb, vd;
        memcpy(&va, p + i, 8);
        memcpy(&vb, p + len + i, 8);
        memcpy(&vd, p + 2 * len + i, 8);
        a = __builtin_ia32_crc32di(a, va);
        b = __builtin_ia32_crc32di(b, vb);
        d = __builtin_ia32_crc32di(d, vd);
    }
    return shift_by(shift, shift_by(shift, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
}

__attribute__((target("sse4.2"))) static uint32_t by_insn(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n >= 3 * STRIPE; n -= 3 * STRIPE, p += 3 * STRIPE) c = three_stripes(c, p, STRIPE, g_shift);
    for (; n >= 3 * SMALL_STRIPE; n -= 3 * SMALL_STRIPE, p += 3 * SMALL_STRIPE)
        c = three_stripes(c, p, SMALL_STRIPE, g_shift_small);
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* little-endian, as the instruction wants */
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    for (; n; n--, p++) c = __builtin_ia32_crc32qi(c, *p);
    return c;
}
#endif

uint32_t tcpx_crc32c_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&g_once, init);
    uint32_t c = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (g_hw) return ~by_insn(c, data, len);
#endif
    return ~by_table(c, data, len);
}

uint32_t tcpx_crc32c(const void *data, size_t len) { return tcpx_crc32c_update(0, data, len); }

uint32_t tcpx_crc32c_table_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&g_once, init);
    return ~by_table(~crc, data, len);
}
