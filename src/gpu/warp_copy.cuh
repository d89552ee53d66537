/* warp_copy.cuh - one warp copies a run of bytes, any alignment (device code
 * shared by the unpack and copy-list kernels).
 *
 * Head bytes up to the first 16-byte aligned destination address, 16-byte
 * vectors, tail bytes (< 16). The vectors use plain 16-byte loads when the
 * source is then aligned too, else aligned 16-byte loads of the source with
 * the bytes shifted into place (funnel shifts), so that stores are always
 * 16-byte. Several vectors are loaded per lane before any is stored. Head and
 * tail bytes are single byte copies by separate lanes (at most 15 each). */
#ifndef TCPX_GPU_WARP_COPY_CUH
#define TCPX_GPU_WARP_COPY_CUH

#include <stdint.h>

namespace tcpx_wc {

constexpr int kUnrollAligned = 8;             /* 8 x 16 B x 32 lanes = one 4 KiB page per pass */
constexpr int kUnrollShifted = 4;

static __device__ __forceinline__ uint64_t shr128(uint64_t lo, uint64_t hi, unsigned sh)
{
    /* Bytes sh/8 .. sh/8+7 of hi:lo (little-endian); sh in 0..56. */
    return sh ? (lo >> sh) | (hi << (64 - sh)) : lo;
}

/* 16 bytes starting r bytes (1..15) into the 32 bytes a:b. */
static __device__ __forceinline__ ulonglong2 shift16(ulonglong2 a, ulonglong2 b, unsigned r)
{
    unsigned sh = (r & 7) * 8;
    uint64_t w0 = r < 8 ? a.x : a.y;
    uint64_t w1 = r < 8 ? a.y : b.x;
    uint64_t w2 = r < 8 ? b.x : b.y;
    return make_ulonglong2(shr128(w0, w1, sh), shr128(w1, w2, sh));
}

/* Copy len bytes src -> dst with the 32 lanes of a warp. */
static __device__ __forceinline__ void warp_copy(uint8_t *dst, const uint8_t *src, uint64_t len, unsigned lane)
{
    uint64_t head = (16 - ((uintptr_t)dst & 15)) & 15;
    if (head > len) head = len;
    if (lane < head) dst[lane] = src[lane];
    dst += head;
    src += head;
    len -= head;

    uint64_t nvec = len >> 4;
    uint64_t tail = len & 15;
    ulonglong2 *d = reinterpret_cast<ulonglong2 *>(dst);
    unsigned r = (unsigned)((uintptr_t)src & 15);
    if (r == 0) {
        const ulonglong2 *s = reinterpret_cast<const ulonglong2 *>(src);
        for (uint64_t k0 = lane; k0 < nvec; k0 += 32 * kUnrollAligned) {
            ulonglong2 v[kUnrollAligned];
#pragma unroll
            for (int u = 0; u < kUnrollAligned; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) v[u] = s[k];
            }
#pragma unroll
            for (int u = 0; u < kUnrollAligned; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) d[k] = v[u];
            }
        }
    } else {
        /* Vector k takes source bytes [16k, 16k+16) = bytes r.. of aligned
         * blocks k and k+1 of s. Block k+1 always holds a byte that is copied
         * (r >= 1), so no load touches memory outside the fragment's blocks. */
        const ulonglong2 *s = reinterpret_cast<const ulonglong2 *>(src - r);
        for (uint64_t k0 = lane; k0 < nvec; k0 += 32 * kUnrollShifted) {
            ulonglong2 a[kUnrollShifted], b[kUnrollShifted];
#pragma unroll
            for (int u = 0; u < kUnrollShifted; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) {
                    a[u] = s[k];
                    b[u] = s[k + 1];
                }
            }
#pragma unroll
            for (int u = 0; u < kUnrollShifted; u++) {
                uint64_t k = k0 + 32 * u;
                if (k < nvec) d[k] = shift16(a[u], b[u], r);
            }
        }
    }

    uint64_t t = nvec << 4;
    if (lane < tail) dst[t + lane] = src[t + lane];
}

} // namespace tcpx_wc

#endif
