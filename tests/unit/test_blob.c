/* test_blob.c - connection-info and memory-descriptor codecs (src/core/blob.c).
 *
 * Round trips with random contents, and rejection (TCPX_ERR_PROTOCOL, with a
 * tcpx_last_error() sentence) of every truncation, every extension, every
 * single-bit flip, and of blobs forged with a *correct* checksum whose fields
 * are out of range, so that the field checks themselves are exercised.
 * Decoders are always handed heap copies of exactly the length they are told,
 * so an overread is caught by ASan.
 *
 * Seed: TCPX_TEST_SEED=<n> reproduces a run; the seed is printed first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/blob.h"
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

/* A call that must fail with `want` and leave an error sentence. */
#define EXPECT_ERR(call, want, ...)                                                            \
    do {                                                                                       \
        tcpx_clear_error();                                                                    \
        tcpx_status st_ = (call);                                                              \
        CHECK(st_ == (want), "%s -> %s, expected %s: ", #call, tcpx_strerror(st_),             \
              tcpx_strerror(want));                                                            \
        if (st_ == (want)) CHECK(tcpx_last_error()[0] != '\0', "%s: empty last_error", #call); \
        if (st_ != (want)) {                                                                   \
            fprintf(stderr, "     case: ");                                                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
        }                                                                                      \
    } while (0)

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

/* Random bytes, never all zero. */
static void rnd_fill(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd();
    if (n) { /* at least one bit set (two statements: the order of rng calls is fixed) */
        size_t at = rnd_below(n);
        b[at] |= (uint8_t)(1u << rnd_below(8));
    }
}

static void *dup_exact(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (!d) abort();
    if (n) memcpy(d, p, n);
    return d;
}

/* ------------------------------------------------------------- conninfo */

static void random_conninfo(tcpx_conninfo *ci, unsigned channels)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-_./";
    rnd_fill(ci, sizeof *ci); /* garbage everywhere, then set the fields */
    ci->channels = (uint16_t)channels;
    ci->token = rnd_nonzero();
    size_t n = 1 + rnd_below(TCPX_TRANSPORT_NAME_MAX - 1); /* 1..31 */
    for (size_t i = 0; i < n; i++) ci->transport[i] = alphabet[rnd_below(sizeof alphabet - 1)];
    ci->transport[n] = '\0';
    for (unsigned i = 0; i <= channels; i++) rnd_fill(ci->handles[i], TCPX_NET_HANDLE_SIZE);
}

static int conninfo_equal(const tcpx_conninfo *a, const tcpx_conninfo *b)
{
    if (a->channels != b->channels || a->token != b->token) return 0;
    if (strcmp(a->transport, b->transport) != 0) return 0;
    for (unsigned i = 0; i <= a->channels; i++)
        if (memcmp(a->handles[i], b->handles[i], TCPX_NET_HANDLE_SIZE) != 0) return 0;
    return 1;
}

/* Build a conninfo blob by hand with any field values and `nhandles` random
 * handles, ending in a correct CRC-32C. Returns a heap buffer of *len bytes. */
typedef struct forge_ci {
    uint32_t magic;
    uint8_t version, kind;
    uint16_t channels;
    uint32_t handle_size;
    unsigned nhandles;
    int unterminated_name;
} forge_ci;

static forge_ci forge_ci_default(unsigned channels)
{
    return (forge_ci){TCPX_BLOB_MAGIC, TCPX_BLOB_VERSION, TCPX_BLOB_KIND_CONNINFO, (uint16_t)channels,
                      TCPX_NET_HANDLE_SIZE, channels + 1, 0};
}

static uint8_t *forge_conninfo(const forge_ci *f, size_t *len)
{
    size_t n = 4 + 1 + 1 + 2 + 8 + 4 + TCPX_TRANSPORT_NAME_MAX + (size_t)f->nhandles * TCPX_NET_HANDLE_SIZE + 4;
    uint8_t *buf = malloc(n);
    if (!buf) abort();
    tcpx_wbuf w = tcpx_wbuf_make(buf, n);
    tcpx_w_u32(&w, f->magic);
    tcpx_w_u8(&w, f->version);
    tcpx_w_u8(&w, f->kind);
    tcpx_w_u16(&w, f->channels);
    tcpx_w_u64(&w, rnd_nonzero());
    tcpx_w_u32(&w, f->handle_size);
    char name[TCPX_TRANSPORT_NAME_MAX];
    memset(name, 0, sizeof name);
    if (f->unterminated_name) memset(name, 'x', sizeof name);
    else memcpy(name, "socket", 6);
    tcpx_w_bytes(&w, name, sizeof name);
    for (unsigned i = 0; i < f->nhandles; i++) {
        uint8_t h[TCPX_NET_HANDLE_SIZE];
        rnd_fill(h, sizeof h);
        tcpx_w_bytes(&w, h, sizeof h);
    }
    tcpx_w_u32(&w, tcpx_crc32c(buf, w.len));
    if (w.bad || w.len != n) abort();
    *len = n;
    return buf;
}

