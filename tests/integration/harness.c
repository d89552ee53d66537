/* harness.c - see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

uint64_t hx_seed;
static char g_test[64] = "test";
static char g_role[32] = "main";
static char g_prefix[128];

#define HX_MAX_CHILDREN 32
static pid_t g_children[HX_MAX_CHILDREN];
static int g_nchildren;
static pid_t g_known_pid[HX_MAX_CHILDREN];
static char g_known_role[HX_MAX_CHILDREN][32];
static int g_nknown;

static const char *child_role(pid_t pid)
{
    for (int i = 0; i < g_nknown; i++)
        if (g_known_pid[i] == pid) return g_known_role[i];
    return "?";
}
static int g_is_supervisor = 1;

static void update_prefix(void)
{
    snprintf(g_prefix, sizeof g_prefix, "[%s/%s]", g_test, g_role);
}

const char *hx_role(void)
{
    return g_role;
}

void hx_set_role(const char *role)
{
    snprintf(g_role, sizeof g_role, "%s", role);
    update_prefix();
}

static void kill_children(void)
{
    for (int i = 0; i < g_nchildren; i++)
        if (g_children[i] > 0) kill(g_children[i], SIGKILL);
}

static void write_str(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void on_alarm(int sig)
{
    (void)sig;
    write_str(g_prefix);
    write_str(" FAIL watchdog expired: the process hung\n");
    if (g_is_supervisor) kill_children();
    _exit(3);
}

void hx_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    fprintf(stderr, "%s FAIL %s:%d: %s (seed=HX_SEED=%" PRIu64 ")\n", g_prefix, base ? base + 1 : file, line, msg,
            hx_seed);
    fflush(stderr);
    if (g_is_supervisor) kill_children();
    _exit(1);
}

void hx_log(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s\n", g_prefix, msg);
    fflush(stderr);
}

void hx_init(const char *test_name, int watchdog_s)
{
    snprintf(g_test, sizeof g_test, "%s", test_name);
    update_prefix();
    const char *e = getenv("HX_SEED");
    if (e && *e) hx_seed = strtoull(e, NULL, 0);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        hx_seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
        hx_seed &= 0xffffffffffffull;
    }
    static const char *clear[] = {"TCPX_CHANNELS",   "TCPX_CHUNK_BYTES",        "TCPX_TRANSPORT",
                                  "TCPX_BIND_ADDR",  "TCPX_NAME",               "TCPX_CONNECT_TIMEOUT_MS",
                                  "TCPX_PEER_TIMEOUT_MS", "TCPX_GPU", "TCPX_ACCEPT_ANY",
                                  "TCPX_UNEXPECTED_MAX", "TCPX_UNEXPECTED_MAX_BYTES"};
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++) unsetenv(clear[i]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    if (watchdog_s > 0) alarm((unsigned)(watchdog_s * hx_time_scale()));
    hx_log("seed %" PRIu64 " (rerun with HX_SEED=%" PRIu64 ")%s", hx_seed, hx_seed,
           hx_time_scale() > 1 ? " [deadlines scaled for a slow build]" : "");
}

int hx_time_scale(void)
{
    static int scale;
    if (scale) return scale;
    const char *e = getenv("HX_TIME_SCALE");
    int v = e && *e ? atoi(e) : 0;
#if defined(__SANITIZE_THREAD__)
    if (v < 1) v = 4;
#elif defined(__SANITIZE_ADDRESS__)
    if (v < 1) v = 2;
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
    if (v < 1) v = 4;
#endif
#if __has_feature(address_sanitizer)
    if (v < 1) v = 2;
#endif
#endif
    scale = v < 1 ? 1 : v > 20 ? 20 : v;
    return scale;
}

uint64_t hx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hx_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* ----------------------------------------------------------------- random */

static inline uint64_t splitmix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t hx_mix(uint64_t a, uint64_t b)
{
    return splitmix(a * 0x9E3779B97F4A7C15ull + splitmix(b + 0x632BE59BD9B4E019ull));
}

void hx_rng_seed(hx_rng *r, uint64_t seed)
{
    r->s = splitmix(seed ^ 0xD1B54A32D192ED03ull);
}

uint64_t hx_rng_next(hx_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return splitmix(r->s);
}

uint64_t hx_rng_below(hx_rng *r, uint64_t n)
{
    return n ? hx_rng_next(r) % n : 0;
}

