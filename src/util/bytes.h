/* bytes.h - bounds-checked little-endian writer and reader for wire formats.
 *
 * A writer or reader that runs past its end sets `bad` and stops touching
 * memory; the caller checks `bad` once at the end. */
#ifndef TCPX_BYTES_H
#define TCPX_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tcpx_wbuf {
    uint8_t *p;
    size_t cap, len;
    int bad;
} tcpx_wbuf;

typedef struct tcpx_rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} tcpx_rbuf;

static inline tcpx_wbuf tcpx_wbuf_make(void *p, size_t cap) { return (tcpx_wbuf){(uint8_t *)p, cap, 0, 0}; }
static inline tcpx_rbuf tcpx_rbuf_make(const void *p, size_t len) { return (tcpx_rbuf){(const uint8_t *)p, len, 0, 0}; }

static inline uint8_t *tcpx_w_reserve(tcpx_wbuf *w, size_t n)
{
    if (w->bad || n > w->cap - w->len) {
        w->bad = 1;
        return NULL;
    }
    uint8_t *d = w->p + w->len;
    w->len += n;
    return d;
}

static inline void tcpx_w_le(tcpx_wbuf *w, uint64_t v, int nbytes)
{
    uint8_t *d = tcpx_w_reserve(w, (size_t)nbytes);
    if (!d) return;
    for (int i = 0; i < nbytes; i++) d[i] = (uint8_t)(v >> (8 * i));
}

static inline void tcpx_w_u8(tcpx_wbuf *w, uint8_t v) { tcpx_w_le(w, v, 1); }
static inline void tcpx_w_u16(tcpx_wbuf *w, uint16_t v) { tcpx_w_le(w, v, 2); }
static inline void tcpx_w_u32(tcpx_wbuf *w, uint32_t v) { tcpx_w_le(w, v, 4); }
static inline void tcpx_w_u64(tcpx_wbuf *w, uint64_t v) { tcpx_w_le(w, v, 8); }

static inline void tcpx_w_bytes(tcpx_wbuf *w, const void *src, size_t n)
{
    uint8_t *d = tcpx_w_reserve(w, n);
    if (d && n) memcpy(d, src, n);
}

static inline const uint8_t *tcpx_r_take(tcpx_rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *s = r->p + r->pos;
    r->pos += n;
    return s;
}

static inline uint64_t tcpx_r_le(tcpx_rbuf *r, int nbytes)
{
    const uint8_t *s = tcpx_r_take(r, (size_t)nbytes);
    uint64_t v = 0;
    if (!s) return 0;
    for (int i = 0; i < nbytes; i++) v |= (uint64_t)s[i] << (8 * i);
    return v;
}

static inline uint8_t tcpx_r_u8(tcpx_rbuf *r) { return (uint8_t)tcpx_r_le(r, 1); }
static inline uint16_t tcpx_r_u16(tcpx_rbuf *r) { return (uint16_t)tcpx_r_le(r, 2); }
static inline uint32_t tcpx_r_u32(tcpx_rbuf *r) { return (uint32_t)tcpx_r_le(r, 4); }
static inline uint64_t tcpx_r_u64(tcpx_rbuf *r) { return tcpx_r_le(r, 8); }

static inline void tcpx_r_bytes(tcpx_rbuf *r, void *dst, size_t n)
{
    const uint8_t *s = tcpx_r_take(r, n);
    if (s && n) memcpy(dst, s, n);
}

/* CRC-32C (Castagnoli) of a byte range; used as blob checksums. */
uint32_t tcpx_crc32c(const void *data, size_t len);
/* Continue a CRC-32C: tcpx_crc32c_update(tcpx_crc32c(a), b) is the CRC of a
 * followed by b, and tcpx_crc32c_update(0, d) == tcpx_crc32c(d). Uses the
 * CPU's crc32 instruction when it has one. */
uint32_t tcpx_crc32c_update(uint32_t crc, const void *data, size_t len);
/* The same, always by table (tests compare the two). */
uint32_t tcpx_crc32c_table_update(uint32_t crc, const void *data, size_t len);

#endif
