/* test_net_socket.c - the built-in socket transport (src/net/socket) in one
 * process over loopback: handshakes, transfers of many sizes with every byte
 * checked (1 and 4 sockets per comm), ordering with 200 messages in flight,
 * the request cap, oversized messages, concurrent connects to one listener,
 * address choice, argument errors, and vectored messages (isendv/irecvv)
 * cut into random pieces on either side or both. Faults:
 * test_net_socket_faults.c. */
#include "test_net_socket_util.h"

static void test_sizes(int socks)
{
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        size_t sizes[] = {0, 1, 4095, 4096, 4097, 3 * 4096 + 5, (1u << 20) + 3, 64u << 20};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            xfer(n, sc, rcm, sizes[i], sizes[i], i + 1);
            xfer(n, sc, rcm, sizes[i], sizes[i] + 8191, i + 100);
        }
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

/* 200 messages of distinct sizes and contents kept in flight in order, up to
 * the request cap; the cap itself yields a NULL request. */
static void test_in_flight(int socks)
{
    enum { N = 200 };
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    tcpx_net_props props;
    CHECK(n->get_properties(n, 0, &props) == 0 && props.max_requests == 64, "max_requests %d", props.max_requests);
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        static uint8_t *src[N], *dst[N];
        static size_t sz[N];
        void *sr[N] = {0}, *rr[N] = {0};
        for (int i = 0; i < N; i++) {
            sz[i] = (size_t)(i * 977 % 20000) + (i % 3 == 0 ? 0 : 1);
            src[i] = malloc(sz[i] + 1);
            dst[i] = calloc(1, sz[i] + 1);
            fill(src[i], sz[i], 1000 + (uint64_t)i);
        }
        /* Fill the send side to its cap before the receiver posts anything. */
        int ns = 0, nr = 0, sdone = 0, rdone = 0, capped = 0;
        while (ns < N) {
            void *req = NULL;
            CHECK(n->isend(n, sc, src[ns], sz[ns], 0, NULL, &req) == 0, "isend %d", ns);
            if (!req) break;
            sr[ns++] = req;
        }
        capped = ns;
        CHECK(capped == props.max_requests, "isend accepted %d before the cap", capped);
        uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
        while ((sdone < N || rdone < N) && !tcpx_past(dl)) {
            while (ns < N) {
                void *req = NULL;
                if (n->isend(n, sc, src[ns], sz[ns], 0, NULL, &req) || !req) break;
                sr[ns++] = req;
            }
            while (nr < N) {
                void *req = NULL;
                if (n->irecv(n, rcm, dst[nr], sz[nr] + 1, 0, NULL, &req) || !req) break;
                rr[nr++] = req;
            }
            /* Test in a scrambled order: completion order must not matter. */
            for (int i = sdone; i < ns; i++) {
                int done = 0;
                size_t s = 0;
                if (!sr[i]) continue;
                int rc = n->test(n, sr[i], &done, &s);
                CHECK(rc == 0, "send %d test rc %d", i, rc);
                if (rc || done) sr[i] = NULL;
            }
            while (sdone < ns && !sr[sdone]) sdone++;
            for (int i = nr - 1; i >= rdone; i--) {
                int done = 0;
                size_t s = 0;
                if (!rr[i]) continue;
                int rc = n->test(n, rr[i], &done, &s);
                CHECK(rc == 0, "recv %d test rc %d", i, rc);
                if (done) CHECK(s == sz[i], "message %d: %zu bytes, want %zu", i, s, sz[i]);
                if (rc || done) rr[i] = NULL;
            }
            while (rdone < nr && !rr[rdone]) rdone++;
            usleep(20);
        }
        CHECK(sdone == N && rdone == N, "in flight: %d sends, %d recvs done of %d", sdone, rdone, N);
        for (int i = 0; i < N; i++) {
            long d = diff(src[i], dst[i], sz[i]);
            CHECK(d < 0 && dst[i][sz[i]] == 0, "in-flight message %d (%zu bytes) differs at %ld", i, sz[i], d);
            free(src[i]);
            free(dst[i]);
        }
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

static void test_too_big(int socks)
{
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        static uint8_t src[100000], dst[50000];
        fill(src, sizeof src, 7);
        void *rr = NULL, *sr = NULL, *rr2 = NULL;
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &rr) == 0 && rr, "irecv");
        CHECK(n->isend(n, sc, src, sizeof src, 0, NULL, &sr) == 0 && sr, "isend");
        size_t s;
        int rc = wait_req(n, rr, &s, DEADLINE_MS);
        CHECK(rc == TCPX_ERR_PROTOCOL, "oversized message: rc %d, want TCPX_ERR_PROTOCOL", rc);
        CHECK(strstr(tcpx_last_error(), "exceeds posted receive"), "error text: %s", tcpx_last_error());
        CHECK(n->irecv(n, rcm, dst, sizeof dst, 0, NULL, &rr2) == 0 && rr2, "irecv after failure");
        rc = wait_req(n, rr2, &s, DEADLINE_MS);
        CHECK(rc == TCPX_ERR_PROTOCOL, "request on a broken comm: rc %d", rc);
        /* The send either went into socket buffers or saw the comm close. */
        rc = wait_req(n, sr, &s, DEADLINE_MS);
        CHECK(rc == 0 || rc == TCPX_ERR_PEER, "send of an oversized message: rc %d", rc);
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

