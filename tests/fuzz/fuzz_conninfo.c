/* fuzz_conninfo.c - fuzz harness for tcpx_conninfo_decode().
 *
 * Built two ways (tests/fuzz/CMakeLists.txt): with clang's libFuzzer
 * (fuzz_conninfo) and, with any compiler, linked to replay.c
 * (fuzz_replay_conninfo: deterministic mutations of valid encodings, a ctest).
 *
 * Invariant checked on every input: the decoder either rejects it with
 * TCPX_ERR_PROTOCOL and a message, or accepts a blob whose fields are in
 * range and which re-encodes to an equal blob of the same length. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blob.h"
#include "util/bytes.h"

/* Contract with replay.c and libFuzzer. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap);
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how);
int fuzz_last_accepted; /* 1 when the last input decoded */
/* Fixed-position fields {offset, width} for replay.c's structure-aware mutations. */
const unsigned char fuzz_fields[][2] = {{0, 4}, {4, 1}, {5, 1}, {6, 2}, {8, 8}, {16, 4}, {20, 1}, {51, 1}};
const size_t fuzz_nfields = sizeof fuzz_fields / sizeof fuzz_fields[0];
const char fuzz_target_name[] = "conninfo";
const size_t fuzz_max_input = 9000;

#define FUZZ_ASSERT(c, ...)                                           \
    do {                                                              \
        if (!(c)) {                                                   \
            fprintf(stderr, "fuzz_conninfo: invariant failed: " #c " -- "); \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            abort();                                                  \
        }                                                             \
    } while (0)

static int same(const tcpx_conninfo *a, const tcpx_conninfo *b)
{
    if (a->channels != b->channels || a->token != b->token || strcmp(a->transport, b->transport)) return 0;
    for (unsigned i = 0; i <= a->channels; i++)
        if (memcmp(a->handles[i], b->handles[i], TCPX_NET_HANDLE_SIZE)) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tcpx_conninfo ci, again;
    static uint8_t enc[16384];
    tcpx_status st = tcpx_conninfo_decode(size ? data : (const uint8_t *)"", size, &ci);
    if (st != TCPX_OK) {
        fuzz_last_accepted = 0;
        FUZZ_ASSERT(st == TCPX_ERR_PROTOCOL, "status %d for %zu bytes", (int)st, size);
        FUZZ_ASSERT(tcpx_last_error()[0] != '\0', "no error text");
        return 0;
    }
    FUZZ_ASSERT(ci.channels >= 1 && ci.channels <= TCPX_MAX_CHANNELS, "channels %u", ci.channels);
    FUZZ_ASSERT(size == tcpx_conninfo_size(ci.channels), "size %zu for %u channels", size, ci.channels);
    FUZZ_ASSERT(memchr(ci.transport, '\0', sizeof ci.transport) != NULL, "transport not terminated");
    size_t len = 0;
    st = tcpx_conninfo_encode(&ci, enc, sizeof enc, &len);
    FUZZ_ASSERT(st == TCPX_OK && len == size, "re-encode: status %d, %zu bytes of %zu", (int)st, len, size);
    st = tcpx_conninfo_decode(enc, len, &again);
    FUZZ_ASSERT(st == TCPX_OK && same(&ci, &again), "re-encoded blob decodes differently (status %d)", (int)st);
    /* Everything but the bytes after the transport name's NUL is canonical. */
    size_t name_off = 20, name_end = name_off + TCPX_TRANSPORT_NAME_MAX;
    FUZZ_ASSERT(memcmp(enc, data, name_off) == 0 && memcmp(enc + name_end, data + name_end, size - name_end - 4) == 0,
                "re-encoding changed bytes outside the name");
    if (memcmp(enc + name_off, data + name_off, TCPX_TRANSPORT_NAME_MAX) == 0)
        FUZZ_ASSERT(memcmp(enc, data, size) == 0, "re-encoding of a zero-padded name is not byte-identical");
    fuzz_last_accepted = 1;
    return 0;
}

/* ------------------------------------------------- inputs for replay.c */

static uint64_t sm(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap)
{
    static tcpx_conninfo ci;
    uint64_t s = seed;
    unsigned r = (unsigned)(sm(&s) % 8);
    ci.channels = (uint16_t)(r < 3 ? 1 + r : r < 6 ? 1 + sm(&s) % 8 : 1 + sm(&s) % TCPX_MAX_CHANNELS);
    ci.token = sm(&s) | 1;
    size_t n = 1 + sm(&s) % (TCPX_TRANSPORT_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++) ci.transport[i] = (char)('a' + sm(&s) % 26);
    ci.transport[n] = '\0';
    for (unsigned i = 0; i <= ci.channels; i++)
        for (size_t k = 0; k < TCPX_NET_HANDLE_SIZE; k += 8) {
            uint64_t v = sm(&s);
            memcpy(&ci.handles[i][k], &v, 8);
        }
    size_t len = 0;
    if (tcpx_conninfo_encode(&ci, buf, cap, &len) != TCPX_OK) return 0;
    return len;
}

/* Repair a mutated blob so that it reaches the field checks instead of
 * stopping at the framing: how & 1 first resizes it to the length its
 * channel field implies (new bytes patterned, if cap allows); the trailing
 * CRC-32C is then recomputed. Returns the new length. */
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how)
{
    if (len < 8) return len;
    if (how & 1) {
        size_t want = tcpx_conninfo_size((unsigned)(buf[6] | buf[7] << 8));
        if (want <= cap) {
            for (size_t i = len; i < want; i++) buf[i] = (uint8_t)(0xA5 ^ i);
            len = want;
        }
    }
    uint32_t c = tcpx_crc32c(buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
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
