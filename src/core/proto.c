#include "proto.h"

#include <string.h>

#include "util/bytes.h"
#include "util/error.h"

/* Fixed header size (common part + type fields) of each type; 0 = unknown. */
static size_t type_hdr_size(uint8_t type)
{
    switch (type) {
#define HDR_(name, value, hdr, handler) \
    case TCPX_MSG_##name: return TCPX_PROTO_HDR_COMMON + (hdr);
        TCPX_MSG_TYPES(HDR_)
#undef HDR_
    default: return 0;
    }
}

tcpx_status tcpx_msg_frame_next(const void *buf, size_t len, size_t *msg_len)
{
    tcpx_rbuf r = tcpx_rbuf_make(buf, len);
    tcpx_r_u16(&r); /* version, type */
    uint16_t hs = tcpx_r_u16(&r);
    uint32_t plen = tcpx_r_u32(&r);
    if (r.bad) return tcpx_set_error(TCPX_ERR_PROTOCOL, "control frame: %zu bytes left, too short for a header", len);
    if (hs < TCPX_PROTO_HDR_COMMON || (uint64_t)hs + plen > len)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "control frame: message of %u + %u bytes with %zu left", hs, plen, len);
    *msg_len = (size_t)hs + plen;
    return TCPX_OK;
}

const char *tcpx_msg_name(uint8_t type)
{
    switch (type) {
#define NAME_(name, value, hdr, handler) \
    case TCPX_MSG_##name: return #name;
        TCPX_MSG_TYPES(NAME_)
#undef NAME_
    default: return "?";
    }
}

uint32_t tcpx_msg_digest(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint32_t c = tcpx_crc32c_update(0, b, TCPX_PROTO_DIGEST_OFF);
    return tcpx_crc32c_update(c, b + TCPX_PROTO_DIGEST_OFF + 4, len - TCPX_PROTO_DIGEST_OFF - 4);
}