static void recrc(uint8_t *buf, size_t len)
{
    uint32_t c = tcpx_crc32c(buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void test_crc_vector(void)
{
    CHECK(tcpx_crc32c("123456789", 9) == 0xE3069283u, "crc32c check value 0x%08x", tcpx_crc32c("123456789", 9));
}

/* Every truncation, an extension, every bit flip: all TCPX_ERR_PROTOCOL. */
static void reject_corruptions(const uint8_t *blob, size_t len, int is_conninfo, int all_bits)
{
    tcpx_conninfo ci;
    tcpx_memdesc md;
#define DECODE(p, n) (is_conninfo ? tcpx_conninfo_decode((p), (n), &ci) : tcpx_memdesc_deserialize((p), (n), &md))
    for (size_t t = 0; t < len; t++) {
        uint8_t *c = dup_exact(blob, t);
        EXPECT_ERR(DECODE(c, t), TCPX_ERR_PROTOCOL, "truncated to %zu of %zu", t, len);
        free(c);
    }
    for (size_t extra = 1; extra <= 3; extra++) {
        uint8_t *c = malloc(len + extra);
        memcpy(c, blob, len);
        rnd_fill(c + len, extra);
        EXPECT_ERR(DECODE(c, len + extra), TCPX_ERR_PROTOCOL, "extended by %zu", extra);
        free(c);
    }
    /* The same lengths again with a checksum that matches the new length, so
     * that the length checks (not the checksum) must catch them. */
    for (size_t t = 14; t <= len + 8; t++) {
        if (t == len) continue;
        uint8_t *c = malloc(t);
        memcpy(c, blob, t < len ? t : len);
        if (t > len) rnd_fill(c + len, t - len);
        recrc(c, t);
        EXPECT_ERR(DECODE(c, t), TCPX_ERR_PROTOCOL, "length %zu of %zu with a matching checksum", t, len);
        free(c);
        if (t + 16 < len && t > 64) t += 61; /* long blobs: sample the truncations */
    }
    uint8_t *c = dup_exact(blob, len);
    for (size_t i = 0; i < len; i++) {
        unsigned first = all_bits ? 0 : (unsigned)rnd_below(8), last = all_bits ? 8 : first + 1;
        for (unsigned b = first; b < last; b++) {
            c[i] ^= (uint8_t)(1u << b);
            EXPECT_ERR(DECODE(c, len), TCPX_ERR_PROTOCOL, "bit %u of byte %zu flipped (len %zu)", b, i, len);
            c[i] ^= (uint8_t)(1u << b);
        }
    }
    CHECK(memcmp(c, blob, len) == 0, "flip/unflip left the copy changed");
    CHECK(DECODE(c, len) == TCPX_OK, "pristine copy no longer decodes: %s", tcpx_last_error());
    free(c);
#undef DECODE
}

static void test_conninfo_roundtrip(unsigned channels)
{
    static tcpx_conninfo in, out;
    random_conninfo(&in, channels);
    size_t need = tcpx_conninfo_size(channels);
    CHECK(need == 56 + (channels + 1) * (size_t)TCPX_NET_HANDLE_SIZE, "conninfo_size(%u) = %zu", channels, need);

    uint8_t *buf = malloc(need + 64);
    memset(buf, 0xA5, need + 64);
    size_t len = 0;
    tcpx_status st = tcpx_conninfo_encode(&in, buf, need + 64, &len);
    CHECK(st == TCPX_OK, "encode %u channels: %s %s", channels, tcpx_strerror(st), tcpx_last_error());
    CHECK(len == need, "encoded %zu bytes, expected %zu", len, need);
    for (size_t i = need; i < need + 64; i++) CHECK(buf[i] == 0xA5, "encode wrote past its length at %zu", i);

    /* Layout as blob.h documents it. */
    CHECK(memcmp(buf, "TCPX", 4) == 0, "magic bytes");
    CHECK(buf[4] == TCPX_BLOB_VERSION && buf[5] == TCPX_BLOB_KIND_CONNINFO, "version/kind bytes %u %u", buf[4], buf[5]);
    CHECK((buf[6] | buf[7] << 8) == (int)channels, "channels field");
    CHECK(get_le32(buf + len - 4) == tcpx_crc32c(buf, len - 4), "trailing crc32c");

    uint8_t *exact = dup_exact(buf, len);
    memset(&out, 0x5A, sizeof out);
    st = tcpx_conninfo_decode(exact, len, &out);
    CHECK(st == TCPX_OK, "decode %u channels: %s %s", channels, tcpx_strerror(st), tcpx_last_error());
    CHECK(conninfo_equal(&in, &out), "round trip of %u channels differs", channels);

    /* Exact capacity works, one byte less does not. */
    uint8_t *tight = malloc(need);
    CHECK(tcpx_conninfo_encode(&in, tight, need, &len) == TCPX_OK && len == need, "encode into exact cap");
    CHECK(memcmp(tight, buf, need) == 0, "encoding not deterministic");
    EXPECT_ERR(tcpx_conninfo_encode(&in, tight, need - 1, &len), TCPX_ERR_INVALID, "cap need-1");
    EXPECT_ERR(tcpx_conninfo_encode(&in, tight, 0, &len), TCPX_ERR_INVALID, "cap 0");
    free(tight);

    /* Channels 1 and 2 are cheap: every bit. 8 and 64: every bit too (CRC of 8 KiB x 67k is ~1 s). */
    reject_corruptions(exact, len, 1, 1);

    /* A memdesc decoder must refuse a conninfo blob. */
    tcpx_memdesc md;
    EXPECT_ERR(tcpx_memdesc_deserialize(exact, len, &md), TCPX_ERR_PROTOCOL, "conninfo fed to memdesc");
    free(exact);
    free(buf);
}

static void test_conninfo_encode_invalid(void)
{
    static tcpx_conninfo ci;
    uint8_t buf[256];
    size_t len;
    random_conninfo(&ci, 1);
    ci.channels = 0;
    EXPECT_ERR(tcpx_conninfo_encode(&ci, buf, sizeof buf, &len), TCPX_ERR_INVALID, "encode channels 0");
    ci.channels = TCPX_MAX_CHANNELS + 1;
    static uint8_t big[16384];
    EXPECT_ERR(tcpx_conninfo_encode(&ci, big, sizeof big, &len), TCPX_ERR_INVALID, "encode channels 65");
    EXPECT_ERR(tcpx_conninfo_decode(NULL, 10, &ci), TCPX_ERR_INVALID, "decode NULL");
}

static void test_conninfo_forged(void)
{
    size_t len;
    uint8_t *b;
    tcpx_conninfo ci;

    /* Positive control: the forger makes blobs the decoder accepts. */
    for (unsigned ch = 1; ch <= TCPX_MAX_CHANNELS; ch++) {
        forge_ci f = forge_ci_default(ch);
        b = forge_conninfo(&f, &len);
        tcpx_status st = tcpx_conninfo_decode(b, len, &ci);
        CHECK(st == TCPX_OK && ci.channels == ch && strcmp(ci.transport, "socket") == 0,
              "forged valid blob (%u channels) rejected: %s", ch, tcpx_last_error());
        free(b);
    }

    struct {
        const char *what;
        forge_ci f;
    } bad[] = {
        {"channels 0", forge_ci_default(0)},
        {"channels 65", forge_ci_default(65)},
        {"channels 0xFFFF", forge_ci_default(0xFFFF)},
        {"channels 2, handles of 8", {TCPX_BLOB_MAGIC, 1, 1, 2, 128, 9, 0}},
        {"channels 8, handles of 2", {TCPX_BLOB_MAGIC, 1, 1, 8, 128, 3, 0}},
        {"channels 4, handles of 4 (no control)", {TCPX_BLOB_MAGIC, 1, 1, 4, 128, 4, 0}},
        {"wrong magic", {0x58504355u, 1, 1, 4, 128, 5, 0}},
        {"byte-swapped magic", {0x54435058u, 1, 1, 4, 128, 5, 0}},
        {"version 0", {TCPX_BLOB_MAGIC, 0, 1, 4, 128, 5, 0}},
        {"version 2", {TCPX_BLOB_MAGIC, 2, 1, 4, 128, 5, 0}},
        {"version 255", {TCPX_BLOB_MAGIC, 255, 1, 4, 128, 5, 0}},
        {"kind 0", {TCPX_BLOB_MAGIC, 1, 0, 4, 128, 5, 0}},
        {"kind memdesc", {TCPX_BLOB_MAGIC, 1, TCPX_BLOB_KIND_MEMDESC, 4, 128, 5, 0}},
        {"kind 255", {TCPX_BLOB_MAGIC, 1, 255, 4, 128, 5, 0}},
        {"handle size 127", {TCPX_BLOB_MAGIC, 1, 1, 4, 127, 5, 0}},
        {"handle size 0", {TCPX_BLOB_MAGIC, 1, 1, 4, 0, 5, 0}},
        {"handle size 256", {TCPX_BLOB_MAGIC, 1, 1, 4, 256, 5, 0}},
        {"unterminated transport name", {TCPX_BLOB_MAGIC, 1, 1, 4, 128, 5, 1}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = forge_conninfo(&bad[i].f, &len);
        EXPECT_ERR(tcpx_conninfo_decode(b, len, &ci), TCPX_ERR_PROTOCOL, "forged: %s", bad[i].what);
        free(b);
    }

    /* The checksum itself: a valid blob with a wrong CRC, and with the CRC
     * stored big-endian. */
    forge_ci f = forge_ci_default(3);
    b = forge_conninfo(&f, &len);
    uint32_t c = get_le32(b + len - 4);
    b[len - 4] ^= 0x80;
    EXPECT_ERR(tcpx_conninfo_decode(b, len, &ci), TCPX_ERR_PROTOCOL, "crc bit flipped");
    for (int k = 0; k < 4; k++) b[len - 4 + k] = (uint8_t)(c >> (24 - 8 * k));
    if (((c >> 24) | ((c >> 8) & 0xFF00) | ((c << 8) & 0xFF0000) | (c << 24)) != c)
        EXPECT_ERR(tcpx_conninfo_decode(b, len, &ci), TCPX_ERR_PROTOCOL, "crc big-endian");
    recrc(b, len);
    CHECK(tcpx_conninfo_decode(b, len, &ci) == TCPX_OK, "recrc'd blob rejected: %s", tcpx_last_error());
    free(b);
}

/* ------------------------------------------------------------- memdesc */

static void random_memdesc(tcpx_memdesc *d, tcpx_mem_kind kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->size = 1 + rnd_below(rnd_below(2) ? (1ull << 40) : UINT64_MAX - 1);
    d->addr = rnd_below(UINT64_MAX - d->size + 1); /* addr + size <= 2^64 - 1 */
    d->id = rnd_nonzero();
    d->key = rnd_nonzero();
}

static uint8_t *forge_memdesc(uint32_t magic, uint8_t version, uint8_t kind, uint8_t mem_kind, uint8_t pad,
                              uint64_t addr, uint64_t size, uint64_t id, uint32_t reserved)
{
    uint8_t *buf = malloc(TCPX_MEMDESC_BLOB_SIZE);
    tcpx_wbuf w = tcpx_wbuf_make(buf, TCPX_MEMDESC_BLOB_SIZE);
    tcpx_w_u32(&w, magic);
    tcpx_w_u8(&w, version);
    tcpx_w_u8(&w, kind);
    tcpx_w_u8(&w, mem_kind);
    tcpx_w_u8(&w, pad);
    tcpx_w_u64(&w, addr);
    tcpx_w_u64(&w, size);
    tcpx_w_u64(&w, id);
    tcpx_w_u64(&w, rnd_nonzero());
    tcpx_w_u32(&w, reserved);
    tcpx_w_u32(&w, tcpx_crc32c(buf, w.len));
    if (w.bad || w.len != TCPX_MEMDESC_BLOB_SIZE) abort();
    return buf;
}

static void test_memdesc_roundtrip(tcpx_mem_kind kind, int corruptions)
{
    tcpx_memdesc in, out;
    random_memdesc(&in, kind);
    uint8_t buf[TCPX_MEMDESC_BLOB_SIZE + 16];
    memset(buf, 0xA5, sizeof buf);
    size_t len = 0;
    tcpx_status st = tcpx_memdesc_serialize(&in, buf, sizeof buf, &len);
    CHECK(st == TCPX_OK && len == TCPX_MEMDESC_BLOB_SIZE, "serialize: %s len %zu", tcpx_strerror(st), len);
    for (size_t i = TCPX_MEMDESC_BLOB_SIZE; i < sizeof buf; i++) CHECK(buf[i] == 0xA5, "serialize wrote past 48");
    CHECK(memcmp(buf, "TCPX", 4) == 0 && buf[4] == 1 && buf[5] == TCPX_BLOB_KIND_MEMDESC && buf[6] == (uint8_t)kind &&
              buf[7] == 0,
          "memdesc header bytes");
    CHECK(get_le32(buf + 44) == tcpx_crc32c(buf, 44), "memdesc crc");

    uint8_t *exact = dup_exact(buf, len);
    memset(&out, 0x5A, sizeof out);
    st = tcpx_memdesc_deserialize(exact, len, &out);
    CHECK(st == TCPX_OK, "deserialize: %s %s", tcpx_strerror(st), tcpx_last_error());
    CHECK(out.addr == in.addr && out.size == in.size && out.kind == in.kind && out.id == in.id && out.key == in.key,
          "memdesc round trip differs (addr %" PRIx64 "/%" PRIx64 " size %" PRIu64 "/%" PRIu64 ")", in.addr, out.addr,
          in.size, out.size);

    uint8_t small[TCPX_MEMDESC_BLOB_SIZE];
    CHECK(tcpx_memdesc_serialize(&in, small, sizeof small, &len) == TCPX_OK, "serialize into exact cap");
    EXPECT_ERR(tcpx_memdesc_serialize(&in, small, TCPX_MEMDESC_BLOB_SIZE - 1, &len), TCPX_ERR_INVALID, "cap 47");
    EXPECT_ERR(tcpx_memdesc_serialize(&in, small, 0, &len), TCPX_ERR_INVALID, "cap 0");

    if (corruptions) {
        reject_corruptions(exact, TCPX_MEMDESC_BLOB_SIZE, 0, 1);
        tcpx_conninfo ci;
        EXPECT_ERR(tcpx_conninfo_decode(exact, TCPX_MEMDESC_BLOB_SIZE, &ci), TCPX_ERR_PROTOCOL, "memdesc as conninfo");
    }
    free(exact);
}

static void test_memdesc_forged(void)
{
    tcpx_memdesc d;
    uint64_t id = rnd_nonzero(), addr = rnd_below(1ull << 47), size = 1 + rnd_below(1ull << 30);
    const uint32_t M = TCPX_BLOB_MAGIC;
    const uint8_t K = TCPX_BLOB_KIND_MEMDESC;
    uint8_t *b;

    /* Positive controls, including the edges that must be accepted. */
    struct {
        const char *what;
        uint8_t mk;
        uint64_t addr, size;
    } good[] = {
        {"host", 0, addr, size},
        {"cuda", 1, addr, size},
        {"addr 0", 0, 0, size},
        {"size 1", 1, addr, 1},
        {"ends at 2^64-1", 0, UINT64_MAX - 100, 100},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        b = forge_memdesc(M, 1, K, good[i].mk, 0, good[i].addr, good[i].size, id, 0);
        tcpx_status st = tcpx_memdesc_deserialize(b, TCPX_MEMDESC_BLOB_SIZE, &d);
        CHECK(st == TCPX_OK && d.addr == good[i].addr && d.size == good[i].size && d.id == id &&
                  (int)d.kind == good[i].mk,
              "forged valid memdesc (%s) rejected: %s", good[i].what, tcpx_last_error());
        free(b);
    }

    struct {
        const char *what;
        uint8_t *blob;
    } bad[] = {
        {"id 0", forge_memdesc(M, 1, K, 0, 0, addr, size, 0, 0)},
        {"size 0", forge_memdesc(M, 1, K, 0, 0, addr, 0, id, 0)},
        {"range wraps", forge_memdesc(M, 1, K, 0, 0, UINT64_MAX - 10, 20, id, 0)},
        {"range wraps far", forge_memdesc(M, 1, K, 1, 0, UINT64_MAX, UINT64_MAX, id, 0)},
        {"mem kind 2", forge_memdesc(M, 1, K, 2, 0, addr, size, id, 0)},
        {"mem kind 255", forge_memdesc(M, 1, K, 255, 0, addr, size, id, 0)},
        {"pad byte set", forge_memdesc(M, 1, K, 0, 1, addr, size, id, 0)},
        {"pad byte 0x80", forge_memdesc(M, 1, K, 1, 0x80, addr, size, id, 0)},
        {"reserved byte 0", forge_memdesc(M, 1, K, 0, 0, addr, size, id, 0x1)},
        {"reserved byte 1", forge_memdesc(M, 1, K, 0, 0, addr, size, id, 0x100)},
        {"reserved byte 2", forge_memdesc(M, 1, K, 0, 0, addr, size, id, 0x10000)},
        {"reserved byte 3", forge_memdesc(M, 1, K, 0, 0, addr, size, id, 0x80000000u)},
        {"wrong magic", forge_memdesc(0x58504353u, 1, K, 0, 0, addr, size, id, 0)},
        {"version 0", forge_memdesc(M, 0, K, 0, 0, addr, size, id, 0)},
        {"version 2", forge_memdesc(M, 2, K, 0, 0, addr, size, id, 0)},
        {"kind conninfo", forge_memdesc(M, 1, TCPX_BLOB_KIND_CONNINFO, 0, 0, addr, size, id, 0)},
        {"kind 0", forge_memdesc(M, 1, 0, 0, 0, addr, size, id, 0)},
        {"kind 3", forge_memdesc(M, 1, 3, 0, 0, addr, size, id, 0)},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_ERR(tcpx_memdesc_deserialize(bad[i].blob, TCPX_MEMDESC_BLOB_SIZE, &d), TCPX_ERR_PROTOCOL, "forged: %s",
                   bad[i].what);
        free(bad[i].blob);
    }

    /* serialize refuses a kind it cannot encode */
    tcpx_memdesc in;
    random_memdesc(&in, TCPX_MEM_HOST);
    uint8_t buf[TCPX_MEMDESC_BLOB_SIZE];
    size_t len;
    in.kind = (tcpx_mem_kind)2;
    EXPECT_ERR(tcpx_memdesc_serialize(&in, buf, sizeof buf, &len), TCPX_ERR_INVALID, "serialize kind 2");
    in.kind = (tcpx_mem_kind)-1;
    EXPECT_ERR(tcpx_memdesc_serialize(&in, buf, sizeof buf, &len), TCPX_ERR_INVALID, "serialize kind -1");
    EXPECT_ERR(tcpx_memdesc_deserialize(NULL, 48, &d), TCPX_ERR_INVALID, "deserialize NULL");
}

int main(void)
{
    const char *s = getenv("TCPX_TEST_SEED");
    g_seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    g_rng = g_seed;
    printf("test_blob: seed=%" PRIu64 " (TCPX_TEST_SEED reproduces)\n", g_seed);

    test_crc_vector();
    const unsigned counts[] = {1, 2, 8, 64};
    for (size_t i = 0; i < 4; i++) test_conninfo_roundtrip(counts[i]);
    for (int i = 0; i < 200; i++) { /* more random contents, no corruption sweep */
        static tcpx_conninfo in, out;
        unsigned ch = 1 + (unsigned)rnd_below(TCPX_MAX_CHANNELS);
        random_conninfo(&in, ch);
        static uint8_t buf[16384];
        size_t len;
        CHECK(tcpx_conninfo_encode(&in, buf, sizeof buf, &len) == TCPX_OK, "encode %u", ch);
        CHECK(tcpx_conninfo_decode(buf, len, &out) == TCPX_OK && conninfo_equal(&in, &out), "round trip %u", ch);
    }
    test_conninfo_encode_invalid();
    test_conninfo_forged();

    test_memdesc_roundtrip(TCPX_MEM_HOST, 1);
    test_memdesc_roundtrip(TCPX_MEM_CUDA, 1);
    for (int i = 0; i < 1000; i++) test_memdesc_roundtrip(i & 1 ? TCPX_MEM_CUDA : TCPX_MEM_HOST, i < 8);
    test_memdesc_forged();

    if (g_failures) {
        printf("test_blob: %d check(s) FAILED (seed=%" PRIu64 ")\n", g_failures, g_seed);
        return 1;
    }
    printf("test_blob: OK\n");
    return 0;
}
