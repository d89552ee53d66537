/* test_net_socket_faults.c - the socket transport under faults: strangers
 * on the listen port (garbage, silence, wrong nonce, half a hello, a flood
 * past the half-open cap), a hand-made peer that breaks the data protocol,
 * peers that close (receive fails with TCPX_ERR_PEER, send_closed turns 1),
 * and close with requests blocked in the I/O threads. */
#include "test_net_socket_util.h"

static void test_strangers(void)
{
    tcpx_net *n = make_net(2, "127.0.0.1");
    if (!n) return;
    tcpx_net_socket_set_hello_timeout(n, 400);
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");

    int garbage = raw_connect(handle), silent = raw_connect(handle), wrong = raw_connect(handle);
    int partial = raw_connect(handle);
    CHECK(garbage >= 0 && silent >= 0 && wrong >= 0 && partial >= 0, "raw connects");
    uint8_t junk[300];
    fill(junk, sizeof junk, 99);
    CHECK(send(garbage, junk, sizeof junk, MSG_NOSIGNAL) == (ssize_t)sizeof junk, "garbage send");
    /* A well-formed hello with the wrong listener nonce. */
    uint8_t hb[SOCK_HELLO_SIZE];
    sock_hello h = {.nonce = 12345, .comm_id = 1, .index = 0, .count = 1};
    sock_hello_encode(&h, hb);
    CHECK(send(wrong, hb, sizeof hb, MSG_NOSIGNAL) == (ssize_t)sizeof hb, "wrong-nonce send");
    CHECK(send(partial, hb, 10, MSG_NOSIGNAL) == 10, "partial send");

    void *sc, *rcm;
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        xfer(n, sc, rcm, 12345, 12345, 5);
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    /* Everyone else gets dropped: junk at once, the silent ones after the
     * hello timeout. Keep calling accept (the listener's only progress). */
    int fds[4] = {garbage, silent, wrong, partial};
    const char *names[4] = {"garbage", "silent", "wrong nonce", "partial hello"};
    int closed[4] = {0};
    uint64_t dl = tcpx_deadline_ms(5000);
    int all = 0;
    while (!all && !tcpx_past(dl)) {
        void *c = NULL;
        CHECK(n->accept(n, l, &c) == 0 && !c, "accept during stranger test");
        all = 1;
        for (int i = 0; i < 4; i++) {
            if (!closed[i]) closed[i] = raw_closed(fds[i]);
            all &= closed[i];
        }
        usleep(1000);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(closed[i], "%s stranger was not dropped", names[i]);
        close(fds[i]);
    }

    /* Flood of silent connections beyond the half-open cap: the oldest are
     * dropped, a good comm still gets through, nothing blocks. */
    tcpx_net_socket_set_hello_timeout(n, 60000);
    enum { FLOOD = SOCK_MAX_PENDING + 20 };
    int flood[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        flood[i] = raw_connect(handle);
        if (i % 16 == 0) {
            void *c = NULL;
            n->accept(n, l, &c);
            CHECK(!c, "comm from a flood");
        }
    }
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        xfer(n, sc, rcm, 777, 777, 6);
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    int dropped = 0;
    for (int i = 0; i < FLOOD; i++) {
        if (flood[i] < 0) continue;
        dropped += raw_closed(flood[i]);
        close(flood[i]);
    }
    CHECK(dropped >= 20, "only %d flood connections dropped", dropped);
    n->close_listen(n, l);
    n->destroy(n);
}

static void test_raw_peer(void)
{
    tcpx_net *n = make_net(1, "127.0.0.1");
    if (!n) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *rcm = NULL;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    sock_handle h;
    CHECK(sock_handle_decode(handle, TCPX_NET_HANDLE_SIZE, &h) == TCPX_OK, "decode our own handle");
    int fd[2];
    for (int i = 0; i < 2; i++) {
        fd[i] = raw_connect(handle);
        uint8_t hb[SOCK_HELLO_SIZE];
        sock_hello hello = {.nonce = h.nonce, .comm_id = 42, .index = (uint32_t)(1 - i), .count = 2};
        sock_hello_encode(&hello, hb);
        CHECK(fd[i] >= 0 && send(fd[i], hb, sizeof hb, MSG_NOSIGNAL) == (ssize_t)sizeof hb, "raw hello %d", i);
    }
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while (!rcm && !tcpx_past(dl)) {
        CHECK(n->accept(n, l, &rcm) == 0, "accept");
        usleep(200);
    }
    CHECK(rcm != NULL, "raw 2-socket comm not accepted");
    if (rcm) {
        /* fd[1] said index 0, fd[0] said index 1. 5000 bytes: 4096 + 904. */
        static uint8_t src[5000], dst[8000];
        fill(src, sizeof src, 77);
        void *r = NULL;
        size_t got = 0;
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &r) == 0 && r, "irecv");
        CHECK(send_hdr(fd[0], 5000) == 0 && send(fd[0], src + 4096, 904, MSG_NOSIGNAL) == 904, "raw part 1");
        CHECK(send_hdr(fd[1], 5000) == 0 && send(fd[1], src, 4096, MSG_NOSIGNAL) == 4096, "raw part 0");
        CHECK(r && wait_req(n, r, &got, DEADLINE_MS) == 0 && got == 5000, "raw message: %zu bytes", got);
        CHECK(diff(src, dst, sizeof src) < 0, "raw message differs");
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &r) == 0 && r, "irecv");
        CHECK(send_hdr(fd[0], 5000) == 0 && send_hdr(fd[1], 6000) == 0, "raw headers");
        int rc = r ? wait_req(n, r, &got, DEADLINE_MS) : -99;
        CHECK(rc == TCPX_ERR_PROTOCOL, "sockets disagreeing on the size: rc %d", rc);
        n->close_recv(n, rcm);
    }
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0) close(fd[i]);
    n->close_listen(n, l);
    n->destroy(n);
}

