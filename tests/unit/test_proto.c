/* test_proto.c - control-message codec (src/core/proto.c).
 *
 * Every op round trips with random field values (and random payloads where
 * the op carries one); every truncation and extension is rejected; every
 * malformed field named in proto.h is rejected with TCPX_ERR_PROTOCOL and a
 * tcpx_last_error() sentence; encoding into too small a buffer returns 0.
 * Decoders get heap copies of exactly the length they are told (ASan).
 *
 * Seed: TCPX_TEST_SEED=<n> reproduces a run; the seed is printed first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/blob.h"
#include "core/proto.h"
#include "msg_same.h"
#include "util/bytes.h"
#include "util/error.h"

static int g_failures;
static uint64_t g_seed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            if (g_failures++ < 50) {                                          \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
                fprintf(stderr, __VA_ARGS__);                                 \
                fprintf(stderr, " (seed=%" PRIu64 ")\n", g_seed);             \
            }                                                                 \
        }                                                                     \
    } while (0)

/* Decode buf[0..len) from an exact heap copy; expect TCPX_ERR_PROTOCOL. */
static void expect_reject(const uint8_t *buf, size_t len, const char *what, long arg)
{
    uint8_t *c = malloc(len ? len : 1);
    if (len) memcpy(c, buf, len);
    tcpx_msg m;
    tcpx_clear_error();
    tcpx_status st = tcpx_msg_decode(c, len, &m);
    CHECK(st == TCPX_ERR_PROTOCOL, "%s (%ld): decode -> %s, expected TCPX_ERR_PROTOCOL", what, arg,
          tcpx_strerror(st));
    if (st == TCPX_ERR_PROTOCOL) CHECK(tcpx_last_error()[0] != '\0', "%s (%ld): empty last_error", what, arg);
    free(c);
}

/* ------------------------------------------------------------- randomness */

static uint64_t g_rng;

