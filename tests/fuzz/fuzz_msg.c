/* fuzz_msg.c - fuzz harness for tcpx_msg_decode().
 *
 * Built with libFuzzer (fuzz_msg) when the compiler is clang, and always
 * linked to replay.c (fuzz_replay_msg, a ctest).
 *
 * Invariant: reject with TCPX_ERR_PROTOCOL and a message, or accept a message
 * whose fields obey proto.h, whose payload lies inside the input (and the
 * blocks of a WRITE or READ_REQ piece, read with tcpx_msg_block, inside the
 * payload), and which re-encodes to the same length and decodes identically;
 * the re-encoding is byte-identical except for bytes after the NUL of a
 * HELLO name (and so the digest of such a HELLO). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proto.h"
#include "msg_same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap);
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how);
int fuzz_last_accepted; /* 1 when the last input decoded */
uint64_t blocks_seen;   /* keeps the block reads from being optimized away */
/* Fields {offset, width} for replay.c's structure-aware mutations: the
 * common header, then the op fields of the various ops. */
const unsigned char fuzz_fields[][2] = {{0, 1},  {1, 1},  {2, 2},  {4, 4},  {8, 4},  {12, 1}, {13, 2},
                                        {12, 8}, {20, 8}, {28, 8}, {28, 4}, {32, 2}, {20, 2}, {31, 1},
                                        {94, 1}, {95, 4}, {99, 4}, {103, 8}, {111, 1}, {36, 4}, {40, 2}, {42, 2}, {44, 8}, {68, 8}};
const size_t fuzz_nfields = sizeof fuzz_fields / sizeof fuzz_fields[0];
const char fuzz_target_name[] = "msg";
const size_t fuzz_max_input = TCPX_CTRL_MSG_MAX;

#define HELLO_NAME_OFF (TCPX_PROTO_HDR_COMMON + 1 + 2 + 8 + 8)

#define FUZZ_ASSERT(c, ...)                                          \
    do {                                                             \
        if (!(c)) {                                                  \
            fprintf(stderr, "fuzz_msg: invariant failed: %s -- ", #c);  \
            fprintf(stderr, __VA_ARGS__);                            \
            fprintf(stderr, "\n");                                   \
            abort();                                                 \
        }                                                            \
    } while (0)

/* Read a list piece's cnt blocks as the receiver does (tcpx_msg_block):
 * they must lie inside the payload (ASan: inside the input). */
static uint64_t read_blocks(const tcpx_msg *m, uint32_t cnt)
{
    FUZZ_ASSERT((uint64_t)cnt * TCPX_WIRE_BLOCK_SIZE <= m->payload_len, "%u blocks in a payload of %u", cnt,
                m->payload_len);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        tcpx_wire_block b = tcpx_msg_block(m, i);
        sum += b.mem_id ^ b.key ^ b.offset ^ b.len;
    }
    return sum;
}

