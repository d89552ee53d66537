/* fault_shim.c - faults injected into a process's TCP traffic, for tests.
 *
 * Built as libtcpx_fault.so and loaded with LD_PRELOAD. It wraps send,
 * sendmsg, recv and recvmsg; calls on sockets other than TCP (the tests'
 * AF_UNIX bootstrap pairs) and MSG_PEEK reads pass through untouched. It is
 * inert until armed: by TCPX_FAULT=<spec> in the environment at load, or at
 * run time by the test program calling tcpx_fault_arm(spec) (found with
 * dlsym), which lets one process of a pair fault after its connections are
 * made. Byte counts run per socket from the moment of arming.
 *
 *   partial      every send and receive moves 1..7 bytes at most
 *   eintr        half the calls fail with EINTR before doing anything
 *   eagain       half the calls fail with EAGAIN before doing anything
 *   reset:N      past N bytes sent on a socket, its calls fail with
 *                ECONNRESET and the socket is shut down both ways
 *   stall:N      past N bytes sent on a socket, the sending thread sleeps
 *                for ever (the process stays alive, its kernel ACKs)
 *   flip:N       byte N of every socket's sent stream goes out with one bit
 *                flipped
 *   close:N      a socket is shut down both ways once N bytes were sent on
 *                it (its peer sees it closed half-way through a message)
 *
 * tcpx_fault_fired() says how many times the fault took effect.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum mode { F_NONE, F_PARTIAL, F_EINTR, F_EAGAIN, F_RESET, F_STALL, F_FLIP, F_CLOSE };

#define FD_MAX 65536

static atomic_int g_mode;
static uint64_t g_n;
static atomic_ullong g_sent[FD_MAX];
static atomic_uchar g_broken[FD_MAX];
static atomic_ulong g_fired;
static atomic_uint g_rng = 0x9E3779B9u;

static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);

static void resolve(void)
{
    if (real_send) return;
    real_sendmsg = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    real_recvmsg = (ssize_t(*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
    real_send = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
}

static unsigned rnd(void)
{
    unsigned x = atomic_fetch_add(&g_rng, 0x6D2B79F5u);
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    return x;
}

static int is_tcp(int fd)
{
    int v = 0;
    socklen_t l = sizeof v;
    if (fd < 0 || fd >= FD_MAX) return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) || (v != AF_INET && v != AF_INET6)) return 0;
    l = sizeof v;
    return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) && v == SOCK_STREAM;
}

int tcpx_fault_arm(const char *spec);
unsigned long tcpx_fault_fired(void);

int tcpx_fault_arm(const char *spec)
{
    static const struct {
        const char *name;
        int mode, takes_n;
    } modes[] = {{"partial", F_PARTIAL, 0}, {"eintr", F_EINTR, 0}, {"eagain", F_EAGAIN, 0}, {"reset", F_RESET, 1},
                 {"stall", F_STALL, 1},     {"flip", F_FLIP, 1},   {"close", F_CLOSE, 1}};
    resolve();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        size_t k = strlen(modes[i].name);
        if (strncmp(spec, modes[i].name, k)) continue;
        char *end = NULL;
        uint64_t n = 0;
        if (modes[i].takes_n) {
            if (spec[k] != ':') break;
            n = strtoull(spec + k + 1, &end, 0);
            if (!end || *end || end == spec + k + 1) break;
        } else if (spec[k]) {
            break;
        }
        for (int fd = 0; fd < FD_MAX; fd++) atomic_store(&g_sent[fd], 0), atomic_store(&g_broken[fd], 0);
        g_n = n;
        atomic_store(&g_fired, 0);
        atomic_store(&g_mode, modes[i].mode);
        return 0;
    }
    fprintf(stderr, "tcpx_fault: bad fault spec \"%s\" (partial, eintr, eagain, reset:N, stall:N, flip:N, close:N)\n",
            spec);
    return -1;
}

unsigned long tcpx_fault_fired(void) { return atomic_load(&g_fired); }

__attribute__((constructor)) static void fault_init(void)
{
    resolve();
    const char *spec = getenv("TCPX_FAULT");
    if (spec && *spec && tcpx_fault_arm(spec)) abort();
}

/* A fault that acts before the call: EINTR/EAGAIN storms, broken sockets. */
static int before(int fd)
{
    int m = atomic_load(&g_mode);
    if ((m == F_EINTR || m == F_EAGAIN) && (rnd() & 1)) {
        atomic_fetch_add(&g_fired, 1);
        errno = m == F_EINTR ? EINTR : EAGAIN;
        return -1;
    }
    if (atomic_load(&g_broken[fd])) {
        errno = m == F_RESET ? ECONNRESET : EPIPE;
        return -1;
    }
    return 0;
}

