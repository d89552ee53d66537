/* fill_host.c - host side of the reproducible test data (see gpu.h):
 * byte j of a buffer is byte j % 8, little-endian, of word j / 8. Built in
 * every configuration, so that host-only tools and tests use the same bytes
 * as the device kernels in kernels.cu. */
#include <string.h>

#include "gpu/gpu.h"

static inline uint64_t to_le(uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(w);
#else
    return w;
#endif
}

void tcpx_fill_random_host(void *dst, size_t n, uint64_t seed)
{
    unsigned char *d = dst;
    uint64_t key = tcpx_random_key(seed);
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = to_le(tcpx_random_word(key, i));
        memcpy(d + 8 * i, &w, 8);
    }
    size_t rest = n % 8;
    if (rest) {
        uint64_t w = to_le(tcpx_random_word(key, words));
        memcpy(d + 8 * words, &w, rest);
    }
}

uint64_t tcpx_compare_random_host(const void *src, size_t n, uint64_t seed)
{
    const unsigned char *s = src;
    uint64_t key = tcpx_random_key(seed);
    size_t words = (n + 7) / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = to_le(tcpx_random_word(key, i));
        size_t len = n - 8 * i < 8 ? n - 8 * i : 8;
        if (memcmp(s + 8 * i, &w, len) == 0) continue;
        const unsigned char *e = (const unsigned char *)&w;
        for (size_t k = 0; k < len; k++)
            if (s[8 * i + k] != e[k]) return 8 * (uint64_t)i + k;
    }
    return UINT64_MAX;
}