/* A list piece as proto.h allows it. */
static void check_list(uint32_t nblocks, uint32_t first, uint16_t flags, uint32_t plen)
{
    uint64_t end = (uint64_t)first + plen / TCPX_WIRE_BLOCK_SIZE;
    FUZZ_ASSERT(plen % TCPX_WIRE_BLOCK_SIZE == 0, "list payload %u", plen);
    FUZZ_ASSERT(nblocks <= TCPX_LIST_MAX_BLOCKS && end <= nblocks, "list piece [%u, %llu) of %u", first,
                (unsigned long long)end, nblocks);
    FUZZ_ASSERT(!(flags & ~(TCPX_LIST_LAST | TCPX_LIST_NOTIF)), "list flags 0x%x", flags);
    FUZZ_ASSERT(!!(flags & TCPX_LIST_LAST) == (end == nblocks), "LAST flag");
    FUZZ_ASSERT(!(flags & TCPX_LIST_NOTIF) || (flags & TCPX_LIST_LAST), "NOTIF flag");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t enc[TCPX_CTRL_MSG_MAX * 4 + 256];
    tcpx_msg m, again;
    tcpx_status st = tcpx_msg_decode(size ? data : (const uint8_t *)"", size, &m);
    if (st != TCPX_OK) {
        fuzz_last_accepted = 0;
        FUZZ_ASSERT(st == TCPX_ERR_PROTOCOL, "status %d for %zu bytes", (int)st, size);
        FUZZ_ASSERT(tcpx_last_error()[0] != '\0', "no error text");
        return 0;
    }
    FUZZ_ASSERT(m.type >= TCPX_MSG_HELLO && m.type < TCPX_MSG_MAX_, "op %u", m.type);
    size_t hs = size - m.payload_len;
    FUZZ_ASSERT(m.payload_len <= size && hs >= TCPX_PROTO_HDR_COMMON, "payload %u of %zu", m.payload_len, size);
    FUZZ_ASSERT(hs == (size_t)(data[2] | data[3] << 8), "header size field");
    if (m.payload_len) FUZZ_ASSERT(m.payload == data + hs, "payload pointer not at the header's end");
    else FUZZ_ASSERT(m.payload == NULL, "payload pointer without payload");
    switch (m.type) {
    case TCPX_MSG_HELLO:
        FUZZ_ASSERT(m.u.hello.role == TCPX_HELLO_INITIATE || m.u.hello.role == TCPX_HELLO_REPLY, "role");
        FUZZ_ASSERT(m.u.hello.channels >= 1 && m.u.hello.channels <= TCPX_MAX_CHANNELS, "channels");
        FUZZ_ASSERT(memchr(m.u.hello.name, 0, TCPX_NAME_MAX) && m.u.hello.name[0], "name");
        FUZZ_ASSERT(m.u.hello.max_chunk != 0, "HELLO max chunk 0");
        FUZZ_ASSERT(!(m.u.hello.flags & ~TCPX_HELLO_DATA_DIGEST), "HELLO flags");
        FUZZ_ASSERT(m.u.hello.unx_max != 0 && m.u.hello.unx_max_bytes >= TCPX_INLINE_MAX, "HELLO budget");
        break;
    case TCPX_MSG_WRITE:
        if (m.u.write.flags & TCPX_LIST_INLINE) { /* one piece: the blocks, then `total` bytes */
            FUZZ_ASSERT(m.u.write.total <= TCPX_INLINE_MAX && m.u.write.first == 0 &&
                            (uint64_t)m.u.write.nblocks * TCPX_WIRE_BLOCK_SIZE + m.u.write.total == m.payload_len,
                        "INLINE WRITE lengths");
            check_list(m.u.write.nblocks, 0, m.u.write.flags & (uint16_t)~TCPX_LIST_INLINE,
                       m.u.write.nblocks * TCPX_WIRE_BLOCK_SIZE);
            blocks_seen += read_blocks(&m, m.u.write.nblocks);
        } else {
            check_list(m.u.write.nblocks, m.u.write.first, m.u.write.flags, m.payload_len);
            blocks_seen += read_blocks(&m, m.payload_len / TCPX_WIRE_BLOCK_SIZE);
        }
        FUZZ_ASSERT(m.u.write.chunk != 0, "WRITE chunk 0");
        break;
    case TCPX_MSG_READ_REQ:
        check_list(m.u.read_req.nblocks, m.u.read_req.first, m.u.read_req.flags, m.payload_len);
        blocks_seen += read_blocks(&m, m.payload_len / TCPX_WIRE_BLOCK_SIZE);
        break;
    case TCPX_MSG_READ_DATA:
        FUZZ_ASSERT(m.u.read_data.chunk != 0 && !(m.u.read_data.flags & ~TCPX_READ_INLINE), "READ_DATA");
        FUZZ_ASSERT((m.u.read_data.flags & TCPX_READ_INLINE)
                        ? m.u.read_data.total <= TCPX_INLINE_MAX && m.payload_len == m.u.read_data.total
                        : !m.payload_len,
                    "READ_DATA payload");
        break;
    case TCPX_MSG_NOTIF:
        FUZZ_ASSERT(m.payload_len <= TCPX_NOTIF_MAX && !(m.u.notif.flags & ~TCPX_NOTIF_ATTACHED), "NOTIF");
        break;
    case TCPX_MSG_DHELLO: FUZZ_ASSERT(m.payload_len == 0, "DHELLO payload"); break;
    case TCPX_MSG_KEEPALIVE:
        FUZZ_ASSERT(m.payload_len == 0 && !(m.u.keepalive.flags & ~TCPX_KEEPALIVE_ASK), "KEEPALIVE");
        break;
    case TCPX_MSG_RTS: FUZZ_ASSERT(!m.payload_len || m.payload_len == m.u.rts.size, "RTS inline size"); break;
    case TCPX_MSG_DATA: FUZZ_ASSERT(m.u.data.chunk != 0, "DATA chunk 0"); break;
    case TCPX_MSG_NACK: FUZZ_ASSERT(m.u.nack.status < 0, "NACK status"); break;
    }
    FUZZ_ASSERT(tcpx_msg_encode(&m, enc, size - 1) == 0, "encode into %zu bytes succeeded", size - 1);
    size_t len = tcpx_msg_encode(&m, enc, size);
    FUZZ_ASSERT(len == size, "re-encoded %zu bytes of %zu", len, size);
    st = tcpx_msg_decode(enc, len, &again);
    FUZZ_ASSERT(st == TCPX_OK && msg_same(&m, &again), "re-encoded message decodes differently (status %d)", (int)st);
    if (m.type == TCPX_MSG_HELLO) {
        /* the encoder zeroes the bytes after the name's NUL, and the digest
         * covers them: compare all but the name and the digest */
        FUZZ_ASSERT(memcmp(enc, data, TCPX_PROTO_DIGEST_OFF) == 0 &&
                        memcmp(enc + TCPX_PROTO_DIGEST_OFF + 4, data + TCPX_PROTO_DIGEST_OFF + 4,
                               HELLO_NAME_OFF - TCPX_PROTO_DIGEST_OFF - 4) == 0 &&
                        memcmp(enc + HELLO_NAME_OFF + TCPX_NAME_MAX, data + HELLO_NAME_OFF + TCPX_NAME_MAX,
                               size - HELLO_NAME_OFF - TCPX_NAME_MAX) == 0,
                    "HELLO re-encoding changed bytes outside the name");
    } else {
        FUZZ_ASSERT(memcmp(enc, data, size) == 0, "re-encoding is not byte-identical");
    }
    fuzz_last_accepted = 1;
    return 0;
}

