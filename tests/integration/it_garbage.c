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
 *
 * T is a stranger that speaks the socket transport correctly (it uses the
 * internal net.h API with the endpoint handles decoded from B's blob) but
 * not the session protocol: on every endpoint it sends random bytes, a HELLO
 * and a DHELLO with a wrong token, an RTS as first message, an oversized
 * message, an empty message, and keeps one transport connection silent.
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

#include "core/blob.h"
#include "core/proto.h"
#include "harness.h"
#include "net/net.h"

#define MiB (1024u * 1024u)

static int fd_ab[2], fd_bg[2], fd_ga[2], fd_bt[2], fd_tg[2];
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

/* ------------------------------------------------ transport-level stranger */

/* Open a transport send comm to `handle`; NULL if the peer never finishes
 * the transport handshake within 5 s (it may drop us, which is fine). */
static void *net_connect(tcpx_net *n, const void *handle)
{
    void *state = NULL, *sc = NULL;
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(5000);
    while (!sc) {
        int rc = n->connect_send(n, 0, handle, &state, &sc);
        if (rc) return NULL;
        if (sc) break;
        if (hx_now_ms() >= deadline) {
            if (state) n->connect_abort(n, state);
            return NULL;
        }
        hx_sleep_ms(1);
    }
    return sc;
}

/* Send one message on a new comm, wait for it (bounded), close. */
static void net_send_one(tcpx_net *n, const void *handle, const void *msg, size_t len)
{
    void *sc = net_connect(n, handle);
    if (!sc) return;
    void *mh = NULL, *req = NULL;
    if (n->reg_mr(n, sc, (void *)msg, len ? len : 1, TCPX_NET_PTR_HOST, &mh) == 0 &&
        n->isend(n, sc, (void *)msg, len, 0, mh, &req) == 0 && req) {
        uint64_t deadline = hx_now_ms() + 2000;
        int done = 0;
        size_t sz;
        while (!done && hx_now_ms() < deadline) {
            if (n->test(n, req, &done, &sz)) break;
            if (!done) hx_sleep_ms(1);
        }
    }
    if (mh) n->dereg_mr(n, sc, mh);
    n->close_send(n, sc);
}

static int stranger_round(tcpx_net *n, const tcpx_conninfo *ci, int round, void **idle, int max_idle)
{
    static uint8_t buf[20000];
    int nidle = 0;
    for (unsigned h = 0; h <= ci->channels; h++) {
        const void *handle = ci->handles[h];
        hx_fill(buf, sizeof buf, hx_mix(hx_seed, (uint64_t)(1000 + round * 100 + (int)h)), 0);
        net_send_one(n, handle, buf, 64);

        tcpx_msg m;
        memset(&m, 0, sizeof m);
        uint8_t enc[TCPX_CTRL_MSG_MAX];
        m.type = TCPX_MSG_HELLO;
        m.u.hello.role = TCPX_HELLO_INITIATE;
        m.u.hello.channels = 2;
        m.u.hello.token = ci->token ^ 0x1000000000000001ull;
        m.u.hello.nonce = 42;
        snprintf(m.u.hello.name, sizeof m.u.hello.name, "A");
        m.u.hello.max_chunk = 1u << 20;
        m.u.hello.unx_max = 16;
        m.u.hello.unx_max_bytes = 1u << 20;
        m.payload = buf;
        m.payload_len = 100;
        size_t len = tcpx_msg_encode(&m, enc, sizeof enc);
        HX_CHECK(len > 0, "test bug: HELLO does not encode");
        net_send_one(n, handle, enc, len);

        memset(&m, 0, sizeof m);
        m.type = TCPX_MSG_DHELLO;
        m.u.dhello.token = ci->token + 1;
        m.u.dhello.nonce = 42;
        m.u.dhello.channel = (uint16_t)(h ? h - 1 : 0);
        len = tcpx_msg_encode(&m, enc, sizeof enc);
        net_send_one(n, handle, enc, len);

        memset(&m, 0, sizeof m);
        m.type = TCPX_MSG_RTS;
        m.u.rts.send_id = 1;
        m.u.rts.tag = 1;
        m.u.rts.size = 1u << 30;
        len = tcpx_msg_encode(&m, enc, sizeof enc);
        net_send_one(n, handle, enc, len);

        net_send_one(n, handle, buf, sizeof buf); /* larger than any first message */
        net_send_one(n, handle, buf, 0);          /* empty */
        if (nidle < max_idle) {
            void *sc = net_connect(n, handle); /* transport-connected, silent */
            if (sc) idle[nidle++] = sc;
        }
    }
    return nidle;
}

static int proc_t(void *arg)
{
    (void)arg;
    size_t len;
    void *blob = hx_recv_blob(fd_bt[1], &len);
    tcpx_conninfo *ci = calloc(1, sizeof *ci);
    HX_OK(tcpx_conninfo_decode(blob, len, ci));
    free(blob);
    HX_CHECK(!strcmp(ci->transport, "socket"), "B's blob names transport \"%s\"", ci->transport);
    tcpx_net_opts o = {.socks_per_comm = 1, .peer_timeout_ms = 5000, .bind_addr = "127.0.0.1"};
    tcpx_net *n = NULL;
    HX_CHECK(tcpx_net_socket_create(&o, &n) == 0 && n, "cannot create a socket transport: %s", tcpx_last_error());
    void *idle[2][80];
    int nidle[2];
    nidle[0] = stranger_round(n, ci, 1, idle[0], 80);
    hx_log("round 1: sent transport-level garbage to %u endpoints, %d silent comms open", ci->channels + 1u,
           nidle[0]);
    hx_send_str(fd_tg[0], "go");
    hx_expect_str(fd_bt[1], "round2", 40000);
    nidle[1] = stranger_round(n, ci, 2, idle[1], 80);
    hx_send_str(fd_bt[1], "round2 done");
    hx_expect_str(fd_bt[1], "end", 40000);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < nidle[r]; i++) n->close_send(n, idle[r][i]);
    n->destroy(n);
    free(ci);
    return 0;
}

