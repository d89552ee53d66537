/*
 * harness.h - fork-based multi-process harness for the integration and fault
 * tests of tcpx-p2p.
 *
 * Model: the test's main process is a supervisor. It creates bootstrap
 * socketpairs, forks one child per role ("A", "B", ...), and checks that each
 * child exits 0 before a deadline (killing it and failing otherwise). Every
 * tcpx session lives in a child, created after the fork. Children talk to each
 * other over the bootstrap fds: length-prefixed messages carrying connection
 * info blobs and small sync words.
 *
 * Every failure prints one line "[test/role] FAIL file:line: detail (seed=..)"
 * and exits non-zero; every wait has a deadline; each process arms alarm() as
 * a watchdog.
 */
#ifndef TCPX_IT_HARNESS_H
#define TCPX_IT_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tcpx_p2p.h"

/* ------------------------------------------------------------ reporting */

extern uint64_t hx_seed;           /* base seed of this run (HX_SEED=... reproduces) */

/* Set the test name, pick the seed (env HX_SEED or time), clear the TCPX_*
 * variables that change semantics (channels, chunk, transport, bind, name,
 * timeouts), arm the supervisor watchdog (seconds, 0 = none). */
void hx_init(const char *test_name, int watchdog_s);
void hx_set_role(const char *role);
const char *hx_role(void);

void hx_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void hx_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define HX_FAIL(...) hx_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define HX_CHECK(cond, ...)               \
    do {                                  \
        if (!(cond)) HX_FAIL(__VA_ARGS__); \
    } while (0)
/* A tcpx call that must succeed. */
#define HX_OK(call)                                                                      \
    do {                                                                                 \
        tcpx_status hx_st_ = (call);                                                     \
        if (hx_st_ != TCPX_OK)                                                           \
            HX_FAIL("%s returned %s (%d): %s", #call, tcpx_strerror(hx_st_), (int)hx_st_, \
                    tcpx_last_error());                                                  \
    } while (0)
/* A tcpx call that must return exactly `want`; an error must leave a
 * non-empty tcpx_last_error(). */
