/* clock.h - monotonic time and deadlines. */
#ifndef TCPX_CLOCK_H
#define TCPX_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t tcpx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Deadline timeout_ms from now; a negative timeout means none (UINT64_MAX). */
static inline uint64_t tcpx_deadline_ms(int timeout_ms)
{
    if (timeout_ms < 0) return UINT64_MAX;
    return tcpx_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

static inline int tcpx_past(uint64_t deadline) { return tcpx_now_ns() >= deadline; }

#endif