void hx_shuffle(hx_rng *r, size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)hx_rng_below(r, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Word k of the pattern, with every zero byte replaced by 0x5A. */
static inline uint64_t pat_word(uint64_t seed, uint64_t k)
{
    uint64_t w = splitmix(seed + (k + 1) * 0x9E3779B97F4A7C15ull);
    const uint64_t m = 0x7F7F7F7F7F7F7F7Full;
    uint64_t t = ~(((w & m) + m) | w | m); /* 0x80 in exactly the zero bytes */
    return w | ((t >> 7) * 0x5Aull);
}

static inline uint8_t pat_byte(uint64_t seed, uint64_t p)
{
    uint64_t w = pat_word(seed, p >> 3);
    return (uint8_t)(w >> (8 * (p & 7))); /* little-endian byte order */
}

void hx_fill(void *buf, size_t len, uint64_t seed, uint64_t pos)
{
    uint8_t *b = buf;
    size_t i = 0;
    while (i < len && ((pos + i) & 7)) {
        b[i] = pat_byte(seed, pos + i);
        i++;
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w = pat_word(seed, (pos + i) >> 3);
        uint8_t tmp[8];
        for (int j = 0; j < 8; j++) tmp[j] = (uint8_t)(w >> (8 * j));
        memcpy(b + i, tmp, 8);
    }
    for (; i < len; i++) b[i] = pat_byte(seed, pos + i);
}

size_t hx_verify(const void *buf, size_t len, uint64_t seed, uint64_t pos)
{
    const uint8_t *b = buf;
    static __thread uint8_t blk[64 * 1024];
    for (size_t off = 0; off < len; off += sizeof blk) {
        size_t n = len - off < sizeof blk ? len - off : sizeof blk;
        hx_fill(blk, n, seed, pos + off);
        if (memcmp(blk, b + off, n)) {
            for (size_t j = 0; j < n; j++)
                if (blk[j] != b[off + j]) return off + j;
        }
    }
    return SIZE_MAX;
}

void hx_check_pattern_at(const char *file, int line, const char *what, const void *buf, size_t len,
                         uint64_t seed, uint64_t pos)
{
    size_t bad = hx_verify(buf, len, seed, pos);
    if (bad == SIZE_MAX) return;
    const uint8_t *b = buf;
    size_t nbad = 0;
    for (size_t j = bad; j < len; j++) nbad += b[j] != pat_byte(seed, pos + j);
    hx_fail_at(file, line,
               "%s: %zu of %zu bytes wrong, first at index %zu: expected 0x%02x, got 0x%02x%s", what, nbad,
               len, bad, pat_byte(seed, pos + bad), b[bad], b[bad] == 0 ? " (never written?)" : "");
}

__attribute__((noinline, no_sanitize("thread"))) int hx_landed(const uint8_t *p, size_t n, uint64_t seed,
                                                              uint64_t pos)
{
    uint8_t now[256], want[256];
    if (n > sizeof now) n = sizeof now;
    const volatile uint8_t *v = p;
    for (size_t i = 0; i < n; i++) now[i] = v[i];
    hx_fill(want, n, seed, pos);
    return memcmp(now, want, n) != 0;
}

/* -------------------------------------------------------------- bootstrap */

static void wait_fd(int fd, short ev, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t now = hx_now_ms();
        if (now >= deadline) HX_FAIL("bootstrap: timed out waiting to %s (fd %d)", what, fd);
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r > 0) return;
        if (r < 0 && errno != EINTR) HX_FAIL("bootstrap: poll: %s", strerror(errno));
    }
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
    while (len) {
        ssize_t r = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            wait_fd(fd, POLLOUT, deadline, "send");
            continue;
        }
        if (r < 0 && errno == ENOTSOCK) r = write(fd, p, len);
        if (r <= 0) HX_FAIL("bootstrap: send: %s", r < 0 ? strerror(errno) : "closed");
        p += r;
        len -= (size_t)r;
    }
}

static void read_all(int fd, void *buf, size_t len, uint64_t deadline)
{
    uint8_t *p = buf;
    while (len) {
        wait_fd(fd, POLLIN, deadline, "receive");
        ssize_t r = read(fd, p, len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r == 0) HX_FAIL("bootstrap: peer process closed its end (did it fail or die?)");
        if (r < 0) HX_FAIL("bootstrap: read: %s", strerror(errno));
        p += r;
        len -= (size_t)r;
    }
}