static void test_peer_close(int socks)
{
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    /* Sender goes away: a posted receive fails with TCPX_ERR_PEER. */
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        static uint8_t dst[1 << 20];
        void *r1 = NULL, *r2 = NULL;
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &r1) == 0 && r1, "irecv");
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &r2) == 0 && r2, "irecv");
        usleep(20000);
        n->close_send(n, sc);
        uint64_t t0 = tcpx_now_ns();
        int rc = wait_req(n, r1, NULL, 5000);
        CHECK(rc == TCPX_ERR_PEER, "recv after the sender closed: rc %d", rc);
        CHECK(strstr(tcpx_last_error(), "closed by peer"), "error text: %s", tcpx_last_error());
        rc = wait_req(n, r2, NULL, 5000);
        CHECK(rc == TCPX_ERR_PEER, "second recv after the sender closed: rc %d", rc);
        CHECK(tcpx_now_ns() - t0 < 2000000000ull, "failure took %llu ms",
              (unsigned long long)((tcpx_now_ns() - t0) / 1000000));
        void *r3 = NULL;
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &r3) == 0 && r3, "irecv on a failed comm");
        CHECK(wait_req(n, r3, NULL, 5000) == TCPX_ERR_PEER, "later recv on a failed comm");
        n->close_recv(n, rcm);
    }
    /* Receiver goes away: send_closed turns 1, sends fail with TCPX_ERR_PEER. */
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        CHECK(n->send_closed(n, sc) == 0, "send_closed on a live comm");
        n->close_recv(n, rcm);
        uint64_t dl = tcpx_deadline_ms(5000);
        while (!n->send_closed(n, sc) && !tcpx_past(dl)) usleep(500);
        CHECK(n->send_closed(n, sc) == 1, "send_closed after the receiver closed");
        size_t big = 4u << 20;
        uint8_t *src = malloc(big);
        fill(src, big, 3);
        int rc = 0;
        dl = tcpx_deadline_ms(5000);
        while (rc == 0 && !tcpx_past(dl)) {
            void *r = NULL;
            CHECK(n->isend(n, sc, src, big, 0, NULL, &r) == 0 && r, "isend to a closed peer");
            if (!r) break;
            rc = wait_req(n, r, NULL, 5000);
        }
        CHECK(rc == TCPX_ERR_PEER, "send to a closed peer: rc %d", rc);
        n->close_send(n, sc);
        free(src);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

/* Close with requests outstanding (blocked in send, blocked in recv, queued):
 * returns promptly and frees everything (the sanitizer builds check leaks). */
static void test_close_outstanding(int socks)
{
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    void *sc2, *rcm2;
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        if (connect_pair(n, n, l, handle, &sc2, &rcm2) == 0) {
            size_t big = 32u << 20;
            uint8_t *src = malloc(big), *dst = malloc(big);
            fill(src, big, 11);
            void *r;
            /* Sends with nobody receiving: threads block in sendmsg. */
            for (int i = 0; i < 5; i++) CHECK(n->isend(n, sc, src, big, 0, NULL, &r) == 0 && r, "isend");
            /* Receives with nobody sending: threads block in recv. */
            for (int i = 0; i < 3; i++) CHECK(n->irecv(n, rcm2, dst, big, 0, NULL, &r) == 0 && r, "irecv");
            /* One message half received, then abandoned on both ends. */
            CHECK(n->isend(n, sc2, src, 1000, 0, NULL, &r) == 0 && r, "isend");
            usleep(50000);
            uint64_t t0 = tcpx_now_ns();
            n->close_send(n, sc);
            n->close_recv(n, rcm);
            n->close_recv(n, rcm2);
            n->close_send(n, sc2);
            CHECK(tcpx_now_ns() - t0 < 2000000000ull, "close took too long");
            free(src);
            free(dst);
        } else {
            n->close_send(n, sc);
            n->close_recv(n, rcm);
        }
    }
    /* A half-done connect is abandoned. */
    void *state = NULL, *c = NULL;
    CHECK(n->connect_send(n, 0, handle, &state, &c) == 0, "connect");
    if (c) n->close_send(n, c);
    if (state) n->connect_abort(n, state);
    n->close_listen(n, l);
    n->destroy(n);
}

int main(void)
{
    uint64_t t0 = tcpx_now_ns();
    for (int s = 1; s <= 4; s += 3) {
        test_peer_close(s);
        test_close_outstanding(s);
    }
    test_strangers();
    test_raw_peer();
    CHECK(atomic_load(&notifies) > 0, "notify never called");
    fprintf(stderr, "test_net_socket_faults: %s (%d failures, %.2f s)\n", failures ? "FAILED" : "ok", failures,
            secs(t0));
    return failures ? 1 : 0;
}
