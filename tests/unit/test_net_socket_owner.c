/*
 * test_net_socket_owner - what the socket transport promises its owner
 * about who does the work.
 *
 *   polling: where polling callers move large parts (forced on here, as on a
 *      machine of one or two cores), a caller that says it polls moves a
 *      6 MiB message itself: after its posts, with nobody polling for 150 ms,
 *      the message is not finished (its sockets wait for the caller, not for
 *      an I/O thread); its polls then finish it. A message posted while
 *      polling and then handed over with arm() is finished by the I/O
 *      threads alone (a caller that no longer polls moves no large part in
 *      test()). Every byte checked.
 *   serve: while the owner says it is idle, a completion found by an I/O
 *      thread calls serve() first and notifies after, or not at all when
 *      serve() returns 1; while it is not idle the notification comes at
 *      once and serve() is not called. A serve() that closes the comm (its
 *      detach runs on the I/O thread itself) returns.
 */
#include <pthread.h>

#include "test_net_socket_util.h"

#define BIG (6u << 20)

static uint8_t *random_msg(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n);
    fill(p, n, seed);
    return p;
}

/* Poll both requests (test()) until done or the deadline; 0 when both ended well. */
static int poll_pair(tcpx_net *n, void *sr, void *rr, int ms)
{
    int sdone = 0, rdone = 0;
    uint64_t dl = tcpx_deadline_ms(ms);
    while (!sdone || !rdone) {
        size_t sz;
        if (!sdone && n->test(n, sr, &sdone, &sz)) return -1;
        if (!rdone && n->test(n, rr, &rdone, &sz)) return -1;
        if (tcpx_past(dl)) return 1;
    }
    return 0;
}

static void test_polling(void)
{
    tcpx_net *n = make_net(1, "127.0.0.1");
    if (!n) return;
    ((sock_net *)n)->pollers_move_all = 1;
    uint8_t handle[TCPX_NET_HANDLE_SIZE];
    void *l = NULL, *sc, *rcm;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    CHECK(n->caller_polls != NULL, "socket transport without caller_polls");
    if (n->caller_polls && connect_pair(n, n, l, handle, &sc, &rcm) == 0) {
        uint8_t *src = random_msg(BIG, 1), *dst = calloc(1, BIG);
        void *sr = NULL, *rr = NULL;
        n->caller_polls(n, 1);
        CHECK(n->irecv(n, rcm, dst, BIG, 0, NULL, &rr) == 0 && rr, "irecv");
        CHECK(n->isend(n, sc, src, BIG, 0, NULL, &sr) == 0 && sr, "isend");
        usleep(150 * 1000);
        int sdone = 1, rdone = 1;
        size_t sz;
        if (sr) CHECK(n->test(n, sr, &sdone, &sz) == 0 && !sdone, "send finished with nobody polling (done %d)", sdone);
        if (rr) CHECK(n->test(n, rr, &rdone, &sz) == 0 && !rdone, "receive finished with nobody polling (done %d)", rdone);
        if (sr && rr && !sdone && !rdone) {
            CHECK(poll_pair(n, sr, rr, DEADLINE_MS) == 0, "the polling caller did not finish a %u-byte message", BIG);
            long d = diff(src, dst, BIG);
            CHECK(d < 0, "message moved by the polling caller differs at byte %ld", d);
        }
        /* Posted while polling, then handed over. */
        fill(src, BIG, 2);
        memset(dst, 0, BIG);
        sr = rr = NULL;
        CHECK(n->irecv(n, rcm, dst, BIG, 0, NULL, &rr) == 0 && rr, "irecv");
        CHECK(n->isend(n, sc, src, BIG, 0, NULL, &sr) == 0 && sr, "isend");
        n->caller_polls(n, 0);
        n->arm(n);
        if (sr && rr) {
            CHECK(poll_pair(n, sr, rr, DEADLINE_MS) == 0, "the I/O threads did not finish a handed-over message");
            long d = diff(src, dst, BIG);
            CHECK(d < 0, "message finished by the I/O threads differs at byte %ld", d);
        }
        free(src);
        free(dst);
        n->close_send(n, sc);
        n->close_recv(n, rcm);
    }
    n->close_listen(n, l);
    n->destroy(n);
}

/* ------------------------------------------------------------ serve hook */

static struct {
    atomic_int idle, calls, notes_at_entry, reply, close_in_serve, closed;
    tcpx_net *n;
    void *rcm;
} own;

static atomic_int notes;

static void count_note(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notes, 1);
}

static int owner_idle(void *arg)
{
    (void)arg;
    return atomic_load(&own.idle);
}

static int owner_serve(void *arg)
{
    (void)arg;
    atomic_store(&own.notes_at_entry, atomic_load(&notes));
    if (atomic_load(&own.close_in_serve) && !atomic_load(&own.closed)) {
        own.n->close_recv(own.n, own.rcm);
        atomic_store(&own.closed, 1);
    }
    atomic_fetch_add(&own.calls, 1);
    return atomic_load(&own.reply);
}

/* Wait until *v differs from old (deadline); 1 when it did. */
static int wait_change(atomic_int *v, int old, int ms)
{
    uint64_t dl = tcpx_deadline_ms(ms);
    while (atomic_load(v) == old)
        if (tcpx_past(dl)) return 0;
        else usleep(100);
    return 1;
}