static uint64_t sm(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap)
{
    static uint8_t payload[TCPX_CTRL_MSG_MAX];
    uint64_t s = seed;
    tcpx_msg m;
    memset(&m, 0, sizeof m);
    m.type = (uint8_t)(TCPX_MSG_HELLO + sm(&s) % (TCPX_MSG_MAX_ - TCPX_MSG_HELLO));
    switch (m.type) {
    case TCPX_MSG_HELLO: {
        m.u.hello.role = (sm(&s) & 1) ? TCPX_HELLO_INITIATE : TCPX_HELLO_REPLY;
        m.u.hello.channels = (uint16_t)(1 + sm(&s) % TCPX_MAX_CHANNELS);
        m.u.hello.token = sm(&s);
        m.u.hello.nonce = sm(&s);
        size_t n = 1 + sm(&s) % (TCPX_NAME_MAX - 1);
        for (size_t i = 0; i < n; i++) m.u.hello.name[i] = (char)('!' + sm(&s) % 94);
        m.u.hello.max_chunk = (uint32_t)sm(&s) | 1;
        m.u.hello.flags = (uint8_t)(sm(&s) & 1);
        m.u.hello.unx_max = (uint32_t)sm(&s) | 1;
        m.u.hello.unx_max_bytes = TCPX_INLINE_MAX + sm(&s) % (1ull << 40);
        m.payload_len = (uint32_t)(sm(&s) % 600);
        break;
    }
    case TCPX_MSG_DHELLO:
        m.u.dhello.token = sm(&s);
        m.u.dhello.nonce = sm(&s);
        m.u.dhello.channel = (uint16_t)sm(&s);
        break;
    case TCPX_MSG_RTS:
        m.u.rts.send_id = sm(&s);
        m.u.rts.tag = sm(&s);
        m.u.rts.size = sm(&s);
        if (sm(&s) & 1) m.u.rts.size = m.payload_len = (uint32_t)(1 + sm(&s) % 512);
        break;
    case TCPX_MSG_CTS:
        m.u.cts.send_id = sm(&s);
        m.u.cts.recv_id = sm(&s);
        m.u.cts.max_chunk = (uint32_t)sm(&s) | 1;
        break;
    case TCPX_MSG_DATA:
        m.u.data.recv_id = sm(&s);
        m.u.data.size = sm(&s);
        m.u.data.chunk = (uint32_t)sm(&s) | 1;
        m.u.data.first_channel = (uint16_t)sm(&s);
        break;
    case TCPX_MSG_ACK: m.u.ack.id = sm(&s); break;
    case TCPX_MSG_NACK:
        m.u.nack.id = sm(&s);
        m.u.nack.status = -(int32_t)(1 + sm(&s) % 11);
        m.payload_len = (uint32_t)(sm(&s) % 100);
        break;
    case TCPX_MSG_CANCEL: m.u.cancel.send_id = sm(&s); break;
    case TCPX_MSG_KEEPALIVE: m.u.keepalive.flags = (uint16_t)(sm(&s) & 1); break;
    case TCPX_MSG_WRITE:
    case TCPX_MSG_READ_REQ: {
        uint32_t nblocks = (uint32_t)(sm(&s) % 1200), cnt = (uint32_t)(sm(&s) % (nblocks < 40 ? nblocks + 1 : 41));
        uint32_t first = (uint32_t)(sm(&s) % (nblocks - cnt + 1));
        uint16_t flags = first + cnt == nblocks ? (uint16_t)(TCPX_LIST_LAST | (sm(&s) & 1 ? TCPX_LIST_NOTIF : 0)) : 0;
        m.payload_len = cnt * TCPX_WIRE_BLOCK_SIZE;
        if (m.type == TCPX_MSG_WRITE && sm(&s) % 4 == 0) { /* INLINE: a whole small list and its bytes */
            uint32_t nb = (uint32_t)(sm(&s) % 20), total = (uint32_t)(sm(&s) % 3000);
            m.u.write.id = sm(&s);
            m.u.write.total = total;
            m.u.write.nblocks = nb;
            m.u.write.first = 0;
            m.u.write.chunk = (uint32_t)sm(&s) | 1;
            m.u.write.first_channel = (uint16_t)sm(&s);
            m.u.write.flags = (uint16_t)(TCPX_LIST_LAST | TCPX_LIST_INLINE | (sm(&s) & 1 ? TCPX_LIST_NOTIF : 0));
            m.payload_len = nb * TCPX_WIRE_BLOCK_SIZE + total;
            break;
        }
        if (m.type == TCPX_MSG_WRITE) {
            m.u.write.id = sm(&s);
            m.u.write.total = sm(&s);
            m.u.write.nblocks = nblocks;
            m.u.write.first = first;
            m.u.write.chunk = (uint32_t)sm(&s) | 1;
            m.u.write.first_channel = (uint16_t)sm(&s);
            m.u.write.flags = flags;
        } else {
            m.u.read_req.id = sm(&s);
            m.u.read_req.total = sm(&s);
            m.u.read_req.nblocks = nblocks;
            m.u.read_req.first = first;
            m.u.read_req.flags = flags;
        }
        break;
    }
    case TCPX_MSG_READ_DATA:
        m.u.read_data.id = sm(&s);
        m.u.read_data.total = sm(&s);
        m.u.read_data.chunk = (uint32_t)sm(&s) | 1;
        m.u.read_data.first_channel = (uint16_t)sm(&s);
        if (sm(&s) & 1) { /* INLINE: the bytes are the payload */
            m.u.read_data.flags = TCPX_READ_INLINE;
            m.u.read_data.total = sm(&s) % 3000;
            m.payload_len = (uint32_t)m.u.read_data.total;
        }
        break;
    case TCPX_MSG_NOTIF:
        m.u.notif.id = sm(&s);
        m.u.notif.flags = (uint16_t)(sm(&s) & 1);
        m.payload_len = (uint32_t)(sm(&s) % 300);
        break;
    }
    for (uint32_t i = 0; i < m.payload_len; i++) payload[i] = (uint8_t)sm(&s);
    m.payload = m.payload_len ? payload : NULL;
    return tcpx_msg_encode(&m, buf, cap);
}

/* Make the framing and the digest consistent so that a mutated message gets
 * past them to the field checks: how & 1 resizes the message to header size +
 * payload length (when that fits cap), otherwise the payload length field is
 * set to what follows the header; then the digest is recomputed unless
 * how & 2 (so that mismatching digests keep being tried). Returns the new
 * length. */
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how)
{
    if (len < TCPX_PROTO_HDR_COMMON) return len;
    size_t hs = buf[2] | (size_t)buf[3] << 8;
    size_t pl = buf[4] | (size_t)buf[5] << 8 | (size_t)buf[6] << 16 | (size_t)buf[7] << 24;
    if ((how & 1) && hs + pl <= cap) {
        for (size_t i = len; i < hs + pl; i++) buf[i] = (uint8_t)(0x5A ^ i);
        len = hs + pl;
    } else if (hs <= len) {
        pl = len - hs;
        for (int i = 0; i < 4; i++) buf[4 + i] = (uint8_t)(pl >> (8 * i));
    }
    if (!(how & 2) && len >= TCPX_PROTO_HDR_COMMON) tcpx_msg_seal(buf, len);
    return len;
}

#ifdef TCPX_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    return (seed & 1) ? fuzz_fixup(data, size, max_size, seed >> 1) : size;
}
#endif