void hx_send(int fd, const void *buf, size_t len)
{
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    HX_CHECK(len < (1u << 30), "bootstrap message too long");
    write_all(fd, hdr, 4);
    if (len) write_all(fd, buf, len);
}

void *hx_recv(int fd, size_t *len, int timeout_ms)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    uint8_t hdr[4];
    read_all(fd, hdr, 4, deadline);
    size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
    HX_CHECK(n < (1u << 30), "bootstrap: bad length %zu", n);
    uint8_t *buf = malloc(n + 1);
    HX_CHECK(buf, "out of memory");
    read_all(fd, buf, n, deadline);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

void hx_send_str(int fd, const char *s)
{
    hx_send(fd, s, strlen(s));
}

void hx_expect_str(int fd, const char *want, int timeout_ms)
{
    size_t n;
    char *got = hx_recv(fd, &n, timeout_ms);
    if (strcmp(got, want)) HX_FAIL("bootstrap: expected message \"%s\", got \"%s\"", want, got);
    free(got);
}

void hx_send_u64(int fd, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    hx_send(fd, b, 8);
}

uint64_t hx_recv_u64(int fd, int timeout_ms)
{
    size_t n;
    uint8_t *b = hx_recv(fd, &n, timeout_ms);
    HX_CHECK(n == 8, "bootstrap: expected an 8-byte word, got %zu bytes", n);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    free(b);
    return v;
}

int hx_poll_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

static void sock_path(const char *dir, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path, sizeof a->sun_path, "%s/boot.sock", dir);
    HX_CHECK(n > 0 && (size_t)n < sizeof a->sun_path, "rendezvous path too long: %s", dir);
}

int hx_rendezvous_server(const char *dir, int timeout_ms)
{
    struct sockaddr_un a;
    sock_path(dir, &a);
    unlink(a.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    HX_CHECK(l >= 0, "socket: %s", strerror(errno));
    HX_CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0, "bind %s: %s", a.sun_path, strerror(errno));
    HX_CHECK(listen(l, 4) == 0, "listen: %s", strerror(errno));
    wait_fd(l, POLLIN, hx_now_ms() + (uint64_t)HX_MS(timeout_ms), "accept the rendezvous client");
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    HX_CHECK(fd >= 0, "accept: %s", strerror(errno));
    close(l);
    unlink(a.sun_path);
    return fd;
}

int hx_rendezvous_client(const char *dir, int timeout_ms)
{
    struct sockaddr_un a;
    sock_path(dir, &a);
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        HX_CHECK(fd >= 0, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        close(fd);
        if (hx_now_ms() >= deadline) HX_FAIL("rendezvous: no server at %s: %s", a.sun_path, strerror(errno));
        hx_sleep_ms(20);
    }
}

/* --------------------------------------------------------------- processes */

void hx_pair(int fds[2])
{
    HX_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair: %s", strerror(errno));
}

pid_t hx_spawn(const char *role, int watchdog_s, hx_child_fn fn, void *arg)
{
    /* Slots of children already reaped are reused: a long-running
     * supervisor (the soak) spawns many more than it holds at once. */
    while (g_nchildren > 0 && g_children[g_nchildren - 1] == 0) g_nchildren--;
    if (g_nknown == HX_MAX_CHILDREN) {
        int k = 0;
        for (int i = 0; i < g_nknown; i++) {
            int live = 0;
            for (int j = 0; j < g_nchildren; j++) live |= g_children[j] == g_known_pid[i];
            if (!live) continue;
            g_known_pid[k] = g_known_pid[i];
            memcpy(g_known_role[k], g_known_role[i], sizeof g_known_role[0]);
            k++;
        }
        g_nknown = k;
    }
    int slot = g_nchildren;
    for (int i = 0; i < g_nchildren; i++)
        if (g_children[i] == 0) {
            slot = i;
            break;
        }
    HX_CHECK(slot < HX_MAX_CHILDREN, "too many children");
    fflush(stdout);
    fflush(stderr);
    pid_t ppid = getpid();
    pid_t pid = fork();
    HX_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        g_is_supervisor = 0;
        g_nchildren = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != ppid) _exit(4);
        hx_set_role(role);
        alarm((unsigned)(watchdog_s * hx_time_scale()));
        int rc = fn(arg);
