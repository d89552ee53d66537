/* fuzz_sockhs.c - fuzz harness for the socket transport's handshake:
 * sock_hello_decode() (the 32 bytes a newly accepted connection sends first)
 * and sock_handle_decode() (the listen handle a connecting side is given).
 *
 * Built with libFuzzer (fuzz_sockhs) when the compiler is clang, and always
 * linked to replay.c (fuzz_replay_sockhs, a ctest). Every input goes to both
 * decoders.
 *
 * Invariants: each decoder rejects with TCPX_ERR_PROTOCOL and a message,
 * leaving its output untouched, or accepts an input of exactly its size
 * whose fields are in range. An accepted hello re-encodes byte-identically
 * (the format has no free bytes). An accepted handle re-encodes identically
 * in every byte the decoder reads for its family (the rest re-encodes as
 * zero) and decodes again to the same address. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/socket/sock.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap);
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how);
int fuzz_last_accepted; /* 1 when the last input decoded (as a hello or a handle) */
/* Fields {offset, width} for replay.c's structure-aware mutations: the
 * hello's, then the handle's. */
const unsigned char fuzz_fields[][2] = {{0, 4},  {4, 1},  {5, 1},  {6, 2},  {8, 8},  {16, 8}, {24, 4},
                                        {28, 4}, {16, 4}, {20, 4}, {24, 8}, {32, 4}, {36, 4}};
const size_t fuzz_nfields = sizeof fuzz_fields / sizeof fuzz_fields[0];
const char fuzz_target_name[] = "sockhs";
const size_t fuzz_max_input = 256;