/* Two comms connecting at once to one listener (and a third instance with
 * a different socket count): each recv comm pairs with exactly one send comm. */
static void test_concurrent(void)
{
    tcpx_net *a = make_net(4, "127.0.0.1"), *b = make_net(3, "127.0.0.1"), *m = make_net(1, "127.0.0.1");
    if (!a || !b || !m) return;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL;
    CHECK(m->listen(m, 0, handle, &l) == 0, "listen");
    tcpx_net *who[3] = {a, b, a};
    void *st[3] = {0}, *sc[3] = {0}, *rcs[3] = {0};
    int nacc = 0;
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while (!tcpx_past(dl)) {
        int all = 1;
        for (int i = 0; i < 3; i++)
            if (!sc[i]) {
                CHECK(who[i]->connect_send(who[i], 0, handle, &st[i], &sc[i]) == 0, "connect %d", i);
                all &= sc[i] != NULL;
            }
        void *c = NULL;
        CHECK(m->accept(m, l, &c) == 0, "accept");
        if (c) rcs[nacc++] = c;
        if (all && nacc == 3) break;
        usleep(100);
    }
    CHECK(nacc == 3 && sc[0] && sc[1] && sc[2], "concurrent: %d accepted", nacc);
    if (nacc == 3 && sc[0] && sc[1] && sc[2]) {
        /* Send a tag byte pattern on each, find where each one lands. */
        int seen[3] = {0};
        for (int i = 0; i < 3; i++) {
            uint8_t msg[9000];
            memset(msg, 'A' + i, sizeof msg);
            void *r = NULL;
            CHECK(who[i]->isend(who[i], sc[i], msg, sizeof msg, 0, NULL, &r) == 0 && r, "isend %d", i);
            CHECK(r && wait_req(who[i], r, NULL, DEADLINE_MS) == 0, "send %d", i);
        }
        for (int j = 0; j < 3; j++) {
            uint8_t got[9000];
            void *r = NULL;
            size_t s = 0;
            CHECK(m->irecv(m, rcs[j], got, sizeof got, 0, NULL, &r) == 0 && r, "irecv %d", j);
            CHECK(r && wait_req(m, r, &s, DEADLINE_MS) == 0 && s == sizeof got, "recv %d", j);
            int k = got[0] - 'A';
            int same = 1;
            for (size_t x = 0; x < sizeof got; x++) same &= got[x] == got[0];
            CHECK(k >= 0 && k < 3 && same && !seen[k], "recv comm %d got a mixed or duplicate message", j);
            if (k >= 0 && k < 3) seen[k] = 1;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (sc[i]) who[i]->close_send(who[i], sc[i]);
        if (st[i]) who[i]->connect_abort(who[i], st[i]);
        if (rcs[i]) m->close_recv(m, rcs[i]);
    }
    m->close_listen(m, l);
    a->destroy(a);
    b->destroy(b);
    m->destroy(m);
}

static void test_errors(void)
{
    tcpx_net *n = make_net(2, "127.0.0.1");
    if (!n) return;
    tcpx_net_props p;
    int ndev = 0;
    CHECK(n->devices(n, &ndev) == 0 && ndev == 1, "devices %d", ndev);
    CHECK(n->get_properties(n, 0, &p) == 0, "props");
    CHECK(p.ptr_support == TCPX_NET_PTR_HOST && p.max_recvs == 1 && p.offload == TCPX_NET_OFFLOAD_NONE &&
              p.max_message >= (1ull << 40) && p.max_comms > 0 && p.name[0],
          "props content");
    void *mh = NULL;
    char buf[16];
    CHECK(n->reg_mr(n, NULL, buf, sizeof buf, TCPX_NET_PTR_CUDA, &mh) == TCPX_ERR_UNSUPPORTED, "CUDA reg_mr");
    CHECK(n->reg_mr(n, NULL, buf, sizeof buf, TCPX_NET_PTR_HOST, &mh) == 0 && mh, "host reg_mr");
    CHECK(n->dereg_mr(n, NULL, mh) == 0, "dereg_mr");
    CHECK(n->device_handle(n, NULL) == NULL, "device handle");

    uint8_t bad[TCPX_NET_HANDLE_SIZE];
    memset(bad, 0x41, sizeof bad);
    void *state = NULL, *c = NULL;
    CHECK(n->connect_send(n, 0, bad, &state, &c) == TCPX_ERR_INVALID && !state && !c, "bad handle");

    /* Nobody listening: TCPX_ERR_TRANSPORT naming the address. */
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    n->close_listen(n, l);
    int rc = 0;
    uint64_t dl = tcpx_deadline_ms(DEADLINE_MS);
    while (!rc && !c && !tcpx_past(dl)) rc = n->connect_send(n, 0, handle, &state, &c);
    CHECK(rc == TCPX_ERR_TRANSPORT && !state && !c, "connect to a closed port: rc %d", rc);
    CHECK(strstr(tcpx_last_error(), "127.0.0.1:"), "error text: %s", tcpx_last_error());
    if (c) n->close_send(n, c);
    n->destroy(n);

    tcpx_net_opts o = {.socks_per_comm = 1, .bind_addr = "not-an-address"};
    tcpx_net *x = NULL;
    CHECK(tcpx_net_socket_create(&o, &x) == TCPX_ERR_INVALID && !x, "bad bind address");
    o.bind_addr = "127.0.0.1";
    o.socks_per_comm = 0;
    CHECK(tcpx_net_socket_create(&o, &x) == TCPX_ERR_INVALID && !x, "0 sockets per comm");
}

/* Default address choice and IPv6 loopback (skipped if unavailable). */
static void test_addresses(void)
{
    const char *binds[2] = {"", "::1"};
    for (int i = 0; i < 2; i++) {
        tcpx_net *n = make_net(2, binds[i]);
        if (!n) continue;
        uint8_t handle[TCPX_NET_HANDLE_SIZE];
        void *l = NULL, *sc, *rcm;
        if (n->listen(n, 0, handle, &l) != 0) {
            fprintf(stderr, "note: cannot listen on \"%s\" (%s), skipped\n", binds[i], tcpx_last_error());
            n->destroy(n);
            continue;
        }
        if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
            xfer(n, sc, rcm, 100000, 100000, 40 + (uint64_t)i);
            n->close_send(n, sc);
            n->close_recv(n, rcm);
        }
        n->close_listen(n, l);
        n->destroy(n);
    }
}