#ifdef __SANITIZE_ADDRESS__
        /* _exit skips LeakSanitizer's exit check: a child that passed is
         * checked here (what its sessions and transfers took must be back). */
        if (rc == 0 && __lsan_do_recoverable_leak_check()) {
            fprintf(stderr, "[%s/%s] FAIL: memory leaked (LeakSanitizer report above)\n", g_test, role);
            rc = 1;
        }
#endif
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    g_children[slot] = pid;
    if (slot == g_nchildren) g_nchildren++;
    if (g_nknown < HX_MAX_CHILDREN) {
        g_known_pid[g_nknown] = pid;
        snprintf(g_known_role[g_nknown], sizeof g_known_role[0], "%s", role);
        g_nknown++;
    }
    return pid;
}

static void forget_child(pid_t pid)
{
    for (int i = 0; i < g_nchildren; i++)
        if (g_children[i] == pid) g_children[i] = 0;
}

static void child_status_ok(pid_t pid, int status);

static int wait_child(pid_t pid, int timeout_ms, int *status)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            forget_child(pid);
            return 1;
        }
        if (r < 0 && errno != EINTR) HX_FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
        if (hx_now_ms() >= deadline) return 0;
        hx_sleep_ms(5);
    }
}

void hx_wait_ok(pid_t pid, int timeout_ms)
{
    int status = 0;
    if (!wait_child(pid, timeout_ms, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        forget_child(pid);
        HX_FAIL("child %s (pid %d) did not finish within %d ms: killed (a hang)", child_role(pid), (int)pid,
                timeout_ms);
    }
    child_status_ok(pid, status);
}

static void child_status_ok(pid_t pid, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    if (WIFEXITED(status))
        HX_FAIL("child %s (pid %d) exited with status %d (see its FAIL line above)", child_role(pid), (int)pid,
                WEXITSTATUS(status));
    HX_FAIL("child %s (pid %d) died of signal %d (%s)", child_role(pid), (int)pid, WTERMSIG(status),
            strsignal(WTERMSIG(status)));
}

void hx_wait_all(const pid_t *pids, int n, int timeout_ms)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    int left = n;
    int done[HX_MAX_CHILDREN] = {0};
    HX_CHECK(n <= HX_MAX_CHILDREN, "too many children");
    while (left) {
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            int status = 0;
            pid_t r = waitpid(pids[i], &status, WNOHANG);
            if (r == pids[i]) {
                forget_child(pids[i]);
                done[i] = 1;
                left--;
                child_status_ok(pids[i], status);
            } else if (r < 0 && errno != EINTR) {
                HX_FAIL("waitpid(%d): %s", (int)pids[i], strerror(errno));
            }
        }
        if (!left) break;
        if (hx_now_ms() >= deadline) {
            for (int i = 0; i < n; i++)
                if (!done[i]) hx_log("child %s (pid %d) still running at the deadline: killing it", child_role(pids[i]),
                           (int)pids[i]);
            HX_FAIL("%d of %d children did not finish within %d ms (a hang)", left, n, timeout_ms);
        }
        hx_sleep_ms(5);
    }
}

void hx_expect_str_watch(int fd, const char *want, const pid_t *pids, int n, int timeout_ms)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    while (!hx_poll_readable(fd, 10)) {
        for (int i = 0; i < n; i++) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pids[i]) {
                if (si.si_code == CLD_EXITED)
                    HX_FAIL("child %s (pid %d) exited with status %d while the supervisor waited for \"%s\"",
                            child_role(pids[i]), (int)pids[i], si.si_status, want);
                HX_FAIL("child %s (pid %d) died of signal %d while the supervisor waited for \"%s\"",
                        child_role(pids[i]), (int)pids[i], si.si_status, want);
            }
        }
        if (hx_now_ms() >= deadline) HX_FAIL("no \"%s\" message within %d ms", want, timeout_ms);
    }
    hx_expect_str(fd, want, 1000);
}