#define FUZZ_ASSERT(c, ...)                                            \
    do {                                                               \
        if (!(c)) {                                                    \
            fprintf(stderr, "fuzz_sockhs: invariant failed: %s -- ", #c); \
            fprintf(stderr, __VA_ARGS__);                              \
            fprintf(stderr, "\n");                                     \
            abort();                                                   \
        }                                                              \
    } while (0)

/* Handle layout (sock_wire.c): magic 4, version 1, family 1, port 2,
 * nonce 8, address 16 (IPv4: first 4), IPv6 scope 4. */
#define H_ADDR 16
#define H_SCOPE 32
#define H_END 36

static int check_hello(const uint8_t *data, size_t size)
{
    sock_hello h, again;
    memset(&h, 0xA5, sizeof h);
    sock_hello untouched = h;
    tcpx_clear_error();
    tcpx_status st = sock_hello_decode(data, size, &h);
    if (st != TCPX_OK) {
        FUZZ_ASSERT(st == TCPX_ERR_PROTOCOL, "hello: status %d for %zu bytes", (int)st, size);
        FUZZ_ASSERT(tcpx_last_error()[0] != '\0', "hello: no error text");
        FUZZ_ASSERT(memcmp(&h, &untouched, sizeof h) == 0, "hello: rejected input wrote the output");
        return 0;
    }
    FUZZ_ASSERT(size == SOCK_HELLO_SIZE, "hello: accepted %zu bytes", size);
    FUZZ_ASSERT(h.count >= 1 && h.count <= SOCK_MAX_SOCKS && h.index < h.count, "hello: index %u count %u",
                h.index, h.count);
    uint8_t enc[SOCK_HELLO_SIZE];
    sock_hello_encode(&h, enc);
    FUZZ_ASSERT(memcmp(enc, data, SOCK_HELLO_SIZE) == 0, "hello: re-encoding is not byte-identical");
    FUZZ_ASSERT(sock_hello_decode(enc, sizeof enc, &again) == TCPX_OK && memcmp(&h, &again, sizeof h) == 0,
                "hello: re-encoding decodes differently");
    return 1;
}

static int check_handle(const uint8_t *data, size_t size)
{
    sock_handle h, again;
    memset(&h, 0xA5, sizeof h);
    sock_handle untouched = h;
    tcpx_clear_error();
    tcpx_status st = sock_handle_decode(data, size, &h);
    if (st != TCPX_OK) {
        FUZZ_ASSERT(st == TCPX_ERR_PROTOCOL, "handle: status %d for %zu bytes", (int)st, size);
        FUZZ_ASSERT(tcpx_last_error()[0] != '\0', "handle: no error text");
        FUZZ_ASSERT(memcmp(&h, &untouched, sizeof h) == 0, "handle: rejected input wrote the output");
        return 0;
    }
    FUZZ_ASSERT(size == TCPX_NET_HANDLE_SIZE, "handle: accepted %zu bytes", size);
    size_t alen; /* address bytes the family reads */
    if (h.ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&h.ss;
        FUZZ_ASSERT(h.len == sizeof *s && s->sin_port != 0, "handle: IPv4 len %u port %u", (unsigned)h.len,
                    (unsigned)ntohs(s->sin_port));
        alen = 4;
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&h.ss;
        FUZZ_ASSERT(h.ss.ss_family == AF_INET6, "handle: family %d", (int)h.ss.ss_family);
        FUZZ_ASSERT(h.len == sizeof *s && s->sin6_port != 0, "handle: IPv6 len %u port %u", (unsigned)h.len,
                    (unsigned)ntohs(s->sin6_port));
        alen = 16;
    }
    uint8_t enc[TCPX_NET_HANDLE_SIZE];
    sock_handle_encode(&h, enc);
    FUZZ_ASSERT(memcmp(enc, data, H_ADDR + alen) == 0, "handle: re-encoding changed the header or address");
    if (alen == 16) FUZZ_ASSERT(memcmp(enc + H_SCOPE, data + H_SCOPE, 4) == 0, "handle: scope changed");
    size_t from = alen == 16 ? H_END : H_ADDR + alen;
    for (size_t i = from; i < sizeof enc; i++) FUZZ_ASSERT(enc[i] == 0, "handle: re-encoded byte %zu not zero", i);
    FUZZ_ASSERT(sock_handle_decode(enc, sizeof enc, &again) == TCPX_OK && again.len == h.len &&
                    again.nonce == h.nonce && memcmp(&again.ss, &h.ss, h.len) == 0,
                "handle: re-encoding decodes differently");
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = size ? data : (const uint8_t *)"";
    int a = check_hello(p, size);
    int b = check_handle(p, size);
    FUZZ_ASSERT(!(a && b), "accepted as both a hello and a handle");
    fuzz_last_accepted = a || b;
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
    uint64_t s = seed;
    if (sm(&s) & 1) {
        if (cap < SOCK_HELLO_SIZE) return 0;
        sock_hello h;
        unsigned r = (unsigned)(sm(&s) % 4);
        h.count = r == 0 ? 1 : r == 1 ? SOCK_MAX_SOCKS : 1 + (uint32_t)(sm(&s) % SOCK_MAX_SOCKS);
        h.index = (sm(&s) & 1) ? h.count - 1 : (uint32_t)(sm(&s) % h.count);
        h.nonce = sm(&s);
        h.comm_id = sm(&s);
        sock_hello_encode(&h, buf);
        return SOCK_HELLO_SIZE;
    }
    if (cap < TCPX_NET_HANDLE_SIZE) return 0;
    sock_handle h;
    memset(&h, 0, sizeof h);
    h.nonce = sm(&s);
    uint16_t port = (uint16_t)(1 + sm(&s) % 65535);
    uint64_t a = sm(&s), b = sm(&s);
    if (sm(&s) & 1) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&h.ss;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        memcpy(&v4->sin_addr, &a, 4);
        h.len = sizeof *v4;
    } else {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&h.ss;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        memcpy(&v6->sin6_addr, &a, 8);
        memcpy((uint8_t *)&v6->sin6_addr + 8, &b, 8);
        v6->sin6_scope_id = (sm(&s) & 1) ? (uint32_t)sm(&s) : 0;
        h.len = sizeof *v6;
    }
    sock_handle_encode(&h, buf);
    return TCPX_NET_HANDLE_SIZE;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) { return (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24); }

/* Repair a mutated input so that it reaches the field checks: how & 1
 * resizes it to the size its magic implies (a missing magic is chosen by
 * how & 2 and written), how & 4 restores the version byte, how & 8 zeroes a
 * hello's reserved bytes and brings its index below its count. Returns the
 * new length. */
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how)
{
    if (how & 1) {
        uint32_t magic = len >= 4 ? get32(buf) : 0;
        if (magic != SOCK_HELLO_MAGIC && magic != SOCK_HANDLE_MAGIC)
            magic = (how & 2) ? SOCK_HANDLE_MAGIC : SOCK_HELLO_MAGIC;
        size_t want = magic == SOCK_HELLO_MAGIC ? SOCK_HELLO_SIZE : TCPX_NET_HANDLE_SIZE;
        if (want > cap) return len;
        for (size_t i = len; i < want; i++) buf[i] = 0;
        len = want;
        put32(buf, magic);
    }
    if ((how & 4) && len > 4) buf[4] = 1;
    if ((how & 8) && len == SOCK_HELLO_SIZE && get32(buf) == SOCK_HELLO_MAGIC) {
        buf[5] = buf[6] = buf[7] = 0;
        uint32_t count = get32(buf + 28);
        if (count >= 1 && count <= SOCK_MAX_SOCKS) put32(buf + 24, get32(buf + 24) % count);
    }
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
