/* check.h - what the seeded unit tests share: CHECK (counts a failure with
 * its place and goes on), a splitmix64 generator, and the seed and summary
 * lines. Each test is one translation unit, so the state is static here. */
#ifndef TCPX_TEST_CHECK_H
#define TCPX_TEST_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int failures;
static uint64_t rng;

#define CHECK(c, ...)                                   \
    do {                                                \
        if (!(c)) {                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
            failures++;                                 \
        }                                               \
    } while (0)

static inline uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Seed the generator from TCPX_TEST_SEED, or from the time and pid, and
 * print it. */
static inline uint64_t check_seed(const char *test)
{
    const char *e = getenv("TCPX_TEST_SEED");
    uint64_t seed = e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
    rng = seed;
    printf("%s: seed %" PRIu64 " (TCPX_TEST_SEED reproduces)\n", test, seed);
    return seed;
}

/* The last line; the exit status of main. */
static inline int check_done(const char *test, uint64_t seed)
{
    if (failures) {
        printf("%s: %d check(s) FAILED (seed %" PRIu64 ")\n", test, failures, seed);
        return 1;
    }
    printf("%s: OK\n", test);
    return 0;
}

#endif