void hx_wait_killed(pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    if (!wait_child(pid, timeout_ms, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        forget_child(pid);
        HX_FAIL("child %d did not die within %d ms", (int)pid, timeout_ms);
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == sig) return;
    if (WIFEXITED(status))
        HX_FAIL("child %d exited with status %d instead of dying of signal %d", (int)pid, WEXITSTATUS(status),
                sig);
    HX_FAIL("child %d died of signal %d, expected %d", (int)pid, WTERMSIG(status), sig);
}

void hx_stop(pid_t pid, int timeout_ms)
{
    HX_CHECK(kill(pid, SIGSTOP) == 0, "SIGSTOP %s (pid %d): %s", child_role(pid), (int)pid, strerror(errno));
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG | WUNTRACED);
        if (r == pid && WIFSTOPPED(status)) return;
        if (r == pid) {
            forget_child(pid);
            HX_FAIL("child %s (pid %d) ended (status 0x%x) instead of stopping", child_role(pid), (int)pid, status);
        }
        if (r < 0 && errno != EINTR) HX_FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
        HX_CHECK(hx_now_ms() < deadline, "child %s (pid %d) not stopped %d ms after SIGSTOP", child_role(pid),
                 (int)pid, timeout_ms);
        hx_sleep_ms(1);
    }
}

/* ---------------------------------------------------------------- sessions */

tcpx_session *hx_session_ex(const hx_sess_opts *o)
{
    tcpx_config cfg;
    tcpx_config_init(&cfg);
    cfg.channels = o->channels ? o->channels : 4;
    /* HX_TRANSPORT runs a test over another transport (an ncclNet plugin path). */
    const char *transport = getenv("HX_TRANSPORT");
    snprintf(cfg.transport, sizeof cfg.transport, "%s", transport && *transport ? transport : "socket");
    /* A plugin reads its listen address from the environment, not from us. */
    if (transport && *transport) setenv("TCPX_BIND_ADDR", o->bind ? o->bind : "127.0.0.1", 1);
    snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "%s", o->bind ? o->bind : "127.0.0.1");
    snprintf(cfg.name, sizeof cfg.name, "%s", o->name);
    if (o->chunk) cfg.chunk_bytes = o->chunk;
    cfg.accept_any = o->accept_any;
    cfg.connect_timeout_ms = HX_MS(o->connect_timeout_ms ? o->connect_timeout_ms : 5000);
    cfg.peer_timeout_ms = o->peer_timeout_ms ? o->peer_timeout_ms : 5000;
    tcpx_session *s = NULL;
    tcpx_status st = tcpx_session_create(&cfg, &s);
    if (st != TCPX_OK)
        HX_FAIL("tcpx_session_create(name %s, channels %d, chunk %zu) returned %s: %s", o->name, cfg.channels,
                cfg.chunk_bytes, tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(s, "tcpx_session_create returned OK but no session");
    return s;
}

tcpx_session *hx_session(const char *name, int channels, size_t chunk)
{
    hx_sess_opts o = {.name = name, .channels = channels, .chunk = chunk};
    return hx_session_ex(&o);
}

void hx_send_blob(tcpx_session *s, int fd)
{
    const void *blob = NULL;
    size_t len = 0;
    HX_OK(tcpx_session_listen(s, &blob, &len));
    HX_CHECK(blob && len > 0, "tcpx_session_listen returned an empty blob");
    hx_send(fd, blob, len);
}

void *hx_recv_blob(int fd, size_t *len)
{
    return hx_recv(fd, len, 20000);
}

void hx_accept_from(tcpx_session *s, const char *peer, int fd)
{
    hx_send_blob(s, fd);
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_accept(s, peer);
    if (st != TCPX_OK)
        HX_FAIL("tcpx_session_accept(\"%s\") returned %s after %" PRIu64 " ms: %s", peer, tcpx_strerror(st),
                hx_now_ms() - t0, tcpx_last_error());
    HX_CHECK(tcpx_session_peer_status(s, peer) == TCPX_OK, "peer %s not OK right after accept", peer);
}

void hx_connect_to(tcpx_session *s, const char *peer, int fd)
{
    const void *mine;
    size_t mylen;
    HX_OK(tcpx_session_listen(s, &mine, &mylen));
    size_t len;
    void *blob = hx_recv_blob(fd, &len);
    HX_OK(tcpx_session_load_remote(s, peer, blob, len));
    free(blob);
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_connect(s, peer);
    if (st != TCPX_OK)
        HX_FAIL("tcpx_session_connect(\"%s\") returned %s after %" PRIu64 " ms: %s", peer, tcpx_strerror(st),
                hx_now_ms() - t0, tcpx_last_error());
    HX_CHECK(tcpx_session_peer_status(s, peer) == TCPX_OK, "peer %s not OK right after connect", peer);
}