size_t tcpx_msg_encode(const tcpx_msg *m, void *buf, size_t cap)
{
    size_t hs = type_hdr_size(m->type);
    if (!hs) return 0;
    tcpx_wbuf w = tcpx_wbuf_make(buf, cap);
    tcpx_w_u8(&w, TCPX_PROTO_VERSION);
    tcpx_w_u8(&w, m->type);
    tcpx_w_u16(&w, (uint16_t)hs);
    tcpx_w_u32(&w, m->payload_len);
    tcpx_w_u32(&w, 0); /* the digest, filled in last */
    switch (m->type) {
    case TCPX_MSG_HELLO: {
        char name[TCPX_NAME_MAX] = {0};
        memcpy(name, m->u.hello.name, strnlen(m->u.hello.name, sizeof name - 1));
        tcpx_w_u8(&w, m->u.hello.role);
        tcpx_w_u16(&w, m->u.hello.channels);
        tcpx_w_u64(&w, m->u.hello.token);
        tcpx_w_u64(&w, m->u.hello.nonce);
        tcpx_w_bytes(&w, name, sizeof name);
        tcpx_w_u32(&w, m->u.hello.max_chunk);
        tcpx_w_u32(&w, m->u.hello.unx_max);
        tcpx_w_u64(&w, m->u.hello.unx_max_bytes);
        tcpx_w_u8(&w, m->u.hello.flags);
        break;
    }
    case TCPX_MSG_DHELLO:
        tcpx_w_u64(&w, m->u.dhello.token);
        tcpx_w_u64(&w, m->u.dhello.nonce);
        tcpx_w_u16(&w, m->u.dhello.channel);
        break;
    case TCPX_MSG_RTS:
        tcpx_w_u64(&w, m->u.rts.send_id);
        tcpx_w_u64(&w, m->u.rts.tag);
        tcpx_w_u64(&w, m->u.rts.size);
        break;
    case TCPX_MSG_CTS:
        tcpx_w_u64(&w, m->u.cts.send_id);
        tcpx_w_u64(&w, m->u.cts.recv_id);
        tcpx_w_u32(&w, m->u.cts.max_chunk);
        break;
    case TCPX_MSG_DATA:
        tcpx_w_u64(&w, m->u.data.recv_id);
        tcpx_w_u64(&w, m->u.data.size);
        tcpx_w_u32(&w, m->u.data.chunk);
        tcpx_w_u16(&w, m->u.data.first_channel);
        break;
    case TCPX_MSG_ACK: tcpx_w_u64(&w, m->u.ack.id); break;
    case TCPX_MSG_NACK:
        tcpx_w_u64(&w, m->u.nack.id);
        tcpx_w_u32(&w, (uint32_t)m->u.nack.status);
        break;
    case TCPX_MSG_CANCEL: tcpx_w_u64(&w, m->u.cancel.send_id); break;
    case TCPX_MSG_WRITE:
        tcpx_w_u64(&w, m->u.write.id);
        tcpx_w_u64(&w, m->u.write.total);
        tcpx_w_u32(&w, m->u.write.nblocks);
        tcpx_w_u32(&w, m->u.write.first);
        tcpx_w_u32(&w, m->u.write.chunk);
        tcpx_w_u16(&w, m->u.write.first_channel);
        tcpx_w_u16(&w, m->u.write.flags);
        break;
    case TCPX_MSG_READ_REQ:
        tcpx_w_u64(&w, m->u.read_req.id);
        tcpx_w_u64(&w, m->u.read_req.total);
        tcpx_w_u32(&w, m->u.read_req.nblocks);
        tcpx_w_u32(&w, m->u.read_req.first);
        tcpx_w_u16(&w, m->u.read_req.flags);
        break;
    case TCPX_MSG_READ_DATA:
        tcpx_w_u64(&w, m->u.read_data.id);
        tcpx_w_u64(&w, m->u.read_data.total);
        tcpx_w_u32(&w, m->u.read_data.chunk);
        tcpx_w_u16(&w, m->u.read_data.first_channel);
        tcpx_w_u8(&w, m->u.read_data.flags);
        break;
    case TCPX_MSG_NOTIF:
        tcpx_w_u64(&w, m->u.notif.id);
        tcpx_w_u16(&w, m->u.notif.flags);
        break;
    case TCPX_MSG_KEEPALIVE: tcpx_w_u16(&w, m->u.keepalive.flags); break;
    }
    tcpx_w_bytes(&w, m->payload, m->payload_len);
    if (w.bad) return 0;
    tcpx_msg_seal(buf, w.len);
    return w.len;
}

void tcpx_msg_seal(void *buf, size_t len)
{
    if (len < TCPX_PROTO_HDR_COMMON) return; /* no digest field to fill */
    tcpx_wbuf d = tcpx_wbuf_make((uint8_t *)buf + TCPX_PROTO_DIGEST_OFF, 4);
    tcpx_w_u32(&d, tcpx_msg_digest(buf, len));
}

/* A piece of a block list: whole blocks, inside the list, LAST exactly on
 * the piece that ends it, known flags, a bounded list. */
static tcpx_status check_list(uint8_t type, uint32_t nblocks, uint32_t first, uint16_t flags, uint32_t plen)
{
    const char *name = tcpx_msg_name(type);
    flags &= (uint16_t)~TCPX_LIST_INLINE; /* checked by the WRITE decoder */
    if (plen % TCPX_WIRE_BLOCK_SIZE)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: payload of %u bytes is not whole blocks", name, plen);
    uint64_t end = (uint64_t)first + plen / TCPX_WIRE_BLOCK_SIZE;
    if (nblocks > TCPX_LIST_MAX_BLOCKS)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: list of %u blocks (at most %d)", name, nblocks,
                              TCPX_LIST_MAX_BLOCKS);
    if (end > nblocks)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: blocks [%u, %llu) of a list of %u", name, first,
                              (unsigned long long)end, nblocks);
    if (flags & ~(TCPX_LIST_LAST | TCPX_LIST_NOTIF))
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: unknown flags 0x%x", name, flags);
    if (!(flags & TCPX_LIST_LAST) != (end < nblocks))
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: piece ending at block %llu of %u %s the LAST flag", name,
                              (unsigned long long)end, nblocks, flags & TCPX_LIST_LAST ? "has" : "lacks");
    if ((flags & TCPX_LIST_NOTIF) && !(flags & TCPX_LIST_LAST))
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: NOTIF flag on a piece that is not the last", name);
    return TCPX_OK;
}

