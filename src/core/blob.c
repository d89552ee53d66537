#include "blob.h"

#include <string.h>

#include "util/bytes.h"
#include "util/error.h"

#define CONNINFO_FIXED (4 + 1 + 1 + 2 + 8 + 4 + TCPX_TRANSPORT_NAME_MAX + 4)

size_t tcpx_conninfo_size(unsigned channels)
{
    return CONNINFO_FIXED + ((size_t)channels + 1) * TCPX_NET_HANDLE_SIZE;
}

static void put_header(tcpx_wbuf *w, uint8_t kind)
{
    tcpx_w_u32(w, TCPX_BLOB_MAGIC);
    tcpx_w_u8(w, TCPX_BLOB_VERSION);
    tcpx_w_u8(w, kind);
}

/* Checks everything common to both blobs: exact length, checksum, magic,
 * version and kind. Leaves r positioned after the kind byte. */
static tcpx_status check_header(tcpx_rbuf *r, size_t expect_len, uint8_t kind, const char *what)
{
    if (r->len < 10) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: %zu bytes is too short", what, r->len);
    uint32_t magic = tcpx_r_u32(r);
    uint8_t version = tcpx_r_u8(r);
    uint8_t k = tcpx_r_u8(r);
    if (magic != TCPX_BLOB_MAGIC) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: bad magic 0x%08x", what, magic);
    if (version != TCPX_BLOB_VERSION)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: version %u not supported (want %u)", what, version,
                              TCPX_BLOB_VERSION);
    if (k != kind) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: kind %u, expected %u", what, k, kind);
    if (expect_len && r->len != expect_len)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: length %zu, expected %zu", what, r->len, expect_len);
    return TCPX_OK;
}

static tcpx_status check_crc(const void *buf, size_t len, const char *what)
{
    tcpx_rbuf r = tcpx_rbuf_make((const uint8_t *)buf + len - 4, 4);
    uint32_t want = tcpx_r_u32(&r);
    uint32_t got = tcpx_crc32c(buf, len - 4);
    if (want != got) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: checksum mismatch", what);
    return TCPX_OK;
}

tcpx_status tcpx_conninfo_encode(const tcpx_conninfo *ci, void *buf, size_t cap, size_t *len)
{
    if (!ci || !buf || ci->channels < 1 || ci->channels > TCPX_MAX_CHANNELS)
        return tcpx_set_error(TCPX_ERR_INVALID, "conninfo: bad arguments");
    size_t need = tcpx_conninfo_size(ci->channels);
    if (cap < need) return tcpx_set_error(TCPX_ERR_INVALID, "conninfo: buffer of %zu bytes, need %zu", cap, need);
    tcpx_wbuf w = tcpx_wbuf_make(buf, cap);
    put_header(&w, TCPX_BLOB_KIND_CONNINFO);
    tcpx_w_u16(&w, ci->channels);
    tcpx_w_u64(&w, ci->token);
    tcpx_w_u32(&w, TCPX_NET_HANDLE_SIZE);
    char name[TCPX_TRANSPORT_NAME_MAX] = {0};
    memcpy(name, ci->transport, strnlen(ci->transport, sizeof name - 1));
    tcpx_w_bytes(&w, name, sizeof name);
    for (unsigned i = 0; i <= ci->channels; i++) tcpx_w_bytes(&w, ci->handles[i], TCPX_NET_HANDLE_SIZE);
    tcpx_w_u32(&w, tcpx_crc32c(buf, w.len));
    if (w.bad || w.len != need) return tcpx_set_error(TCPX_ERR_INVALID, "conninfo: encoding overflow");
    *len = w.len;
    return TCPX_OK;
}