/* One 4 KiB message from s to r whose receive an I/O thread of r finishes:
 * the receive is posted first and armed, so the bytes that the send puts on
 * the socket are read by the poller. Returns r's notification count from
 * before the send (only r's receive notifies r). */
static int one_message(tcpx_net *s, void *sc, tcpx_net *r, void *rcm, uint8_t *src, uint8_t *dst, uint64_t seed,
                       void **rr)
{
    fill(src, 4096, seed);
    memset(dst, 0, 4096);
    void *sr = NULL;
    *rr = NULL;
    CHECK(r->irecv(r, rcm, dst, 4096, 0, NULL, rr) == 0 && *rr, "irecv");
    r->arm(r);
    int base = atomic_load(&notes);
    CHECK(s->isend(s, sc, src, 4096, 0, NULL, &sr) == 0 && sr, "isend");
    size_t sz;
    CHECK(sr && wait_req(s, sr, &sz, DEADLINE_MS) == 0, "4 KiB send");
    return base;
}

static void test_serve(void)
{
    tcpx_net_opts o = {.socks_per_comm = 1,
                       .peer_timeout_ms = 10000,
                       .bind_addr = "127.0.0.1",
                       .notify = count_note,
                       .idle = owner_idle,
                       .serve = owner_serve,
                       .notify_arg = NULL};
    tcpx_net *n = NULL, *s = make_net(1, "127.0.0.1"); /* n receives (the owner under test), s sends */
    CHECK(tcpx_net_socket_create(&o, &n) == 0 && n, "create");
    if (!n || !s) {
        if (n) n->destroy(n);
        if (s) s->destroy(s);
        return;
    }
    uint8_t handle[TCPX_NET_HANDLE_SIZE], src[4096], dst[4096];
    void *l = NULL, *sc, *rcm, *rr;
    CHECK(n->listen(n, 0, handle, &l) == 0, "listen");
    if (connect_pair(s, n, l, handle, &sc, &rcm) == 0) {
        own.n = n;
        own.rcm = rcm;
        size_t sz;
        /* idle, serve answers 0: serve, then one notification */
        atomic_store(&own.idle, 1);
        atomic_store(&own.reply, 0);
        int calls = atomic_load(&own.calls);
        int base = one_message(s, sc, n, rcm, src, dst, 11, &rr);
        CHECK(wait_change(&own.calls, calls, DEADLINE_MS), "serve not called for an idle owner");
        CHECK(wait_change(&notes, base, DEADLINE_MS), "no notification after serve returned 0");
        CHECK(atomic_load(&own.notes_at_entry) == base, "notified before serve ran (%d, then %d)", base,
              atomic_load(&own.notes_at_entry));
        CHECK(rr && wait_req(n, rr, &sz, DEADLINE_MS) == 0 && diff(src, dst, 4096) < 0, "message 1 bytes");
        /* idle, serve answers 1: no notification */
        atomic_store(&own.reply, 1);
        calls = atomic_load(&own.calls);
        base = one_message(s, sc, n, rcm, src, dst, 12, &rr);
        CHECK(wait_change(&own.calls, calls, DEADLINE_MS), "serve not called for an idle owner");
        usleep(50 * 1000);
        CHECK(atomic_load(&notes) == base, "notified although serve saw to everything (%d -> %d)", base,
              atomic_load(&notes));
        CHECK(rr && wait_req(n, rr, &sz, DEADLINE_MS) == 0 && diff(src, dst, 4096) < 0, "message 2 bytes");
        /* not idle: notified at once, serve not called */
        atomic_store(&own.idle, 0);
        calls = atomic_load(&own.calls);
        base = one_message(s, sc, n, rcm, src, dst, 13, &rr);
        CHECK(wait_change(&notes, base, DEADLINE_MS), "no notification for a busy owner");
        usleep(20 * 1000);
        CHECK(atomic_load(&own.calls) == calls, "serve called for a busy owner");
        CHECK(rr && wait_req(n, rr, &sz, DEADLINE_MS) == 0 && diff(src, dst, 4096) < 0, "message 3 bytes");
        /* serve closes the receiving comm on the I/O thread */
        atomic_store(&own.idle, 1);
        atomic_store(&own.reply, 0);
        atomic_store(&own.close_in_serve, 1);
        one_message(s, sc, n, rcm, src, dst, 14, &rr); /* rr goes with the comm */
        CHECK(wait_change(&own.closed, 0, DEADLINE_MS), "a comm closed from serve did not return (the I/O thread waits for itself)");
        atomic_store(&own.idle, 0);
        if (!atomic_load(&own.closed)) _exit(1); /* an I/O thread is stuck: nothing can be torn down */
        s->close_send(s, sc);
    }
    n->close_listen(n, l);
    n->destroy(n);
    s->destroy(s);
}

int main(void)
{
    uint64_t t0 = tcpx_now_ns();
    test_polling();
    test_serve();
    fprintf(stderr, "test_net_socket_owner: %s (%d failures, %.2f s)\n", failures ? "FAILED" : "ok", failures,
            secs(t0));
    return failures ? 1 : 0;
}