/* Cut [0, size) of buf into n random pieces (a zero-length one possible). */
static const tcpx_net_iov *si_dummy(void)
{
    static tcpx_net_iov one = {NULL, 0};
    return &one;
}

static int cut(uint8_t *buf, size_t size, tcpx_net_iov *iov, int max, uint64_t *rng)
{
    int n = 0;
    size_t pos = 0;
    while (pos < size && n < max - 1) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t take = (size_t)(*rng >> 33) % (size / 4 + 2);
        if (take > size - pos) take = size - pos;
        iov[n++] = (tcpx_net_iov){buf + pos, take};
        pos += take;
    }
    iov[n++] = (tcpx_net_iov){buf + pos, size - pos};
    return n;
}

/* Messages sent and received as pieces, in every combination with plain
 * buffers; sockets cut each message at 4 KiB part boundaries that fall
 * anywhere in the pieces. */
static void test_vectored(int socks)
{
    tcpx_net *n = make_net(socks, "127.0.0.1");
    if (!n) return;
    CHECK(n->isendv && n->irecvv, "socket transport without vectored messages");
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    uint64_t rng = 0x5EED + (uint64_t)socks;
    if (connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        const size_t sizes[] = {1, 100, 4096, 4097, 65536 + 3, (1u << 20) + 7, 5u << 20};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int how = 0; how < 3; how++) { /* 0: vec->vec, 1: vec->plain, 2: plain->vec */
                size_t size = sizes[i];
                uint8_t *src = malloc(size), *dst = calloc(1, size + 64);
                fill(src, size, i * 3 + (size_t)how);
                tcpx_net_iov si[300], ri[300];
                int ns = cut(src, size, si, 300, &rng), nr = cut(dst, size, ri, 300, &rng);
                void *sr = NULL, *rr = NULL;
                int rc = how == 2 ? n->irecvv(n, rcm, ri, nr, &rr) : how == 1 ? n->irecv(n, rcm, dst, size, 0, NULL, &rr)
                                                                              : n->irecvv(n, rcm, ri, nr, &rr);
                CHECK(rc == 0 && rr, "irecv (how %d, %zu bytes)", how, size);
                rc = how == 2 ? n->isend(n, sc, src, size, 0, NULL, &sr) : n->isendv(n, sc, si, ns, &sr);
                CHECK(rc == 0 && sr, "isend (how %d, %zu bytes)", how, size);
                size_t got = 0, sent = 0;
                if (sr) CHECK(wait_req(n, sr, &sent, DEADLINE_MS) == 0 && sent == size, "send done (%zu)", sent);
                if (rr) CHECK(wait_req(n, rr, &got, DEADLINE_MS) == 0 && got == size, "recv done (%zu)", got);
                long d = diff(src, dst, size);
                CHECK(d < 0, "how %d: %zu-byte message in %d/%d pieces differs at %ld", how, size, ns, nr, d);
                for (size_t k = size; k < size + 64; k++) CHECK(dst[k] == 0, "byte past the message written");
                free(src);
                free(dst);
            }
        /* A vectored receive too small for the message fails the comm. */
        uint8_t a[100], b[50];
        fill(a, sizeof a, 9);
        tcpx_net_iov small[2] = {{b, 20}, {b + 20, 30}};
        void *sr = NULL, *rr = NULL;
        CHECK(n->irecvv(n, rcm, small, 2, &rr) == 0 && rr, "irecvv");
        CHECK(n->isend(n, sc, a, sizeof a, 0, NULL, &sr) == 0 && sr, "isend");
        size_t got = 0;
        CHECK(rr && wait_req(n, rr, &got, DEADLINE_MS) == TCPX_ERR_PROTOCOL, "100 bytes into 50 of pieces: refused");
        if (sr) wait_req(n, sr, &got, DEADLINE_MS);
        tcpx_net_iov bad = {NULL, 5};
        CHECK(n->isendv(n, sc, &bad, 1, &sr) == TCPX_ERR_INVALID, "NULL piece refused");
        CHECK(n->isendv(n, sc, si_dummy(), 0, &sr) == TCPX_ERR_INVALID, "no piece refused");
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

int main(void)
{
    uint64_t t0 = tcpx_now_ns();
    test_errors();
    for (int s = 1; s <= 4; s += 3) {
        test_sizes(s);
        test_in_flight(s);
        test_too_big(s);
        test_vectored(s);
        fprintf(stderr, "%d socket(s) per comm: done at %.2f s\n", s, secs(t0));
    }
    test_concurrent();
    test_addresses();
    CHECK(atomic_load(&notifies) > 0, "notify never called");
    fprintf(stderr, "test_net_socket: %s (%d failures, %.2f s)\n", failures ? "FAILED" : "ok", failures, secs(t0));
    return failures ? 1 : 0;
}