/* ------------------------------------------------------------- processes */

static int proc_b(void *arg)
{
    (void)arg;
    hx_sess_opts o = {.name = "B", .channels = 3, .connect_timeout_ms = 20000};
    tcpx_session *s = hx_session_ex(&o);
    hx_send_blob(s, fd_ab[1]);
    hx_send_blob(s, fd_bt[0]);
    hx_send_str(fd_bg[0], "listening");
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_session_accept(s, "A");
    HX_CHECK(st == TCPX_OK, "accept(\"A\") with garbage on the listen ports returned %s after %" PRIu64 " ms: %s",
             tcpx_strerror(st), hx_now_ms() - t0, tcpx_last_error());
    hx_log("accepted A after %" PRIu64 " ms despite garbage", hx_now_ms() - t0);
    exchange(s, "A", 21, 0, 3 * MiB + 1);
    /* round 2: garbage while connected; keep progressing meanwhile */
    hx_send_str(fd_bg[0], "round2");
    hx_send_str(fd_bt[0], "round2");
    int fds2[2] = {fd_bg[0], fd_bt[0]};
    for (int k = 0; k < 2; k++) {
        uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(30000);
        while (!hx_poll_readable(fds2[k], 1)) {
            HX_OK(tcpx_session_progress(s));
            HX_CHECK(hx_now_ms() < deadline, "garbage client %c did not finish round 2", k ? 'T' : 'G');
        }
        hx_expect_str(fds2[k], "round2 done", 1000);
    }
    hx_progress_for(s, 100);
    HX_CHECK(tcpx_session_peer_status(s, "A") == TCPX_OK, "peer A not OK after garbage on the listen ports");
    hx_send_str(fd_ab[1], "again");
    exchange(s, "A", 22, 0, 5 * MiB + 7);
    hx_send_str(fd_bg[0], "end");
    hx_send_str(fd_bt[0], "end");
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
    hx_expect_str(fd_tg[1], "go", 40000); /* T's round 1 is done too */
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
    hx_pair(fd_bt);
    hx_pair(fd_tg);
    pid_t p[4];
    p[0] = pid_b = hx_spawn("B", 90, proc_b, NULL);
    p[1] = hx_spawn("G", 90, proc_g, NULL);
    p[2] = hx_spawn("T", 90, proc_t, NULL);
    p[3] = hx_spawn("A", 90, proc_a, NULL);
    hx_wait_all(p, 4, 95000);
    hx_log("PASS");
    return 0;
}