/* ------------------------------------------------------------------ memory */

void hx_region_init(tcpx_session *s, hx_region *r, size_t size, uint64_t guard_seed)
{
    size_t map = (size + 4095) & ~(size_t)4095;
    void *p = mmap(NULL, map ? map : 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    HX_CHECK(p != MAP_FAILED, "mmap %zu bytes: %s", size, strerror(errno));
    r->ptr = p;
    r->size = size;
    hx_fill(r->ptr, size, guard_seed, 0);
    r->id = 0;
    HX_OK(tcpx_mem_register(s, r->ptr, size, TCPX_MEM_HOST, &r->id));
    HX_CHECK(r->id != 0, "tcpx_mem_register returned id 0");
}

void hx_region_fini(tcpx_session *s, hx_region *r)
{
    if (!r->ptr) return;
    if (s && r->id) HX_OK(tcpx_mem_deregister(s, r->id));
    size_t map = (r->size + 4095) & ~(size_t)4095;
    munmap(r->ptr, map ? map : 4096);
    r->ptr = NULL;
    r->id = 0;
}

tcpx_status hx_wait_timed(tcpx_xfer *x, int timeout_ms, uint64_t *ms)
{
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_xfer_wait(x, timeout_ms);
    if (ms) *ms = hx_now_ms() - t0;
    return st;
}

void hx_wait_ok_at(const char *file, int line, tcpx_xfer *x, int timeout_ms, const char *what)
{
    uint64_t ms;
    timeout_ms = HX_MS(timeout_ms);
    tcpx_status st = hx_wait_timed(x, timeout_ms, &ms);
    if (st != TCPX_OK)
        hx_fail_at(file, line, "%s: tcpx_xfer_wait returned %s after %" PRIu64 " ms (limit %d ms): %s", what,
                   tcpx_strerror(st), ms, timeout_ms, tcpx_last_error());
}

void hx_progress_for(tcpx_session *s, int ms)
{
    uint64_t end = hx_now_ms() + (uint64_t)ms;
    while (hx_now_ms() < end) {
        HX_OK(tcpx_session_progress(s));
        hx_sleep_ms(1);
    }
}

void hx_send_memdesc(tcpx_session *s, tcpx_mem_id id, int fd)
{
    tcpx_memdesc d;
    uint8_t blob[TCPX_MEMDESC_BLOB_SIZE];
    size_t len = 0;
    HX_OK(tcpx_memdesc_get(s, id, &d));
    HX_OK(tcpx_memdesc_serialize(&d, blob, sizeof blob, &len));
    hx_send(fd, blob, len);
}

void hx_recv_memdesc(int fd, tcpx_memdesc *out)
{
    size_t len = 0;
    void *blob = hx_recv(fd, &len, 20000);
    HX_OK(tcpx_memdesc_deserialize(blob, len, out));
    free(blob);
}

size_t hx_wait_notif(tcpx_session *s, const char *peer, void *buf, size_t cap, int timeout_ms)
{
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(timeout_ms);
    char from[TCPX_NAME_MAX];
    for (;;) {
        size_t len = 0;
        tcpx_status st = tcpx_notify_poll(s, from, sizeof from, buf, cap, &len);
        if (st == TCPX_OK) {
            HX_CHECK(!strcmp(from, peer), "notification from \"%s\", expected \"%s\"", from, peer);
            return len;
        }
        if (st != TCPX_IN_PROGRESS)
            HX_FAIL("tcpx_notify_poll returned %s: %s", tcpx_strerror(st), tcpx_last_error());
        HX_CHECK(hx_now_ms() < deadline, "no notification from %s within %d ms", peer, timeout_ms);
        hx_sleep_ms(1);
    }
}

void hx_no_notif(tcpx_session *s)
{
    char from[TCPX_NAME_MAX];
    uint8_t buf[TCPX_NOTIF_MAX];
    size_t len = 0;
    tcpx_status st = tcpx_notify_poll(s, from, sizeof from, buf, sizeof buf, &len);
    HX_CHECK(st == TCPX_IN_PROGRESS, "unexpected notification (%s, %zu bytes from %s)", tcpx_strerror(st), len,
             st == TCPX_OK ? from : "-");
}