tcpx_status tcpx_conninfo_decode(const void *buf, size_t len, tcpx_conninfo *ci)
{
    if (!buf || !ci) return tcpx_set_error(TCPX_ERR_INVALID, "conninfo: NULL argument");
    tcpx_rbuf r = tcpx_rbuf_make(buf, len);
    tcpx_status st = check_header(&r, 0, TCPX_BLOB_KIND_CONNINFO, "connection info");
    if (st) return st;
    uint16_t channels = tcpx_r_u16(&r);
    if (r.bad || channels < 1 || channels > TCPX_MAX_CHANNELS)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "connection info: channel count %u out of range 1..%d", channels,
                              TCPX_MAX_CHANNELS);
    if (len != tcpx_conninfo_size(channels))
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "connection info: length %zu, expected %zu for %u channels", len,
                              tcpx_conninfo_size(channels), channels);
    if ((st = check_crc(buf, len, "connection info"))) return st;
    memset(ci, 0, sizeof *ci);
    ci->channels = channels;
    ci->token = tcpx_r_u64(&r);
    uint32_t hsize = tcpx_r_u32(&r);
    if (hsize != TCPX_NET_HANDLE_SIZE)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "connection info: handle size %u, expected %d", hsize,
                              TCPX_NET_HANDLE_SIZE);
    tcpx_r_bytes(&r, ci->transport, TCPX_TRANSPORT_NAME_MAX);
    if (memchr(ci->transport, '\0', TCPX_TRANSPORT_NAME_MAX) == NULL)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "connection info: transport name not terminated");
    for (unsigned i = 0; i <= channels; i++) tcpx_r_bytes(&r, ci->handles[i], TCPX_NET_HANDLE_SIZE);
    tcpx_r_u32(&r); /* checksum, verified above */
    if (r.bad || r.pos != len) return tcpx_set_error(TCPX_ERR_PROTOCOL, "connection info: truncated");
    return TCPX_OK;
}

tcpx_status tcpx_memdesc_serialize(const tcpx_memdesc *d, void *buf, size_t cap, size_t *len)
{
    if (!d || !buf) return tcpx_set_error(TCPX_ERR_INVALID, "memdesc: NULL argument");
    if (cap < TCPX_MEMDESC_BLOB_SIZE)
        return tcpx_set_error(TCPX_ERR_INVALID, "memdesc: buffer of %zu bytes, need %d", cap, TCPX_MEMDESC_BLOB_SIZE);
    if (d->kind != TCPX_MEM_HOST && d->kind != TCPX_MEM_CUDA)
        return tcpx_set_error(TCPX_ERR_INVALID, "memdesc: bad memory kind %d", (int)d->kind);
    tcpx_wbuf w = tcpx_wbuf_make(buf, cap);
    put_header(&w, TCPX_BLOB_KIND_MEMDESC);
    tcpx_w_u8(&w, (uint8_t)d->kind);
    tcpx_w_u8(&w, 0);
    tcpx_w_u64(&w, d->addr);
    tcpx_w_u64(&w, d->size);
    tcpx_w_u64(&w, d->id);
    tcpx_w_u64(&w, d->key);
    tcpx_w_u32(&w, 0);
    tcpx_w_u32(&w, tcpx_crc32c(buf, w.len));
    if (len) *len = w.len;
    return TCPX_OK;
}

tcpx_status tcpx_memdesc_deserialize(const void *buf, size_t len, tcpx_memdesc *out)
{
    if (!buf || !out) return tcpx_set_error(TCPX_ERR_INVALID, "memdesc: NULL argument");
    tcpx_rbuf r = tcpx_rbuf_make(buf, len);
    tcpx_status st = check_header(&r, TCPX_MEMDESC_BLOB_SIZE, TCPX_BLOB_KIND_MEMDESC, "memory descriptor");
    if (st) return st;
    if ((st = check_crc(buf, len, "memory descriptor"))) return st;
    uint8_t kind = tcpx_r_u8(&r);
    uint8_t pad = tcpx_r_u8(&r);
    tcpx_memdesc d;
    d.kind = (tcpx_mem_kind)kind;
    d.addr = tcpx_r_u64(&r);
    d.size = tcpx_r_u64(&r);
    d.id = tcpx_r_u64(&r);
    d.key = tcpx_r_u64(&r);
    uint32_t reserved = tcpx_r_u32(&r);
    if (kind > TCPX_MEM_CUDA || pad || reserved)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "memory descriptor: bad kind %u or reserved bytes set", kind);
    if (d.id == 0 || d.size == 0 || d.addr + d.size < d.addr)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "memory descriptor: id 0, size 0 or range wraps");
    *out = d;
    return TCPX_OK;
}
