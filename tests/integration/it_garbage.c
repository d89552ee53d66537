/*
 * it_garbage - strangers on the listen ports do not stop a real peer.
 *
 * G finds every listening TCP port of process B (its socket inodes from
 * /proc/B/fd matched against /proc/B/net/tcp{,6} rows in state LISTEN) and,
 * on each port: writes 64 KiB of random bytes and closes; writes 1 byte and
 * closes; writes a header-like prefix with huge lengths and closes; connects
 * and resets (SO_LINGER 0); connects and stays silent; writes 100 bytes and
 * stays open. Then the real client A connects while the silent connections
 * are still open; B's accept must accept it and transfers must work. A second
 * round of garbage hits the ports while A and B are connected; the
 * connection must be unaffected.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024u * 1024u)

static int fd_ab[2], fd_bg[2], fd_ga[2];
static pid_t pid_b;

static void exchange(tcpx_session *s, const char *peer, uint64_t tag, int lower, size_t size)
{
    hx_region snd, rcv;
    uint64_t guard = hx_mix(hx_seed, tag + 5);
    hx_region_init(s, &snd, size + 100, 1);
    hx_region_init(s, &rcv, size + 100, guard);
    uint64_t sseed = hx_mix(hx_seed, tag * 2 + (uint64_t)lower), rseed = hx_mix(hx_seed, tag * 2 + (uint64_t)!lower);
    hx_fill(snd.ptr + 3, size, sseed, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, peer, &x));
    HX_OK(tcpx_xfer_post_recv(x, rcv.id, 60, size, tag));
    HX_OK(tcpx_xfer_post_send(x, snd.id, 3, size, tag));
    HX_WAIT_OK(x, 30000, "exchange");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("exchanged bytes", rcv.ptr + 60, size, rseed, 0);
    HX_CHECK_PATTERN("guard before", rcv.ptr, 60, guard, 0);
    HX_CHECK_PATTERN("guard after", rcv.ptr + 60 + size, 40, guard, 60 + size);
    hx_region_fini(s, &snd);
    hx_region_fini(s, &rcv);
}

/* ------------------------------------------------------------ port finder */

static int socket_inodes(pid_t pid, unsigned long *ino, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    HX_CHECK(d, "opendir %s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char lp[384], target[128];
        snprintf(lp, sizeof lp, "%s/%s", path, e->d_name);
        ssize_t r = readlink(lp, target, sizeof target - 1);
        if (r <= 0) continue;
        target[r] = 0;
        unsigned long i;
        if (sscanf(target, "socket:[%lu]", &i) == 1) ino[n++] = i;
    }
    closedir(d);
    return n;
}

static int listen_ports(pid_t pid, int *ports, int max)
{
    unsigned long ino[1024];
    int nino = socket_inodes(pid, ino, 1024);
    int n = 0;
    static const char *tables[] = {"tcp", "tcp6"};
    for (int t = 0; t < 2; t++) {
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, tables[t]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(line, sizeof line, f)) {
            fclose(f);
            continue;
        }
        while (fgets(line, sizeof line, f) && n < max) {
            char local[64], remote[64];
            unsigned st;
            unsigned long inode;
            if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st, &inode) != 4)
                continue;
            if (st != 0x0A) continue; /* TCP_LISTEN */
            int mine = 0;
            for (int i = 0; i < nino; i++) mine |= ino[i] == inode;
            if (!mine) continue;
            char *colon = strrchr(local, ':');
            if (!colon) continue;
            ports[n++] = (int)strtol(colon + 1, NULL, 16);
        }
        fclose(f);
    }
    return n;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    HX_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    HX_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to B's port %d: %s", port, strerror(errno));
    return fd;
}

static void send_some(int fd, const void *buf, size_t len)
{
    /* a stranger's write may fail once B drops it; that is fine */
    const uint8_t *p = buf;
    while (len) {
        ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
        if (r <= 0) return;
        p += r;
        len -= (size_t)r;
    }
}