static uint64_t rnd(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_nonzero(void)
{
    uint64_t v;
    while ((v = rnd()) == 0) {}
    return v;
}

static uint64_t rnd_below(uint64_t n) { return rnd() % n; }

static void rnd_fill(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd();
    if (n) {
        size_t at = rnd_below(n);
        b[at] |= (uint8_t)(1u << rnd_below(8));
    }
}

/* ------------------------------------------------------------- messages */

static uint8_t g_payload[TCPX_CTRL_MSG_MAX];

/* A random valid message of `op`. Payload points into g_payload. */
static void random_msg(tcpx_msg *m, uint8_t op)
{
    memset(m, 0, sizeof *m);
    m->type = op;
    switch (op) {
    case TCPX_MSG_HELLO: {
        m->u.hello.role = rnd_below(2) ? TCPX_HELLO_INITIATE : TCPX_HELLO_REPLY;
        m->u.hello.channels = (uint16_t)(1 + rnd_below(TCPX_MAX_CHANNELS));
        m->u.hello.token = rnd_nonzero();
        m->u.hello.nonce = rnd_nonzero();
        size_t n = 1 + rnd_below(TCPX_NAME_MAX - 1); /* 1..63 */
        for (size_t i = 0; i < n; i++) m->u.hello.name[i] = (char)(0x21 + rnd_below(0x5E)); /* printable, no NUL */
        m->u.hello.name[n] = '\0';
        m->u.hello.max_chunk = (uint32_t)(1 + rnd_below(UINT32_MAX));
        m->u.hello.flags = (uint8_t)rnd_below(2);
        m->u.hello.unx_max = (uint32_t)(1 + rnd_below(UINT32_MAX));
        m->u.hello.unx_max_bytes = TCPX_INLINE_MAX + rnd_below(UINT64_MAX - TCPX_INLINE_MAX);
        m->payload_len = (uint32_t)rnd_below(9000); /* a conninfo blob is up to 8376 bytes */
        break;
    }
    case TCPX_MSG_DHELLO:
        m->u.dhello.token = rnd_nonzero();
        m->u.dhello.nonce = rnd_nonzero();
        m->u.dhello.channel = (uint16_t)rnd();
        break;
    case TCPX_MSG_RTS:
        m->u.rts.send_id = rnd_nonzero();
        m->u.rts.tag = rnd();
        if (rnd_below(2)) { /* inline */
            m->payload_len = (uint32_t)(1 + rnd_below(TCPX_INLINE_MAX));
            m->u.rts.size = m->payload_len;
        } else {
            m->u.rts.size = rnd_below(4) ? rnd() : rnd_below(2); /* 0, 1 or anything */
        }
        break;
    case TCPX_MSG_CTS:
        m->u.cts.send_id = rnd_nonzero();
        m->u.cts.recv_id = rnd_nonzero();
        m->u.cts.max_chunk = (uint32_t)rnd_nonzero() | 1;
        break;
    case TCPX_MSG_DATA:
        m->u.data.recv_id = rnd_nonzero();
        m->u.data.size = rnd();
        m->u.data.chunk = (uint32_t)(1 + rnd_below(UINT32_MAX));
        m->u.data.first_channel = (uint16_t)rnd();
        break;
    case TCPX_MSG_ACK: m->u.ack.id = rnd(); break;
    case TCPX_MSG_NACK:
        m->u.nack.id = rnd();
        m->u.nack.status = rnd_below(2) ? -(int32_t)(1 + rnd_below(11)) : (int32_t)(0x80000000u | (uint32_t)rnd());
        m->payload_len = (uint32_t)rnd_below(300);
        break;
    case TCPX_MSG_CANCEL: m->u.cancel.send_id = rnd(); break;
    case TCPX_MSG_WRITE:
    case TCPX_MSG_READ_REQ: {
        /* A piece of a list: cnt whole blocks at `first`, LAST exactly when
         * it ends the list, NOTIF only then. */
        uint32_t nblocks = (uint32_t)(rnd_below(4) ? rnd_below(2000) : rnd_below(TCPX_LIST_MAX_BLOCKS + 1));
        uint32_t cnt = (uint32_t)rnd_below((nblocks < TCPX_BLOCKS_PER_MSG ? nblocks : TCPX_BLOCKS_PER_MSG) + 1);
        uint32_t first = (uint32_t)rnd_below(nblocks - cnt + 1);
        uint16_t flags = first + cnt == nblocks ? TCPX_LIST_LAST : 0;
        if (flags && rnd_below(2)) flags |= TCPX_LIST_NOTIF;
        m->payload_len = cnt * TCPX_WIRE_BLOCK_SIZE;
        if (op == TCPX_MSG_WRITE) {
            m->u.write.id = rnd_nonzero();
            m->u.write.total = rnd();
            m->u.write.nblocks = nblocks;
            m->u.write.first = first;
            m->u.write.chunk = (uint32_t)(1 + rnd_below(UINT32_MAX));
            m->u.write.first_channel = (uint16_t)rnd();
            m->u.write.flags = flags;
        } else {
            m->u.read_req.id = rnd_nonzero();
            m->u.read_req.total = rnd();
            m->u.read_req.nblocks = nblocks;
            m->u.read_req.first = first;
            m->u.read_req.flags = flags;
        }
        break;
    }
    case TCPX_MSG_READ_DATA:
        m->u.read_data.id = rnd_nonzero();
        m->u.read_data.total = rnd();
        m->u.read_data.chunk = (uint32_t)(1 + rnd_below(UINT32_MAX));
        m->u.read_data.first_channel = (uint16_t)rnd();
        m->u.read_data.flags = 0; /* INLINE needs its payload: covered in test_field_errors */
        break;
    case TCPX_MSG_KEEPALIVE: m->u.keepalive.flags = (uint16_t)rnd_below(2); break;
    case TCPX_MSG_NOTIF:
        m->u.notif.id = rnd_nonzero();
        m->u.notif.flags = (uint16_t)rnd_below(2);
        m->payload_len = (uint32_t)rnd_below(TCPX_NOTIF_MAX + 1);
        break;
    }
    if (m->payload_len) {
        rnd_fill(g_payload, m->payload_len);
        m->payload = g_payload;
    }
}

static size_t expected_hdr(uint8_t op)
{
    switch (op) {
    case TCPX_MSG_HELLO: return TCPX_PROTO_HDR_COMMON + 1 + 2 + 8 + 8 + TCPX_NAME_MAX + 4 + 4 + 8 + 1;
    case TCPX_MSG_DHELLO: return TCPX_PROTO_HDR_COMMON + 18;
    case TCPX_MSG_RTS: return TCPX_PROTO_HDR_COMMON + 24;
    case TCPX_MSG_CTS: return TCPX_PROTO_HDR_COMMON + 20;
    case TCPX_MSG_DATA: return TCPX_PROTO_HDR_COMMON + 22;
    case TCPX_MSG_ACK: return TCPX_PROTO_HDR_COMMON + 8;
    case TCPX_MSG_NACK: return TCPX_PROTO_HDR_COMMON + 12;
    case TCPX_MSG_CANCEL: return TCPX_PROTO_HDR_COMMON + 8;
    case TCPX_MSG_WRITE: return TCPX_PROTO_HDR_COMMON + 32;
    case TCPX_MSG_READ_REQ: return TCPX_PROTO_HDR_COMMON + 26;
    case TCPX_MSG_READ_DATA: return TCPX_PROTO_HDR_COMMON + 23;
    case TCPX_MSG_NOTIF: return TCPX_PROTO_HDR_COMMON + 10;
    case TCPX_MSG_KEEPALIVE: return TCPX_PROTO_HDR_COMMON + 2;
    }
    return 0;
}

static uint8_t g_buf[TCPX_CTRL_MSG_MAX + 64];

/* Encode m into g_buf; returns length (checks layout of the common header). */
static size_t encode_checked(const tcpx_msg *m)
{
    memset(g_buf, 0xA5, sizeof g_buf);
    size_t len = tcpx_msg_encode(m, g_buf, sizeof g_buf);
    size_t hs = expected_hdr(m->type);
    CHECK(len == hs + m->payload_len, "%s: encoded %zu bytes, expected %zu + %u", tcpx_msg_name(m->type), len, hs,
          m->payload_len);
    if (!len) return 0;
    for (size_t i = len; i < sizeof g_buf; i++)
        if (g_buf[i] != 0xA5) {
            CHECK(0, "%s: encode wrote past its length at %zu", tcpx_msg_name(m->type), i);
            break;
        }
    CHECK(len <= TCPX_CTRL_MSG_MAX, "%s: %zu bytes exceeds TCPX_CTRL_MSG_MAX", tcpx_msg_name(m->type), len);
    CHECK(g_buf[0] == TCPX_PROTO_VERSION && g_buf[1] == m->type, "version/op bytes %u %u", g_buf[0], g_buf[1]);
    CHECK((size_t)(g_buf[2] | g_buf[3] << 8) == hs, "hdr_size field %u", g_buf[2] | g_buf[3] << 8);
    uint32_t pl = g_buf[4] | g_buf[5] << 8 | g_buf[6] << 16 | (uint32_t)g_buf[7] << 24;
    CHECK(pl == m->payload_len, "payload_len field %u", pl);
    if (m->payload_len) CHECK(memcmp(g_buf + hs, m->payload, m->payload_len) == 0, "payload bytes follow header");
    /* The digest: CRC-32C (bitwise table code, not the one encode uses) of
     * every byte but the digest field itself. */
    uint32_t d = g_buf[8] | g_buf[9] << 8 | g_buf[10] << 16 | (uint32_t)g_buf[11] << 24;
    uint32_t want = tcpx_crc32c_table_update(tcpx_crc32c_table_update(0, g_buf, 8), g_buf + 12, len - 12);
    CHECK(d == want, "%s: digest field 0x%08x, CRC-32C of the rest 0x%08x", tcpx_msg_name(m->type), d, want);
    return len;
}

static void test_roundtrip(uint8_t op, int sweep)
{
    tcpx_msg in, out;
    random_msg(&in, op);
    size_t len = encode_checked(&in);
    if (!len) return;

    uint8_t *exact = malloc(len);
    memcpy(exact, g_buf, len);
    memset(&out, 0x5A, sizeof out);
    tcpx_status st = tcpx_msg_decode(exact, len, &out);
    CHECK(st == TCPX_OK, "%s: decode -> %s: %s", tcpx_msg_name(op), tcpx_strerror(st), tcpx_last_error());
    CHECK(msg_same(&in, &out), "%s: round trip differs", tcpx_msg_name(op));
    if (st == TCPX_OK) {
        if (in.payload_len) CHECK(out.payload == exact + expected_hdr(op), "%s: payload pointer", tcpx_msg_name(op));
        else CHECK(out.payload == NULL, "%s: payload pointer without payload", tcpx_msg_name(op));
    }

    /* Too small a buffer: 0, and never a partial claim. */
    uint8_t *small = malloc(len);
    CHECK(tcpx_msg_encode(&in, small, len) == len, "%s: encode into exact cap", tcpx_msg_name(op));
    CHECK(tcpx_msg_encode(&in, small, len - 1) == 0, "%s: encode into len-1 returned non-zero", tcpx_msg_name(op));
    CHECK(tcpx_msg_encode(&in, small, 0) == 0, "%s: encode into 0", tcpx_msg_name(op));
    CHECK(tcpx_msg_encode(&in, small, 7) == 0, "%s: encode into 7", tcpx_msg_name(op));
    free(small);

    if (sweep) {
        for (size_t t = 0; t < len; t++) expect_reject(exact, t, tcpx_msg_name(op), (long)t);
        for (size_t extra = 1; extra <= 4; extra++) {
            uint8_t *c = malloc(len + extra);
            memcpy(c, exact, len);
            rnd_fill(c + len, extra);
            expect_reject(c, len + extra, "extended", (long)extra);
            free(c);
        }
        /* Every single-bit flip is caught: in the header (version, type,
         * sizes, digest, type fields) and, sampled, in the payload. */
        uint8_t *c = malloc(len);
        memcpy(c, exact, len);
        size_t hs = expected_hdr(op);
        for (size_t i = 0; i < len; i++) {
            if (i >= hs && rnd_below(len - hs) >= 64) continue; /* ~64 payload bytes */
            for (int b = 0; b < 8; b++) {
                c[i] ^= (uint8_t)(1u << b);
                expect_reject(c, len, "single bit flip", (long)(i * 8 + b));
                c[i] ^= (uint8_t)(1u << b);
            }
        }
        /* Flips in the type fields behind a valid digest (a peer that
         * computes it over wrong fields): rejected or decoded consistently. */
        for (size_t i = TCPX_PROTO_HDR_COMMON; i < len && i < 200; i++) {
            c[i] ^= (uint8_t)(1u << rnd_below(8));
            tcpx_msg_seal(c, len);
            tcpx_msg m;
            if (tcpx_msg_decode(c, len, &m) == TCPX_OK)
                CHECK(m.type == op && m.payload_len == in.payload_len, "%s: flip at %zu changed op/length",
                      tcpx_msg_name(op), i);
            memcpy(c, exact, len);
        }
        free(c);
    }
    free(exact);
}

/* Encode a valid message of op, let `mutate` edit the bytes, expect rejection. */
static void set_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void test_header_errors(uint8_t op)
{
    tcpx_msg m;
    random_msg(&m, op);
    size_t len = tcpx_msg_encode(&m, g_buf, sizeof g_buf);
    CHECK(len > 0, "encode %s", tcpx_msg_name(op));
    if (!len) return;
    static uint8_t c[TCPX_CTRL_MSG_MAX + 64];
    size_t hs = expected_hdr(op);

    const uint8_t versions[] = {0, TCPX_PROTO_VERSION + 1, 0x81, 255};
    for (size_t i = 0; i < sizeof versions; i++) {
        memcpy(c, g_buf, len);
        c[0] = versions[i];
        tcpx_msg_seal(c, len);
        expect_reject(c, len, "wrong version", versions[i]);
    }
    /* A peer of protocol version 3 (before the digest) is told so. */
    memcpy(c, g_buf, len);
    c[0] = 3;
    expect_reject(c, len, "version 3", 3);
    CHECK(strstr(tcpx_last_error(), "protocol version 3") && strstr(tcpx_last_error(), "same protocol version"),
          "old peer sentence: %s", tcpx_last_error());
    /* A digest that does not match is named as such. */
    memcpy(c, g_buf, len);
    c[len - 1] ^= 0x10;
    expect_reject(c, len, "digest", op);
    CHECK(strstr(tcpx_last_error(), "digest mismatch") != NULL, "digest sentence: %s", tcpx_last_error());
    memcpy(c, g_buf, len);
    c[8] ^= 1;
    expect_reject(c, len, "digest field", op);
    const uint8_t ops[] = {0, TCPX_MSG_MAX_, TCPX_MSG_MAX_ + 1, 100, 255};
    for (size_t i = 0; i < sizeof ops; i++) {
        memcpy(c, g_buf, len);
        c[1] = ops[i];
        tcpx_msg_seal(c, len);
        expect_reject(c, len, "unknown op", ops[i]);
    }
    /* Header size off by one either way, message length kept consistent. */
    memcpy(c, g_buf, len);
    set_le(c + 2, hs + 1, 2);
    memmove(c + hs + 1, g_buf + hs, len - hs);
    c[hs] = 0;
    tcpx_msg_seal(c, len + 1);
    expect_reject(c, len + 1, "hdr_size + 1", op);
    memcpy(c, g_buf, len);
    set_le(c + 2, hs - 1, 2);
    memmove(c + hs - 1, g_buf + hs, len - hs);
    tcpx_msg_seal(c, len - 1);
    expect_reject(c, len - 1, "hdr_size - 1", op);
    memcpy(c, g_buf, len);
    set_le(c + 2, 0, 2);
    expect_reject(c, len, "hdr_size 0", op);
    set_le(c + 2, 0xFFFF, 2);
    expect_reject(c, len, "hdr_size 0xFFFF", op);
    /* Payload length inconsistent with the message length. */
    const int64_t deltas[] = {1, -1, 4096, 0x7FFFFFFF};
    for (size_t i = 0; i < 4; i++) {
        int64_t pl = (int64_t)m.payload_len + deltas[i];
        if (pl < 0) continue;
        memcpy(c, g_buf, len);
        set_le(c + 4, (uint64_t)pl, 4);
        expect_reject(c, len, "payload_len inconsistent", (long)deltas[i]);
    }
    memcpy(c, g_buf, len);
    set_le(c + 4, 0xFFFFFFFFu, 4);
    expect_reject(c, len, "payload_len 0xFFFFFFFF", op);
}

static void test_field_errors(void)
{
    tcpx_msg m;
    size_t len;

#define REJECT(...)                                               \
    do {                                                          \
        len = tcpx_msg_encode(&m, g_buf, sizeof g_buf);           \
        CHECK(len > 0, "encode for a rejection case failed");     \
        if (len) expect_reject(g_buf, len, __VA_ARGS__);          \
    } while (0)
#define ACCEPT(what)                                                                              \
    do {                                                                                          \
        tcpx_msg o_;                                                                              \
        len = tcpx_msg_encode(&m, g_buf, sizeof g_buf);                                           \
        tcpx_status st_ = tcpx_msg_decode(g_buf, len, &o_);                                       \
        CHECK(len && st_ == TCPX_OK && msg_same(&m, &o_), "%s rejected: %s", what, tcpx_last_error()); \
    } while (0)

    /* RTS: an inline payload must be exactly the message size. */
    random_msg(&m, TCPX_MSG_RTS);
    m.payload = g_payload;
    rnd_fill(g_payload, 64);
    m.payload_len = 50;
    m.u.rts.size = 100;
    REJECT("RTS inline payload 50 for size 100", 0);
    m.u.rts.size = 49;
    REJECT("RTS inline payload 50 for size 49", 0);
    m.u.rts.size = 0;
    REJECT("RTS inline payload 50 for size 0", 0);
    m.u.rts.size = 50 + (1ull << 32);
    REJECT("RTS inline payload 50 for size 2^32+50", 0);
    m.u.rts.size = 50;
    ACCEPT("RTS inline payload 50 for size 50");
    m.payload_len = 0;
    m.payload = NULL;
    m.u.rts.size = 1ull << 40;
    ACCEPT("RTS without payload");

    /* DATA: chunk 0. */
    random_msg(&m, TCPX_MSG_DATA);
    m.u.data.chunk = 0;
    REJECT("DATA chunk 0", 0);
    m.u.data.chunk = 1;
    ACCEPT("DATA chunk 1");

    /* CTS: max chunk 0. */
    random_msg(&m, TCPX_MSG_CTS);
    m.u.cts.max_chunk = 0;
    REJECT("CTS max chunk 0", 0);
    m.u.cts.max_chunk = 1;
    ACCEPT("CTS max chunk 1");

    /* NACK: status must be an error. */
    const int32_t nonneg[] = {0, 1, 2, 0x7FFFFFFF};
    random_msg(&m, TCPX_MSG_NACK);
    for (size_t i = 0; i < 4; i++) {
        m.u.nack.status = nonneg[i];
        REJECT("NACK status", (long)nonneg[i]);
    }
    m.u.nack.status = (int32_t)0x80000000u;
    ACCEPT("NACK INT32_MIN");
    m.u.nack.status = TCPX_ERR_PEER;
    ACCEPT("NACK TCPX_ERR_PEER");

    /* DHELLO carries no payload. */
    random_msg(&m, TCPX_MSG_DHELLO);
    m.payload = g_payload;
    m.payload_len = 1 + (uint32_t)rnd_below(100);
    rnd_fill(g_payload, m.payload_len);
    REJECT("DHELLO with payload", (long)m.payload_len);

    /* HELLO: role, channels, name. */
    const uint8_t roles[] = {0, 3, 0x81, 255};
    random_msg(&m, TCPX_MSG_HELLO);
    for (size_t i = 0; i < sizeof roles; i++) {
        m.u.hello.role = roles[i];
        REJECT("HELLO role", roles[i]);
    }
    m.u.hello.role = TCPX_HELLO_REPLY;
    const uint16_t chans[] = {0, TCPX_MAX_CHANNELS + 1, 0x100, 0xFFFF};
    for (size_t i = 0; i < 4; i++) {
        m.u.hello.channels = chans[i];
        REJECT("HELLO channels", chans[i]);
    }
    m.u.hello.channels = 1;
    ACCEPT("HELLO channels 1");
    m.u.hello.channels = TCPX_MAX_CHANNELS;
    ACCEPT("HELLO channels 64");
    m.u.hello.name[0] = '\0';
    REJECT("HELLO empty name", 0);
    memset(m.u.hello.name, 'n', TCPX_NAME_MAX - 1);
    m.u.hello.name[TCPX_NAME_MAX - 1] = '\0';
    ACCEPT("HELLO 63-byte name");
    /* Unterminated: the encoder always terminates, so forge the bytes. */
    len = tcpx_msg_encode(&m, g_buf, sizeof g_buf);
    size_t name_off = TCPX_PROTO_HDR_COMMON + 1 + 2 + 8 + 8;
    CHECK(memcmp(g_buf + name_off, m.u.hello.name, TCPX_NAME_MAX) == 0, "HELLO name offset");
    g_buf[name_off + TCPX_NAME_MAX - 1] = 'n';
    tcpx_msg_seal(g_buf, len);
    expect_reject(g_buf, len, "HELLO unterminated name", 0);
    m.u.hello.name[0] = 'n';
    m.u.hello.max_chunk = 0;
    REJECT("HELLO max chunk 0", 0);
    m.u.hello.max_chunk = 1;
    m.u.hello.unx_max = 0;
    REJECT("HELLO budget of 0 unmatched sends", 0);
    m.u.hello.unx_max = 1;
    m.u.hello.unx_max_bytes = TCPX_INLINE_MAX - 1;
    REJECT("HELLO inline budget below one inline send", (long)m.u.hello.unx_max_bytes);
    m.u.hello.unx_max_bytes = TCPX_INLINE_MAX;
    ACCEPT("HELLO smallest budget");
    const uint8_t hflags[] = {2, 3, 0x80, 0xFF};
    for (size_t i = 0; i < sizeof hflags; i++) {
        m.u.hello.flags = hflags[i];
        REJECT("HELLO unknown flags", hflags[i]);
    }
    m.u.hello.flags = TCPX_HELLO_DATA_DIGEST;
    ACCEPT("HELLO data digest flag");

    /* WRITE / READ_REQ: pieces must be whole blocks inside the list, LAST
     * exactly on the last piece, NOTIF only there, known flags, bounded. */
    for (int t = 0; t < 2; t++) {
        uint8_t type = t ? TCPX_MSG_READ_REQ : TCPX_MSG_WRITE;
        const char *nm = tcpx_msg_name(type);
        random_msg(&m, type);
        m.payload = g_payload;
        rnd_fill(g_payload, 40 * TCPX_WIRE_BLOCK_SIZE);
#define LIST_SET(nb, fi, cnt, fl)                                              \
    do {                                                                       \
        if (type == TCPX_MSG_WRITE) {                                          \
            m.u.write.nblocks = (nb), m.u.write.first = (fi), m.u.write.flags = (fl); \
        } else {                                                               \
            m.u.read_req.nblocks = (nb), m.u.read_req.first = (fi), m.u.read_req.flags = (fl); \
        }                                                                      \
        m.payload_len = (cnt) * TCPX_WIRE_BLOCK_SIZE;                          \
    } while (0)
        LIST_SET(10, 0, 10, TCPX_LIST_LAST);
        ACCEPT(nm);
        LIST_SET(10, 0, 10, TCPX_LIST_LAST | TCPX_LIST_NOTIF);
        ACCEPT(nm);
        LIST_SET(0, 0, 0, TCPX_LIST_LAST);
        ACCEPT(nm);
        LIST_SET(40, 30, 10, TCPX_LIST_LAST);
        ACCEPT(nm);
        LIST_SET(40, 10, 10, 0);
        ACCEPT(nm);
        LIST_SET(10, 0, 10, 0);
        REJECT("list: last piece without LAST", 0);
        LIST_SET(40, 10, 10, TCPX_LIST_LAST);
        REJECT("list: LAST on a middle piece", 0);
        LIST_SET(40, 10, 10, TCPX_LIST_NOTIF);
        REJECT("list: NOTIF on a middle piece", 0);
        LIST_SET(10, 5, 10, TCPX_LIST_LAST);
        REJECT("list: piece runs past the list", 0);
        LIST_SET(10, 0xFFFFFFF0u, 10, TCPX_LIST_LAST);
        REJECT("list: first + count overflows 32 bits", 0);
        LIST_SET(TCPX_LIST_MAX_BLOCKS + 1, TCPX_LIST_MAX_BLOCKS - 9, 10, 0);
        REJECT("list: too many blocks", 0);
        LIST_SET(10, 0, 10, TCPX_LIST_LAST | 8);
        REJECT("list: unknown flag", 0);
        LIST_SET(10, 0, 10, TCPX_LIST_LAST);
        m.payload_len -= 1;
        REJECT("list: payload not whole blocks", 0);
#undef LIST_SET
    }
    random_msg(&m, TCPX_MSG_WRITE);
    m.u.write.chunk = 0;
    REJECT("WRITE chunk 0", 0);

    /* INLINE WRITE: one piece, its blocks and then exactly `total` bytes,
     * at most TCPX_INLINE_MAX of them; never on a READ_REQ. */
    random_msg(&m, TCPX_MSG_WRITE);
    m.payload = g_payload;
    rnd_fill(g_payload, sizeof g_payload);
    m.u.write.nblocks = 3;
    m.u.write.first = 0;
    m.u.write.flags = TCPX_LIST_LAST | TCPX_LIST_INLINE;
    m.u.write.total = 4000;
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + 4000;
    ACCEPT("INLINE WRITE");
    m.u.write.flags |= TCPX_LIST_NOTIF;
    ACCEPT("INLINE WRITE with NOTIF");
    m.u.write.total = TCPX_INLINE_MAX;
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + TCPX_INLINE_MAX;
    ACCEPT("INLINE WRITE of TCPX_INLINE_MAX bytes");
    m.u.write.total = TCPX_INLINE_MAX + 1;
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + TCPX_INLINE_MAX + 1;
    REJECT("INLINE WRITE above TCPX_INLINE_MAX", 0);
    m.u.write.total = 4000;
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + 3999;
    REJECT("INLINE WRITE one byte short", 0);
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + 4001;
    REJECT("INLINE WRITE one byte long", 0);
    m.payload_len = 3 * TCPX_WIRE_BLOCK_SIZE + 4000;
    m.u.write.nblocks = 4;
    m.u.write.first = 1;
    REJECT("INLINE WRITE not the first piece", 0);
    m.u.write.nblocks = 3;
    m.u.write.first = 0;
    m.u.write.flags = TCPX_LIST_INLINE;
    REJECT("INLINE WRITE without LAST", 0);
    m.u.write.total = UINT64_MAX;
    m.u.write.flags = TCPX_LIST_LAST | TCPX_LIST_INLINE;
    REJECT("INLINE WRITE of 2^64-1 bytes", 0);
    random_msg(&m, TCPX_MSG_READ_REQ);
    m.payload = g_payload;
    m.u.read_req.nblocks = 2;
    m.u.read_req.first = 0;
    m.u.read_req.flags = TCPX_LIST_LAST | TCPX_LIST_INLINE;
    m.payload_len = 2 * TCPX_WIRE_BLOCK_SIZE;
    REJECT("READ_REQ with INLINE", 0);

    /* READ_DATA: chunk 0, payload. */
    random_msg(&m, TCPX_MSG_READ_DATA);
    m.u.read_data.chunk = 0;
    REJECT("READ_DATA chunk 0", 0);
    m.u.read_data.chunk = 1;
    ACCEPT("READ_DATA chunk 1");
    m.payload = g_payload;
    m.payload_len = 1;
    REJECT("READ_DATA with payload", 0);
    /* INLINE: the payload is exactly `total` bytes, at most TCPX_INLINE_MAX. */
    m.u.read_data.flags = TCPX_READ_INLINE;
    m.u.read_data.total = 1;
    ACCEPT("READ_DATA inline 1 byte");
    m.u.read_data.total = TCPX_INLINE_MAX;
    m.payload_len = TCPX_INLINE_MAX;
    ACCEPT("READ_DATA inline TCPX_INLINE_MAX bytes");
    m.u.read_data.total = 0;
    m.payload_len = 0;
    ACCEPT("READ_DATA inline, empty");
    m.u.read_data.total = TCPX_INLINE_MAX + 1;
    m.payload_len = TCPX_INLINE_MAX + 1;
    REJECT("READ_DATA inline above TCPX_INLINE_MAX", 0);
    m.u.read_data.total = 100;
    m.payload_len = 99;
    REJECT("READ_DATA inline one byte short", 0);
    m.payload_len = 100;
    m.u.read_data.flags = 2;
    REJECT("READ_DATA unknown flag", 0);

    /* NOTIF: flags, length. */
    random_msg(&m, TCPX_MSG_NOTIF);
    m.payload = g_payload;
    rnd_fill(g_payload, TCPX_NOTIF_MAX + 1);
    m.payload_len = TCPX_NOTIF_MAX;
    ACCEPT("NOTIF of TCPX_NOTIF_MAX bytes");
    m.payload_len = 0;
    ACCEPT("empty NOTIF");
    m.payload_len = TCPX_NOTIF_MAX + 1;
    REJECT("NOTIF too long", 0);
    m.payload_len = 3;
    m.u.notif.flags = 2;
    REJECT("NOTIF unknown flag", 0);
#undef REJECT
#undef ACCEPT
}

static void test_encode_invalid(void)
{
    tcpx_msg m;
    random_msg(&m, TCPX_MSG_ACK);
    const uint8_t ops[] = {0, TCPX_MSG_MAX_, 200};
    for (size_t i = 0; i < sizeof ops; i++) {
        m.type = ops[i];
        CHECK(tcpx_msg_encode(&m, g_buf, sizeof g_buf) == 0, "encode of op %u returned non-zero", ops[i]);
    }
    /* Payload larger than the buffer. */
    random_msg(&m, TCPX_MSG_RTS);
    m.payload = g_payload;
    m.payload_len = TCPX_INLINE_MAX;
    m.u.rts.size = TCPX_INLINE_MAX;
    CHECK(tcpx_msg_encode(&m, g_buf, expected_hdr(TCPX_MSG_RTS) + TCPX_INLINE_MAX - 1) == 0, "RTS payload does not fit");
    CHECK(tcpx_msg_encode(&m, g_buf, expected_hdr(TCPX_MSG_RTS) + TCPX_INLINE_MAX) == expected_hdr(TCPX_MSG_RTS) + TCPX_INLINE_MAX, "RTS payload fits exactly");
}

static void test_op_names(void)
{
    const char *want[] = {"?",      "HELLO", "DHELLO", "RTS",      "CTS",       "DATA", "ACK",
                          "NACK",   "CANCEL", "WRITE", "READ_REQ", "READ_DATA", "NOTIF", "KEEPALIVE"};
    CHECK(sizeof want / sizeof want[0] == TCPX_MSG_MAX_, "name table covers %d types", TCPX_MSG_MAX_);
    for (unsigned op = 0; op < TCPX_MSG_MAX_; op++)
        CHECK(strcmp(tcpx_msg_name((uint8_t)op), want[op]) == 0, "op name %u = %s", op, tcpx_msg_name((uint8_t)op));
    CHECK(strcmp(tcpx_msg_name(TCPX_MSG_MAX_), "?") == 0 && strcmp(tcpx_msg_name(255), "?") == 0, "unknown op names");
}

int main(void)
{
    const char *s = getenv("TCPX_TEST_SEED");
    g_seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    g_rng = g_seed;
    printf("test_proto: seed=%" PRIu64 " (TCPX_TEST_SEED reproduces)\n", g_seed);

    for (uint8_t op = TCPX_MSG_HELLO; op < TCPX_MSG_MAX_; op++) {
        for (int i = 0; i < 300; i++) test_roundtrip(op, i < 3);
        for (int i = 0; i < 3; i++) test_header_errors(op);
    }
    /* Largest messages the protocol sends must fit TCPX_CTRL_MSG_MAX. */
    tcpx_msg m;
    random_msg(&m, TCPX_MSG_RTS);
    m.payload = g_payload;
    m.payload_len = TCPX_INLINE_MAX;
    m.u.rts.size = TCPX_INLINE_MAX;
    rnd_fill(g_payload, TCPX_INLINE_MAX);
    CHECK(encode_checked(&m) == expected_hdr(TCPX_MSG_RTS) + TCPX_INLINE_MAX, "largest inline RTS");
    CHECK(expected_hdr(TCPX_MSG_HELLO) + tcpx_conninfo_size(TCPX_MAX_CHANNELS) <= TCPX_CTRL_MSG_MAX,
          "a HELLO with a 64-channel conninfo does not fit TCPX_CTRL_MSG_MAX");
    CHECK(expected_hdr(TCPX_MSG_WRITE) + TCPX_BLOCKS_PER_MSG * TCPX_WIRE_BLOCK_SIZE <= TCPX_CTRL_MSG_MAX,
          "a full WRITE piece does not fit TCPX_CTRL_MSG_MAX");
    CHECK(expected_hdr(TCPX_MSG_NOTIF) + TCPX_NOTIF_MAX <= TCPX_CTRL_MSG_MAX, "the largest NOTIF does not fit");

    /* Blocks round trip through the payload codec. */
    uint8_t blk[3 * TCPX_WIRE_BLOCK_SIZE];
    tcpx_wire_block want[3];
    for (uint32_t i = 0; i < 3; i++) {
        want[i] = (tcpx_wire_block){rnd(), rnd(), rnd(), rnd()};
        tcpx_wire_block_put(blk, i, &want[i]);
    }
    random_msg(&m, TCPX_MSG_WRITE);
    m.payload = blk;
    m.payload_len = sizeof blk;
    for (uint32_t i = 0; i < 3; i++) {
        tcpx_wire_block got = tcpx_msg_block(&m, i);
        CHECK(memcmp(&got, &want[i], sizeof got) == 0, "block %u round trip", i);
    }

    test_field_errors();
    test_encode_invalid();
    test_op_names();

    if (g_failures) {
        printf("test_proto: %d check(s) FAILED (seed=%" PRIu64 ")\n", g_failures, g_seed);
        return 1;
    }
    printf("test_proto: OK\n");
    return 0;
}