#define HX_EXPECT(call, want)                                                                \
    do {                                                                                     \
        tcpx_status hx_st_ = (call);                                                         \
        if (hx_st_ != (want))                                                                \
            HX_FAIL("%s returned %s (%d), expected %s: %s", #call, tcpx_strerror(hx_st_),   \
                    (int)hx_st_, tcpx_strerror(want), tcpx_last_error());                    \
        if ((want) < 0 && tcpx_last_error()[0] == '\0')                                      \
            HX_FAIL("%s returned %s but tcpx_last_error() is empty", #call, tcpx_strerror(want)); \
    } while (0)

/* Slow builds (sanitizers) stretch every deadline and latency slack by
 * this factor: env HX_TIME_SCALE, else 4 under TSan, 2 under ASan, else 1.
 * The harness applies it to its own deadlines (waits, bootstrap, children,
 * watchdogs); tests wrap their latency bounds in HX_MS(). */
int hx_time_scale(void);
#define HX_MS(ms) ((ms) * hx_time_scale())

uint64_t hx_now_ms(void);
void hx_sleep_ms(int ms);

/* ----------------------------------------------------------------- random */

typedef struct hx_rng {
    uint64_t s;
} hx_rng;

void hx_rng_seed(hx_rng *r, uint64_t seed);
uint64_t hx_rng_next(hx_rng *r);
uint64_t hx_rng_below(hx_rng *r, uint64_t n);   /* uniform-ish in [0, n), n > 0 */
uint64_t hx_mix(uint64_t a, uint64_t b);        /* derive a seed from two values */
void hx_shuffle(hx_rng *r, size_t *v, size_t n);

/* Counter-based pattern: byte at stream position p depends only on (seed, p)
 * and is never zero. fill writes positions [pos, pos+len) to buf. */
void hx_fill(void *buf, size_t len, uint64_t seed, uint64_t pos);
/* Index of the first byte of buf that differs from the pattern, or SIZE_MAX. */
size_t hx_verify(const void *buf, size_t len, uint64_t seed, uint64_t pos);
/* Fail with position, expected and actual byte when buf is not the pattern. */
#define HX_CHECK_PATTERN(what, buf, len, seed, pos) \
    hx_check_pattern_at(__FILE__, __LINE__, what, buf, len, seed, pos)
void hx_check_pattern_at(const char *file, int line, const char *what, const void *buf, size_t len,
                         uint64_t seed, uint64_t pos);

/* 1 if the first n (<= 256) bytes at p no longer hold pattern(seed, pos):
 * used to see a receive's first bytes land while the transport's threads
 * are still writing the buffer (a deliberate, benign race: not instrumented
 * by TSan). */
int hx_landed(const uint8_t *p, size_t n, uint64_t seed, uint64_t pos);

/* -------------------------------------------------------------- bootstrap */

/* Length-prefixed messages on a stream fd. Failures (EOF, error, deadline)
 * fail the test. */
void hx_send(int fd, const void *buf, size_t len);
void *hx_recv(int fd, size_t *len, int timeout_ms);    /* malloc'd, NUL-terminated extra byte */
void hx_send_str(int fd, const char *s);
void hx_expect_str(int fd, const char *want, int timeout_ms);
void hx_send_u64(int fd, uint64_t v);
uint64_t hx_recv_u64(int fd, int timeout_ms);
/* 1 if a message is waiting within timeout_ms, else 0. */
int hx_poll_readable(int fd, int timeout_ms);

/* Unix-socket rendezvous in a directory (for processes not forked together,
 * e.g. in two network namespaces): the server side listens on dir/boot.sock
 * and accepts one client; the client retries until the deadline. */
int hx_rendezvous_server(const char *dir, int timeout_ms);
int hx_rendezvous_client(const char *dir, int timeout_ms);

/* --------------------------------------------------------------- processes */

typedef int (*hx_child_fn)(void *arg);

/* Fork a child running fn(arg) as `role` with a watchdog of watchdog_s
 * seconds; it dies with its parent. Returns the pid. */
pid_t hx_spawn(const char *role, int watchdog_s, hx_child_fn fn, void *arg);
/* Wait for a child; fail if it does not exit 0 within timeout_ms (killing it). */
void hx_wait_ok(pid_t pid, int timeout_ms);
/* Wait for several children at once: fail as soon as one exits non-zero or
 * dies, or when the deadline passes with some still running (killing them). */
void hx_wait_all(const pid_t *pids, int n, int timeout_ms);
/* Supervisor: wait for message `want` on fd while watching children: fail at
 * once if one of them exits (it is not reaped) or at the deadline. */
void hx_expect_str_watch(int fd, const char *want, const pid_t *pids, int n, int timeout_ms);
/* Wait for a child killed on purpose: must be dead of signal sig within timeout. */
void hx_wait_killed(pid_t pid, int sig, int timeout_ms);
/* SIGSTOP a child and return once every one of its threads has stopped (kill
 * returns before that: a thread running on another core may still answer a
 * request sent meanwhile); fail if it has not stopped within timeout_ms. */
void hx_stop(pid_t pid, int timeout_ms);
/* Create a socketpair (stream); fds[0] for one side, fds[1] for the other. */
void hx_pair(int fds[2]);

/* ---------------------------------------------------------------- sessions */

typedef struct hx_sess_opts {
    const char *name;
    int channels;                /* 0 = 4 */
    size_t chunk;                /* 0 = library default */
    const char *bind;            /* NULL = "127.0.0.1" */
    int connect_timeout_ms;      /* 0 = 5000; times hx_time_scale() */
    int peer_timeout_ms;         /* 0 = 5000 */
    int accept_any;
} hx_sess_opts;

tcpx_session *hx_session_ex(const hx_sess_opts *o);
tcpx_session *hx_session(const char *name, int channels, size_t chunk);

/* Acceptor side: listen, send our blob on fd, tcpx_session_accept(peer). */
void hx_accept_from(tcpx_session *s, const char *peer, int fd);
/* Initiator side: listen, receive the peer's blob on fd, load it as `peer`,
 * tcpx_session_connect(peer). */
void hx_connect_to(tcpx_session *s, const char *peer, int fd);
/* Just the blob halves, for tests that do something between. */
void hx_send_blob(tcpx_session *s, int fd);
void *hx_recv_blob(int fd, size_t *len);

/* ------------------------------------------------------------------ memory */

typedef struct hx_region {
    uint8_t *ptr;
    size_t size;
    tcpx_mem_id id;
} hx_region;

/* Allocate (page aligned, mmap), fill with pattern(guard_seed) and register. */
void hx_region_init(tcpx_session *s, hx_region *r, size_t size, uint64_t guard_seed);
void hx_region_fini(tcpx_session *s, hx_region *r);

/* Wait for a transfer that must complete OK within timeout_ms. */
#define HX_WAIT_OK(x, timeout_ms, what) hx_wait_ok_at(__FILE__, __LINE__, x, timeout_ms, what)
void hx_wait_ok_at(const char *file, int line, tcpx_xfer *x, int timeout_ms, const char *what);
/* Wait and return the status, with the elapsed time in *ms (may be NULL). */
tcpx_status hx_wait_timed(tcpx_xfer *x, int timeout_ms, uint64_t *ms);

/* Progress the session for ms milliseconds (lets control messages settle). */
void hx_progress_for(tcpx_session *s, int ms);

/* ------------------------------------------------------------ one-sided */

/* Export registration `id` as a descriptor blob on fd / read one back. */
void hx_send_memdesc(tcpx_session *s, tcpx_mem_id id, int fd);
void hx_recv_memdesc(int fd, tcpx_memdesc *out);
/* Wait (bounded) for the next notification; fail unless it comes from
 * `peer`. Returns its length; the bytes go to buf (cap bytes). */
size_t hx_wait_notif(tcpx_session *s, const char *peer, void *buf, size_t cap, int timeout_ms);
/* Fail if a notification is waiting. */
void hx_no_notif(tcpx_session *s);

#endif