static void stall_forever(void)
{
    atomic_fetch_add(&g_fired, 1);
    for (;;) {
        struct timespec t = {1, 0};
        nanosleep(&t, NULL);
    }
}

/* Sending `len` bytes on fd: how many may go (less when a fault's offset
 * falls inside), and whether a fault acts at that offset first. */
static size_t send_room(int fd, size_t len)
{
    int m = atomic_load(&g_mode);
    uint64_t sent = atomic_load(&g_sent[fd]);
    if (m == F_PARTIAL) {
        size_t k = 1 + rnd() % 7;
        return len < k ? len : k;
    }
    if (m == F_RESET || m == F_STALL || m == F_CLOSE) {
        if (sent >= g_n) return 0;
        if (sent + len > g_n) return (size_t)(g_n - sent);
    }
    return len;
}

/* Nothing more may go on fd: act out the fault. Returns the call's result. */
static ssize_t at_limit(int fd)
{
    int m = atomic_load(&g_mode);
    if (m == F_STALL) stall_forever();
    atomic_fetch_add(&g_fired, 1);
    atomic_store(&g_broken[fd], 1);
    shutdown(fd, SHUT_RDWR);
    errno = m == F_RESET ? ECONNRESET : EPIPE;
    return -1;
}

/* Send a flat copy of the bytes, with the bit at stream offset g_n flipped
 * when it is among them. */
static ssize_t send_flat(int fd, const struct iovec *iov, size_t niov, size_t len, int flags)
{
    uint64_t sent = atomic_load(&g_sent[fd]);
    uint8_t *b = malloc(len ? len : 1);
    if (!b) {
        errno = ENOMEM;
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < niov && o < len; i++) {
        size_t k = iov[i].iov_len < len - o ? iov[i].iov_len : len - o;
        memcpy(b + o, iov[i].iov_base, k);
        o += k;
    }
    int flipped = atomic_load(&g_mode) == F_FLIP && g_n >= sent && g_n < sent + len;
    if (flipped) b[g_n - sent] ^= (uint8_t)(1u << (g_n % 8));
    ssize_t r = real_send(fd, b, len, flags);
    free(b);
    if (flipped && r > (ssize_t)(g_n - sent)) atomic_fetch_add(&g_fired, 1);
    return r;
}

static ssize_t do_send(int fd, const struct iovec *iov, size_t niov, int flags, const struct msghdr *orig)
{
    if (before(fd)) return -1;
    size_t len = 0;
    for (size_t i = 0; i < niov; i++) len += iov[i].iov_len;
    size_t room = send_room(fd, len);
    if (!room && len) return at_limit(fd);
    ssize_t r;
    int m = atomic_load(&g_mode);
    if (room < len || m == F_FLIP) r = send_flat(fd, iov, niov, room, flags);
    else r = orig ? real_sendmsg(fd, orig, flags) : real_send(fd, iov[0].iov_base, len, flags);
    if (r > 0) atomic_fetch_add(&g_sent[fd], (unsigned long long)r);
    return r;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    resolve();
    if (!atomic_load(&g_mode) || !is_tcp(fd)) return real_send(fd, buf, len, flags);
    struct iovec v = {(void *)buf, len};
    return do_send(fd, &v, 1, flags, NULL);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    resolve();
    if (!atomic_load(&g_mode) || !is_tcp(fd) || msg->msg_controllen) return real_sendmsg(fd, msg, flags);
    return do_send(fd, msg->msg_iov, msg->msg_iovlen, flags, msg);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    resolve();
    if (!atomic_load(&g_mode) || (flags & MSG_PEEK) || !is_tcp(fd)) return real_recv(fd, buf, len, flags);
    if (before(fd)) return -1;
    if (atomic_load(&g_mode) == F_PARTIAL && len > 1) len = 1 + rnd() % (len < 7 ? len : 7);
    return real_recv(fd, buf, len, flags);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    resolve();
    if (!atomic_load(&g_mode) || (flags & MSG_PEEK) || !is_tcp(fd)) return real_recvmsg(fd, msg, flags);
    if (before(fd)) return -1;
    if (atomic_load(&g_mode) != F_PARTIAL) return real_recvmsg(fd, msg, flags);
    /* 1..7 bytes: into the first non-empty piece only */
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        size_t n = msg->msg_iov[i].iov_len;
        if (!n) continue;
        return real_recv(fd, msg->msg_iov[i].iov_base, n < 7 ? 1 + rnd() % n : 1 + rnd() % 7, flags);
    }
    return real_recvmsg(fd, msg, flags);
}
