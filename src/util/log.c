#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = -1;

static int level_from_env(void)
{
    const char *v = getenv("TCPX_LOG_LEVEL");
    if (v && *v >= '0' && *v <= '4' && v[1] == '\0') return *v - '0';
    return TCPX_LOG_WARN;
}

void tcpx_log_set_level(int level) { atomic_store(&g_level, level); }

int tcpx_log_get_level(void)
{
    int l = atomic_load(&g_level);
    if (l < 0) {
        l = level_from_env();
        atomic_store(&g_level, l);
    }
    return l;
}

void tcpx_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"", "ERROR", "WARN", "INFO", "DEBUG"};
    if (level > tcpx_log_get_level() || level <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "tcpx %ld.%06ld %d:%ld %s %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000L,
            (int)getpid(), (long)syscall(SYS_gettid), names[level > 4 ? 4 : level], msg);
}

unsigned long long tcpx_log_due(tcpx_log_limit *l)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    unsigned long long now = (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
    l->count++;
    if (l->last_ns && now - l->last_ns < 1000000000ull) return 0;
    unsigned long long n = l->count;
    l->count = 0;
    l->last_ns = now;
    return n;
}
