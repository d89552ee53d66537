/* log.h - leveled logging to stderr, prefixed with "tcpx". */
#ifndef TCPX_LOG_H
#define TCPX_LOG_H

enum { TCPX_LOG_NONE = 0, TCPX_LOG_ERROR = 1, TCPX_LOG_WARN = 2, TCPX_LOG_INFO = 3, TCPX_LOG_DEBUG = 4 };

/* Process-wide level; sessions raise it to their config's level. Starts from
 * TCPX_LOG_LEVEL in the environment (default warn). */
void tcpx_log_set_level(int level);
int tcpx_log_get_level(void);

void tcpx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TCPX_ERROR(...) tcpx_log(TCPX_LOG_ERROR, __VA_ARGS__)
#define TCPX_WARN(...) tcpx_log(TCPX_LOG_WARN, __VA_ARGS__)
#define TCPX_INFO(...) tcpx_log(TCPX_LOG_INFO, __VA_ARGS__)
#define TCPX_DEBUG(...)                                                   \
    do {                                                                  \
        if (tcpx_log_get_level() >= TCPX_LOG_DEBUG) tcpx_log(TCPX_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/* A message that may come in floods (one per refused notification) is
 * written at most once a second: tcpx_log_due counts an occurrence and
 * returns how many there were since the last line when one is due now, 0
 * otherwise. Zero-initialise. */
typedef struct tcpx_log_limit {
    unsigned long long count, last_ns;
} tcpx_log_limit;
unsigned long long tcpx_log_due(tcpx_log_limit *l);

#endif