tcpx_wire_block tcpx_msg_block(const tcpx_msg *m, uint32_t i)
{
    tcpx_rbuf r = tcpx_rbuf_make(m->payload + (size_t)i * TCPX_WIRE_BLOCK_SIZE, TCPX_WIRE_BLOCK_SIZE);
    tcpx_wire_block b;
    b.mem_id = tcpx_r_u64(&r);
    b.key = tcpx_r_u64(&r);
    b.offset = tcpx_r_u64(&r);
    b.len = tcpx_r_u64(&r);
    return b;
}

void tcpx_wire_block_put(uint8_t *payload, uint32_t i, const tcpx_wire_block *b)
{
    tcpx_wbuf w = tcpx_wbuf_make(payload + (size_t)i * TCPX_WIRE_BLOCK_SIZE, TCPX_WIRE_BLOCK_SIZE);
    tcpx_w_u64(&w, b->mem_id);
    tcpx_w_u64(&w, b->key);
    tcpx_w_u64(&w, b->offset);
    tcpx_w_u64(&w, b->len);
}

tcpx_status tcpx_msg_decode(const void *buf, size_t len, tcpx_msg *m)
{
    tcpx_rbuf r = tcpx_rbuf_make(buf, len);
    uint8_t version = tcpx_r_u8(&r);
    uint8_t type = tcpx_r_u8(&r);
    uint16_t hs = tcpx_r_u16(&r);
    uint32_t plen = tcpx_r_u32(&r);
    uint32_t digest = tcpx_r_u32(&r);
    if (len >= 1 && version != TCPX_PROTO_VERSION) /* before anything else: an old peer is told so */
        return tcpx_set_error(TCPX_ERR_PROTOCOL,
                              "the peer speaks tcpx-p2p protocol version %u, this build speaks %u: run the same "
                              "protocol version on both sides",
                              version, TCPX_PROTO_VERSION);
    if (r.bad) return tcpx_set_error(TCPX_ERR_PROTOCOL, "control message of %zu bytes is too short", len);
    if (hs < TCPX_PROTO_HDR_COMMON || (uint64_t)hs + plen != len)
        return tcpx_set_error(TCPX_ERR_PROTOCOL, "control message: header %u + payload %u != message length %zu", hs,
                              plen, len);
    uint32_t want_digest = tcpx_msg_digest(buf, len);
    if (digest != want_digest) /* never act on a corrupted message, not even on its type */
        return tcpx_set_error(TCPX_ERR_PROTOCOL,
                              "control message header digest mismatch (sent 0x%08x, computed 0x%08x over %zu bytes): "
                              "corrupted in transit",
                              digest, want_digest, len);
    size_t want = type_hdr_size(type);
    if (!want) return tcpx_set_error(TCPX_ERR_PROTOCOL, "unknown control message type %u", type);
    if (hs != want) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s header size %u, expected %zu", tcpx_msg_name(type), hs, want);
    memset(m, 0, sizeof *m);
    m->type = type;
    switch (type) {
    case TCPX_MSG_HELLO:
        m->u.hello.role = tcpx_r_u8(&r);
        m->u.hello.channels = tcpx_r_u16(&r);
        m->u.hello.token = tcpx_r_u64(&r);
        m->u.hello.nonce = tcpx_r_u64(&r);
        tcpx_r_bytes(&r, m->u.hello.name, TCPX_NAME_MAX);
        m->u.hello.max_chunk = tcpx_r_u32(&r);
        m->u.hello.unx_max = tcpx_r_u32(&r);
        m->u.hello.unx_max_bytes = tcpx_r_u64(&r);
        m->u.hello.flags = tcpx_r_u8(&r);
        if (m->u.hello.flags & ~TCPX_HELLO_DATA_DIGEST)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "HELLO: unknown flags 0x%x", m->u.hello.flags);
        if (m->u.hello.max_chunk == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "HELLO: max chunk 0");
        if (m->u.hello.unx_max == 0 || m->u.hello.unx_max_bytes < TCPX_INLINE_MAX)
            return tcpx_set_error(TCPX_ERR_PROTOCOL,
                                  "HELLO: a budget of %u unmatched sends and %llu inline bytes holds no send",
                                  m->u.hello.unx_max, (unsigned long long)m->u.hello.unx_max_bytes);
        if (m->u.hello.role != TCPX_HELLO_INITIATE && m->u.hello.role != TCPX_HELLO_REPLY)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "HELLO: bad role %u", m->u.hello.role);
        if (m->u.hello.channels < 1 || m->u.hello.channels > TCPX_MAX_CHANNELS)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "HELLO: channel count %u out of range", m->u.hello.channels);
        if (!memchr(m->u.hello.name, '\0', TCPX_NAME_MAX) || !m->u.hello.name[0])
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "HELLO: peer name empty or not terminated");
        break;
    case TCPX_MSG_DHELLO:
        m->u.dhello.token = tcpx_r_u64(&r);
        m->u.dhello.nonce = tcpx_r_u64(&r);
        m->u.dhello.channel = tcpx_r_u16(&r);
        if (plen) return tcpx_set_error(TCPX_ERR_PROTOCOL, "DHELLO with payload");
        break;
    case TCPX_MSG_RTS:
        m->u.rts.send_id = tcpx_r_u64(&r);
        m->u.rts.tag = tcpx_r_u64(&r);
        m->u.rts.size = tcpx_r_u64(&r);
        if (plen && plen != m->u.rts.size)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "RTS: inline payload %u for a message of %llu bytes", plen,
                                  (unsigned long long)m->u.rts.size);
        break;
    case TCPX_MSG_CTS:
        m->u.cts.send_id = tcpx_r_u64(&r);
        m->u.cts.recv_id = tcpx_r_u64(&r);
        m->u.cts.max_chunk = tcpx_r_u32(&r);
        if (m->u.cts.max_chunk == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "CTS: max chunk 0");
        break;
    case TCPX_MSG_DATA:
        m->u.data.recv_id = tcpx_r_u64(&r);
        m->u.data.size = tcpx_r_u64(&r);
        m->u.data.chunk = tcpx_r_u32(&r);
        m->u.data.first_channel = tcpx_r_u16(&r);
        if (m->u.data.chunk == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "DATA: chunk size 0");
        break;
    case TCPX_MSG_ACK: m->u.ack.id = tcpx_r_u64(&r); break;
    case TCPX_MSG_NACK:
        m->u.nack.id = tcpx_r_u64(&r);
        m->u.nack.status = (int32_t)tcpx_r_u32(&r);
        if (m->u.nack.status >= 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "NACK with non-error status");
        break;
    case TCPX_MSG_CANCEL: m->u.cancel.send_id = tcpx_r_u64(&r); break;
    case TCPX_MSG_WRITE: {
        m->u.write.id = tcpx_r_u64(&r);
        m->u.write.total = tcpx_r_u64(&r);
        m->u.write.nblocks = tcpx_r_u32(&r);
        m->u.write.first = tcpx_r_u32(&r);
        m->u.write.chunk = tcpx_r_u32(&r);
        m->u.write.first_channel = tcpx_r_u16(&r);
        m->u.write.flags = tcpx_r_u16(&r);
        uint32_t blocks_len = plen;
        if (m->u.write.flags & TCPX_LIST_INLINE) { /* the one piece: blocks, then the bytes */
            uint64_t need = (uint64_t)m->u.write.nblocks * TCPX_WIRE_BLOCK_SIZE + m->u.write.total;
            if (m->u.write.total > TCPX_INLINE_MAX || m->u.write.first != 0 || need != plen)
                return tcpx_set_error(TCPX_ERR_PROTOCOL,
                                      "WRITE: inline piece of %u bytes for %u blocks and %llu bytes (at most %d "
                                      "inline, one piece)",
                                      plen, m->u.write.nblocks, (unsigned long long)m->u.write.total, TCPX_INLINE_MAX);
            blocks_len = m->u.write.nblocks * TCPX_WIRE_BLOCK_SIZE;
        }
        tcpx_status st = check_list(type, m->u.write.nblocks, m->u.write.first, m->u.write.flags, blocks_len);
        if (st) return st;
        if (m->u.write.chunk == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "WRITE: chunk size 0");
        break;
    }
    case TCPX_MSG_READ_REQ: {
        m->u.read_req.id = tcpx_r_u64(&r);
        m->u.read_req.total = tcpx_r_u64(&r);
        m->u.read_req.nblocks = tcpx_r_u32(&r);
        m->u.read_req.first = tcpx_r_u32(&r);
        m->u.read_req.flags = tcpx_r_u16(&r);
        if (m->u.read_req.flags & TCPX_LIST_INLINE)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_REQ with the INLINE flag");
        tcpx_status st = check_list(type, m->u.read_req.nblocks, m->u.read_req.first, m->u.read_req.flags, plen);
        if (st) return st;
        break;
    }
    case TCPX_MSG_READ_DATA:
        m->u.read_data.id = tcpx_r_u64(&r);
        m->u.read_data.total = tcpx_r_u64(&r);
        m->u.read_data.chunk = tcpx_r_u32(&r);
        m->u.read_data.first_channel = tcpx_r_u16(&r);
        m->u.read_data.flags = tcpx_r_u8(&r);
        if (m->u.read_data.flags & ~TCPX_READ_INLINE)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_DATA: unknown flags 0x%x", m->u.read_data.flags);
        if (m->u.read_data.chunk == 0) return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_DATA: chunk size 0");
        if (m->u.read_data.flags & TCPX_READ_INLINE) {
            if (m->u.read_data.total > TCPX_INLINE_MAX || plen != m->u.read_data.total)
                return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_DATA: %u inline bytes for %llu (at most %d)", plen,
                                      (unsigned long long)m->u.read_data.total, TCPX_INLINE_MAX);
        } else if (plen) {
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "READ_DATA with payload");
        }
        break;
    case TCPX_MSG_KEEPALIVE:
        m->u.keepalive.flags = tcpx_r_u16(&r);
        if (plen) return tcpx_set_error(TCPX_ERR_PROTOCOL, "KEEPALIVE with payload");
        if (m->u.keepalive.flags & ~TCPX_KEEPALIVE_ASK)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "KEEPALIVE: unknown flags 0x%x", m->u.keepalive.flags);
        break;
    case TCPX_MSG_NOTIF:
        m->u.notif.id = tcpx_r_u64(&r);
        m->u.notif.flags = tcpx_r_u16(&r);
        if (m->u.notif.flags & ~TCPX_NOTIF_ATTACHED)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "NOTIF: unknown flags 0x%x", m->u.notif.flags);
        if (plen > TCPX_NOTIF_MAX)
            return tcpx_set_error(TCPX_ERR_PROTOCOL, "NOTIF of %u bytes (at most %d)", plen, TCPX_NOTIF_MAX);
        break;
    }
    if (r.bad || r.pos != hs) return tcpx_set_error(TCPX_ERR_PROTOCOL, "%s: truncated header", tcpx_msg_name(type));
    m->payload = plen ? (const uint8_t *)buf + hs : NULL;
    m->payload_len = plen;
    return TCPX_OK;
}
