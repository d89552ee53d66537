/* fuzz_memdesc.c - fuzz harness for tcpx_memdesc_deserialize().
 *
 * Built with libFuzzer (fuzz_memdesc) when the compiler is clang, and always
 * linked to replay.c (fuzz_replay_memdesc, a ctest).
 *
 * Invariant: reject with TCPX_ERR_PROTOCOL and a message, or accept a
 * descriptor with valid fields whose serialization is byte-identical to the
 * input (the format has no free bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blob.h"
#include "util/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap);
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how);
int fuzz_last_accepted; /* 1 when the last input decoded */
/* Fixed-position fields {offset, width} for replay.c's structure-aware mutations. */
const unsigned char fuzz_fields[][2] = {{0, 4}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 8},
                                        {16, 8}, {24, 8}, {32, 8}, {40, 4}, {44, 4}};
const size_t fuzz_nfields = sizeof fuzz_fields / sizeof fuzz_fields[0];
const char fuzz_target_name[] = "memdesc";
const size_t fuzz_max_input = 128;

#define FUZZ_ASSERT(c, ...)                                              \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "fuzz_memdesc: invariant failed: " #c " -- "); \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
            abort();                                                     \
        }                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tcpx_memdesc d;
    uint8_t enc[TCPX_MEMDESC_BLOB_SIZE];
    tcpx_status st = tcpx_memdesc_deserialize(size ? data : (const uint8_t *)"", size, &d);
    if (st != TCPX_OK) {
        fuzz_last_accepted = 0;
        FUZZ_ASSERT(st == TCPX_ERR_PROTOCOL, "status %d for %zu bytes", (int)st, size);
        FUZZ_ASSERT(tcpx_last_error()[0] != '\0', "no error text");
        return 0;
    }
    FUZZ_ASSERT(size == TCPX_MEMDESC_BLOB_SIZE, "accepted %zu bytes", size);
    FUZZ_ASSERT(d.kind == TCPX_MEM_HOST || d.kind == TCPX_MEM_CUDA, "kind %d", (int)d.kind);
    FUZZ_ASSERT(d.id != 0 && d.size != 0 && d.addr + d.size >= d.addr, "id %llu size %llu addr %llx",
                (unsigned long long)d.id, (unsigned long long)d.size, (unsigned long long)d.addr);
    size_t len = 0;
    st = tcpx_memdesc_serialize(&d, enc, sizeof enc, &len);
    FUZZ_ASSERT(st == TCPX_OK && len == size, "re-serialize: status %d, %zu bytes", (int)st, len);
    FUZZ_ASSERT(memcmp(enc, data, size) == 0, "re-serialization is not byte-identical");
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
    uint64_t s = seed;
    tcpx_memdesc d;
    d.kind = (sm(&s) & 1) ? TCPX_MEM_CUDA : TCPX_MEM_HOST;
    unsigned bits = 1 + (unsigned)(sm(&s) % 63);
    d.size = 1 + sm(&s) % (1ull << bits);
    d.addr = sm(&s) % (UINT64_MAX - d.size + 1);
    d.id = sm(&s) | 1;
    d.key = sm(&s);
    size_t len = 0;
    if (tcpx_memdesc_serialize(&d, buf, cap, &len) != TCPX_OK) return 0;
    return len;
}

/* Recompute the trailing CRC-32C (how & 1: first resize to 48 bytes) so that
 * a mutated descriptor reaches the field checks. Returns the new length. */
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how)
{
    if ((how & 1) && cap >= TCPX_MEMDESC_BLOB_SIZE) {
        for (size_t i = len; i < TCPX_MEMDESC_BLOB_SIZE; i++) buf[i] = 0;
        len = TCPX_MEMDESC_BLOB_SIZE;
    }
    if (len < 8) return len;
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