static int garbage_round(int round, const int *ports, int nports, int *keep, int nkeep_max)
{
    static uint8_t junk[64 * 1024];
    int nkeep = 0;
    for (int i = 0; i < nports; i++) {
        int port = ports[i];
        hx_fill(junk, sizeof junk, hx_mix(hx_seed, (uint64_t)(round * 100 + i)), 0);
        int fd = tcp_connect(port);
        send_some(fd, junk, sizeof junk);
        close(fd);

        fd = tcp_connect(port);
        send_some(fd, junk, 1);
        close(fd);

        /* looks like a control message header (version 1, op 1) with huge
         * lengths, then stops */
        uint8_t hdr[32];
        memset(hdr, 0xff, sizeof hdr);
        hdr[0] = 1;
        hdr[1] = 1;
        fd = tcp_connect(port);
        send_some(fd, hdr, sizeof hdr);
        close(fd);

        fd = tcp_connect(port);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        send_some(fd, junk, 7);
        close(fd); /* RST */

        if (nkeep + 2 <= nkeep_max) {
            keep[nkeep++] = tcp_connect(port); /* silent */
            fd = tcp_connect(port);
            send_some(fd, junk + 1000, 100); /* a partial something, then silence */
            keep[nkeep++] = fd;
        }
    }
    return nkeep;
}

/* ------------------------------------------------------------- processes */

static int proc_b(void *arg)
{
    (void)arg;
    hx_sess_opts o = {.name = "B", .channels = 3, .connect_timeout_ms = 20000};
    tcpx_session *s = hx_session_ex(&o);
    hx_send_blob(s, fd_ab[1]);
    hx_send_str(fd_bg[0], "listening");
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_accept(s, "A");
    HX_CHECK(st == TCPX_OK, "accept(\"A\") with garbage on the listen ports returned %s after %" PRIu64 " ms: %s",
             tcpx_strerror(st), hx_now_ms() - t0, tcpx_last_error());
    hx_log("accepted A after %" PRIu64 " ms despite garbage", hx_now_ms() - t0);
    exchange(s, "A", 21, 0, 3 * MiB + 1);
    /* round 2: garbage while connected; keep progressing meanwhile */
    hx_send_str(fd_bg[0], "round2");
    uint64_t deadline = hx_now_ms() + 30000;
    while (!hx_poll_readable(fd_bg[0], 1)) {
        HX_OK(tcpx_session_progress(s));
        HX_CHECK(hx_now_ms() < deadline, "garbage client did not finish round 2");
    }
    hx_expect_str(fd_bg[0], "round2 done", 1000);
    hx_progress_for(s, 100);
    HX_CHECK(tcpx_session_peer_status(s, "A") == TCPX_OK, "peer A not OK after garbage on the listen ports");
    hx_send_str(fd_ab[1], "again");
    exchange(s, "A", 22, 0, 5 * MiB + 7);
    hx_send_str(fd_bg[0], "end");
    hx_expect_str(fd_ab[1], "end", 30000);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_g(void *arg)
{
    (void)arg;
    hx_expect_str(fd_bg[1], "listening", 30000);
    int ports[64];
    int n = listen_ports(pid_b, ports, 64);
    HX_CHECK(n > 0, "found no listening TCP port of process B (pid %d)", (int)pid_b);
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", ports[i]);
    hx_log("B listens on %d port(s): %s", n, list);
    int keep[256];
    int nkeep = garbage_round(1, ports, n, keep, 256);
    hx_send_str(fd_ga[0], "go");
    hx_expect_str(fd_bg[1], "round2", 40000);
    for (int i = 0; i < nkeep; i++) close(keep[i]);
    nkeep = garbage_round(2, ports, n, keep, 256);
    hx_send_str(fd_bg[1], "round2 done");
    hx_expect_str(fd_bg[1], "end", 40000);
    for (int i = 0; i < nkeep; i++) close(keep[i]);
    return 0;
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = hx_session("A", 2, 0);
    hx_expect_str(fd_ga[1], "go", 30000);
    hx_connect_to(s, "B", fd_ab[0]);
    exchange(s, "B", 21, 1, 3 * MiB + 1);
    hx_expect_str(fd_ab[0], "again", 40000);
    exchange(s, "B", 22, 1, 5 * MiB + 7);
    hx_send_str(fd_ab[0], "end");
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("garbage", 100);
    hx_pair(fd_ab);
    hx_pair(fd_bg);
    hx_pair(fd_ga);
    pid_t p[3];
    p[0] = pid_b = hx_spawn("B", 90, proc_b, NULL);
    p[1] = hx_spawn("G", 90, proc_g, NULL);
    p[2] = hx_spawn("A", 90, proc_a, NULL);
    hx_wait_all(p, 3, 95000);
    hx_log("PASS");
    return 0;
}
