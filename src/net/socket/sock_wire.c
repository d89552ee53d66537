/* sock_wire.c - the listen handle and the per-socket hello, little-endian.
 *
 * Handle (TCPX_NET_HANDLE_SIZE bytes, rest zero):
 *   u32 magic, u8 version, u8 family (4 or 6), u16 port, u64 nonce,
 *   u8 addr[16] (IPv4 in the first 4), u32 IPv6 scope id
 * Hello (SOCK_HELLO_SIZE bytes, first thing on every socket of a comm):
 *   u32 magic, u8 version, u8 reserved[3], u64 listen nonce, u64 comm id,
 *   u32 socket index, u32 socket count
 */
#include <string.h>

#include "net/socket/sock.h"
#include "util/bytes.h"
#include "util/error.h"

#define SOCK_WIRE_VERSION 1

void sock_handle_encode(const sock_handle *h, void *out)
{
    uint8_t addr[16] = {0};
    uint16_t port = 0;
    uint32_t scope = 0;
    uint8_t fam = 0;
    if (h->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&h->ss;
        memcpy(addr, &s->sin_addr, 4);
        port = ntohs(s->sin_port);
        fam = 4;
    } else if (h->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&h->ss;
        memcpy(addr, &s->sin6_addr, 16);
        port = ntohs(s->sin6_port);
        scope = s->sin6_scope_id;
        fam = 6;
    }
    memset(out, 0, TCPX_NET_HANDLE_SIZE);
    tcpx_wbuf w = tcpx_wbuf_make(out, TCPX_NET_HANDLE_SIZE);
    tcpx_w_u32(&w, SOCK_HANDLE_MAGIC);
    tcpx_w_u8(&w, SOCK_WIRE_VERSION);
    tcpx_w_u8(&w, fam);
    tcpx_w_u16(&w, port);
    tcpx_w_u64(&w, h->nonce);
    tcpx_w_bytes(&w, addr, sizeof addr);
    tcpx_w_u32(&w, scope);
}

tcpx_status sock_handle_decode(const void *in, size_t len, sock_handle *h)
{
    if (len != TCPX_NET_HANDLE_SIZE)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle is %zu bytes, not %d", len, TCPX_NET_HANDLE_SIZE);
    tcpx_rbuf r = tcpx_rbuf_make(in, len);
    uint8_t addr[16];
    uint32_t magic = tcpx_r_u32(&r);
    uint8_t ver = tcpx_r_u8(&r);
    uint8_t fam = tcpx_r_u8(&r);
    uint16_t port = tcpx_r_u16(&r);
    uint64_t nonce = tcpx_r_u64(&r);
    tcpx_r_bytes(&r, addr, sizeof addr);
    uint32_t scope = tcpx_r_u32(&r);
    if (r.bad) return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle truncated");
    if (magic != SOCK_HANDLE_MAGIC)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle magic 0x%08x, not 0x%08x", magic, SOCK_HANDLE_MAGIC);
    if (ver != SOCK_WIRE_VERSION)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle version %u, this side speaks %u", ver,
                              SOCK_WIRE_VERSION);
    if (port == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle port 0");
    if (fam != 4 && fam != 6)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "socket handle address family %u, not 4 or 6", fam);
    memset(h, 0, sizeof *h);
    h->nonce = nonce;
    if (fam == 4) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        memcpy(&s->sin_addr, addr, 4);
        h->len = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        memcpy(&s->sin6_addr, addr, 16);
        s->sin6_scope_id = scope;
        h->len = sizeof *s;
    }
    return TCPX_OK;
}

void sock_hello_encode(const sock_hello *h, uint8_t out[SOCK_HELLO_SIZE])
{
    memset(out, 0, SOCK_HELLO_SIZE);
    tcpx_wbuf w = tcpx_wbuf_make(out, SOCK_HELLO_SIZE);
    tcpx_w_u32(&w, SOCK_HELLO_MAGIC);
    tcpx_w_u8(&w, SOCK_WIRE_VERSION);
    tcpx_w_u8(&w, 0);
    tcpx_w_u16(&w, 0);
    tcpx_w_u64(&w, h->nonce);
    tcpx_w_u64(&w, h->comm_id);
    tcpx_w_u32(&w, h->index);
    tcpx_w_u32(&w, h->count);
}

tcpx_status sock_hello_decode(const void *in, size_t len, sock_hello *h)
{
    if (len != SOCK_HELLO_SIZE)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello is %zu bytes, not %d", len, SOCK_HELLO_SIZE);
    tcpx_rbuf r = tcpx_rbuf_make(in, len);
    uint32_t magic = tcpx_r_u32(&r);
    uint8_t ver = tcpx_r_u8(&r);
    uint8_t res0 = tcpx_r_u8(&r);
    uint16_t res1 = tcpx_r_u16(&r);
    sock_hello v;
    v.nonce = tcpx_r_u64(&r);
    v.comm_id = tcpx_r_u64(&r);
    v.index = tcpx_r_u32(&r);
    v.count = tcpx_r_u32(&r);
    if (r.bad) return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello truncated");
    if (magic != SOCK_HELLO_MAGIC)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello magic 0x%08x, not 0x%08x", magic, SOCK_HELLO_MAGIC);
    if (ver != SOCK_WIRE_VERSION)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello version %u, this side speaks %u", ver, SOCK_WIRE_VERSION);
    if (res0 || res1) return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello reserved bytes not zero");
    if (v.count < 1 || v.count > SOCK_MAX_SOCKS)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello socket count %u, not 1..%d", v.count, SOCK_MAX_SOCKS);
    if (v.index >= v.count)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "hello socket index %u of %u sockets", v.index, v.count);
    *h = v;
    return TCPX_OK;
}
