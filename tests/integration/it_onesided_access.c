/*
 * it_onesided_access - refused and withdrawn one-sided operations.
 *
 * A initiates, B is the passive target (a main region M of 8 MiB and a
 * region R of 64 MiB).
 *   1. refused by B, each answered TCPX_ERR_ACCESS with a sentence naming
 *      the block, and followed by a good WRITE and READ that must work:
 *      unknown mem id, wrong key, out of bounds (a descriptor claiming more
 *      than the region; an offset near 2^64), one bad block in
 *      a list of 10 (nothing of the list is written). B's region must hold
 *      exactly the good writes afterwards. A failed transfer then refuses
 *      every further post (TCPX_ERR_INVALID) and keeps its first error; a
 *      released handle is refused too (not in sanitizer builds).
 *   2. refused by A before anything is posted: unknown local id, local range
 *      out, remote range outside the descriptor, NULL descriptor, too long a
 *      notification, too many blocks, NULL arguments.
 *   3. B deregisters R while A READs all of it: the deregistration waits for
 *      the read, which completes with every byte right; afterwards reads of R
 *      are refused (not registered).
 *   4. release of in-flight transfers: a 48 MiB WRITE released at once has
 *      every byte at B when release returns; a 48 MiB READ released at once
 *      never touches A's memory after release returns.
 *   5. the inbox bound: B polls nothing while A sends 65536 notifications;
 *      a WRITE with a notification is then refused (TCPX_ERR_NOMEM, saying
 *      the inbox is full) and its notification never delivered; B takes all
 *      65536 in order, and the next WRITE with a notification works.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB (1024u * 1024u)
#define T_WAIT 30000
#define MREG (8u * MiB)
#define RREG (64u * MiB)

static int fds[2];

static tcpx_session *make(const char *name)
{
    hx_sess_opts o = {.name = name, .channels = 4, .chunk = 512 * 1024, .peer_timeout_ms = 10000};
    return hx_session_ex(&o);
}

/* The good write of round k: 4000 bytes at 8192 * k of B's M. */
static uint64_t good_seed(int k) { return hx_mix(hx_seed, 0x600D + (uint64_t)k); }

/* A: a WRITE and a READ that must work (B keeps serving after a refusal). */
static void good_ops(tcpx_session *s, const hx_region *loc, const tcpx_memdesc *m, int k)
{
    hx_fill(loc->ptr + 100, 4000, good_seed(k), 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_write(x, loc->id, 100, m, (uint64_t)8192 * (uint64_t)k, 4000));
    HX_WAIT_OK(x, T_WAIT, "a good write after a refusal");
    tcpx_xfer_release(x);
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_read(x, loc->id, 2 * MiB, m, (uint64_t)8192 * (uint64_t)k, 4000));
    HX_WAIT_OK(x, T_WAIT, "read back the good write");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("good write read back", loc->ptr + 2 * MiB, 4000, good_seed(k), 0);
}

/* A: one refused list; the error must be ACCESS and name `want`. */
static void expect_refused(tcpx_session *s, int write, size_t n, const tcpx_block *b, const char *want,
                           const char *what)
{
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    uint8_t note = 1;
    tcpx_notif_msg nm = {&note, 1};
    if (write) HX_OK(tcpx_xfer_post_write_list(x, n, b, &nm));
    else HX_OK(tcpx_xfer_post_read_list(x, n, b, NULL));
    uint64_t ms = 0;
    tcpx_status st = hx_wait_timed(x, T_WAIT, &ms);
    HX_CHECK(st == TCPX_ERR_ACCESS, "%s: %s, expected TCPX_ERR_ACCESS: %s", what, tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(strstr(tcpx_last_error(), want), "%s: error \"%s\" does not say \"%s\"", what, tcpx_last_error(), want);
    HX_CHECK(ms < (uint64_t)HX_MS(2000), "%s: refusal took %" PRIu64 " ms", what, ms);
    HX_EXPECT(tcpx_xfer_test(x), TCPX_ERR_ACCESS);
    tcpx_xfer_release(x);
    HX_OK(tcpx_session_peer_status(s, "B"));
}

/* A: a failed transfer takes no more posts of any kind, keeps its first
 * error; a released handle is refused (where no sanitizer watches). */
static void failed_xfer_contract(tcpx_session *s, const hx_region *loc, const tcpx_memdesc *m)
{
    tcpx_memdesc d = *m;
    d.id = m->id + 1000;
    tcpx_block b = {loc->id, 0, &d, 0, 100};
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_write_list(x, 1, &b, NULL));
    HX_EXPECT(tcpx_xfer_wait(x, T_WAIT), TCPX_ERR_ACCESS);
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    HX_CHECK(strstr(tcpx_last_error(), "already failed"), "post on a failed transfer: %s", tcpx_last_error());
    HX_EXPECT(tcpx_xfer_post_read_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_post_send(x, loc->id, 0, 1, 7), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_post_recv(x, loc->id, 0, 1, 7), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_test(x), TCPX_ERR_ACCESS); /* still its first error */
    tcpx_xfer_release(x);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* Use after release, deliberately (sanitizer builds would report the
     * read of freed memory instead): refused by the marker word, and a
     * second release does nothing. */
    HX_EXPECT(tcpx_xfer_test(x), TCPX_ERR_INVALID);
    HX_CHECK(strstr(tcpx_last_error(), "not live"), "use after release: %s", tcpx_last_error());
    HX_EXPECT(tcpx_xfer_post_send(x, loc->id, 0, 1, 7), TCPX_ERR_INVALID);
    tcpx_xfer_release(x);
#endif
    HX_OK(tcpx_session_peer_status(s, "B"));
}

static void part_refused(tcpx_session *s, const hx_region *loc, const tcpx_memdesc *m)
{
    hx_fill(loc->ptr, 64 * 1024, hx_mix(hx_seed, 0xBAD), 0);
    int k = 0;
    good_ops(s, loc, m, k++);
    for (int write = 1; write >= 0; write--) {
        const char *w = write ? "WRITE" : "READ";
        char what[96];
        tcpx_memdesc d = *m;
        d.id = m->id + 1000;
        tcpx_block b = {loc->id, 0, &d, 0, 100};
        snprintf(what, sizeof what, "%s to an unknown mem id", w);
        expect_refused(s, write, 1, &b, "block 0: memory id", what);
        HX_CHECK(strstr(tcpx_last_error(), "not registered"), "%s: %s", what, tcpx_last_error());
        good_ops(s, loc, m, k++);

        d = *m;
        d.key ^= 0x40;
        b.remote = &d;
        snprintf(what, sizeof what, "%s with a wrong key", w);
        expect_refused(s, write, 1, &b, "wrong key", what);
        good_ops(s, loc, m, k++);

        d = *m;
        d.size = m->size + 4096; /* the descriptor claims more than B registered */
        b.remote_offset = m->size - 50;
        snprintf(what, sizeof what, "%s out of bounds", w);
        expect_refused(s, write, 1, &b, "lies outside", what);
        good_ops(s, loc, m, k++);

        d.size = UINT64_MAX; /* an offset near 2^64 (offset + size overflow is mem_access's unit test) */
        b.remote_offset = UINT64_MAX - 200;
        snprintf(what, sizeof what, "%s at an offset near 2^64", w);
        expect_refused(s, write, 1, &b, "lies outside", what);
        good_ops(s, loc, m, k++);

        /* Block 3 of 10 refused: the whole list is, nothing written. */
        tcpx_block v[10];
        for (int i = 0; i < 10; i++) v[i] = (tcpx_block){loc->id, (size_t)i * 1000, m, 4 * MiB + (uint64_t)i * 1000, 900};
        d = *m;
        d.key ^= 1;
        v[3].remote = &d;
        snprintf(what, sizeof what, "%s list with one bad block", w);
        expect_refused(s, write, 10, v, "block 3: wrong key", what);
        good_ops(s, loc, m, k++);
    }
    hx_send_u64(fds[0], (uint64_t)k);
    hx_expect_str(fds[0], "region checked", T_WAIT);
}

static void part_local_errors(tcpx_session *s, const hx_region *loc, const tcpx_memdesc *m)
{
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    tcpx_block b = {loc->id + 77, 0, m, 0, 10};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, NULL), TCPX_ERR_NOT_FOUND);
    b = (tcpx_block){loc->id, loc->size - 5, m, 0, 10};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    b = (tcpx_block){loc->id, SIZE_MAX - 3, m, 0, 10};
    HX_EXPECT(tcpx_xfer_post_read_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    b = (tcpx_block){loc->id, 0, m, m->size - 5, 10};
    HX_EXPECT(tcpx_xfer_post_read_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    b = (tcpx_block){loc->id, 0, m, UINT64_MAX - 3, 10};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    b = (tcpx_block){loc->id, 0, NULL, 0, 10};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, NULL), TCPX_ERR_INVALID);
    b = (tcpx_block){loc->id, 0, m, 0, 10};
    static uint8_t big[TCPX_NOTIF_MAX + 1];
    tcpx_notif_msg nm = {big, sizeof big};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, &nm), TCPX_ERR_INVALID);
    nm = (tcpx_notif_msg){NULL, 5};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 1, &b, &nm), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_post_write_list(x, (size_t)TCPX_LIST_MAX_BLOCKS + 1, &b, NULL), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_post_write_list(x, 3, NULL, NULL), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_xfer_post_read_list(NULL, 1, &b, NULL), TCPX_ERR_INVALID);
    /* A list whose second block is bad posts nothing: the transfer stays empty. */
    tcpx_block two[2] = {{loc->id, 0, m, 0, 10}, {loc->id, 0, m, m->size, 1}};
    HX_EXPECT(tcpx_xfer_post_write_list(x, 2, two, NULL), TCPX_ERR_INVALID);
    HX_OK(tcpx_xfer_test(x));
    /* An empty list is fine and completes at once; so do zero-size blocks. */
    HX_OK(tcpx_xfer_post_write_list(x, 0, NULL, NULL));
    b = (tcpx_block){loc->id, 0, m, m->size, 0};
    HX_OK(tcpx_xfer_post_read_list(x, 1, &b, NULL));
    HX_WAIT_OK(x, T_WAIT, "empty list and zero-size block");
    tcpx_xfer_release(x);
    HX_EXPECT(tcpx_notify_send(s, "nobody", "x", 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_notify_send(s, "B", big, sizeof big), TCPX_ERR_INVALID);
    char from[TCPX_NAME_MAX];
    size_t len;
    HX_EXPECT(tcpx_notify_poll(s, NULL, 0, NULL, 0, &len), TCPX_ERR_INVALID);
    HX_CHECK(tcpx_notify_poll(s, from, sizeof from, big, sizeof big, &len) == TCPX_IN_PROGRESS, "no notification");
}

static void part_dereg(tcpx_session *s, hx_region *loc, const tcpx_memdesc *r)
{
    /* READ all of R into loc (cut into 256 blocks); once bytes land, B
     * deregisters R. */
    tcpx_block v[256];
    for (int i = 0; i < 256; i++)
        v[i] = (tcpx_block){loc->id, (size_t)i * (RREG / 256), r, (uint64_t)i * (RREG / 256), RREG / 256};
    hx_fill(loc->ptr, 64, 0x9999, 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_read_list(x, 256, v, NULL));
    uint64_t deadline = hx_now_ms() + HX_MS(T_WAIT);
    tcpx_status st;
    while ((st = tcpx_xfer_test(x)) == TCPX_IN_PROGRESS && !hx_landed(loc->ptr, 64, 0x9999, 0))
        HX_CHECK(hx_now_ms() < deadline, "dereg: no byte of the read landed");
    hx_send_str(fds[0], st == TCPX_OK ? "done" : "moving");
    HX_WAIT_OK(x, T_WAIT, "dereg: READ of a region being deregistered");
    tcpx_xfer_release(x);
    HX_CHECK_PATTERN("dereg: the read", loc->ptr, RREG, hx_mix(hx_seed, 0xEE), 0);
    hx_expect_str(fds[0], "deregistered", T_WAIT);
    tcpx_block one = {loc->id, 0, r, 0, 100};
    expect_refused(s, 0, 1, &one, "not registered", "READ of a deregistered region");
}

static void part_release(tcpx_session *s, hx_region *loc, const tcpx_memdesc *r)
{
    const size_t n = 48u * MiB;
    hx_fill(loc->ptr, n, hx_mix(hx_seed, 0x1E1), 0);
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_write(x, loc->id, 0, r, 0, n));
    tcpx_xfer_release(x); /* at once: it finishes first */
    hx_send_str(fds[0], "released write");
    hx_expect_str(fds[0], "write checked", T_WAIT);

    uint64_t poison = hx_mix(hx_seed, 0x1E2);
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_read(x, loc->id, 0, r, 0, n));
    tcpx_xfer_release(x);
    hx_fill(loc->ptr, n, poison, 0);
    HX_OK(tcpx_session_progress(s));
    hx_sleep_ms(300);
    HX_OK(tcpx_session_progress(s));
    HX_CHECK_PATTERN("release: memory of a released READ changed afterwards", loc->ptr, n, poison, 0);
    HX_OK(tcpx_session_peer_status(s, "B"));
}

#define INBOX 65536

static void part_inbox_a(tcpx_session *s, hx_region *loc, const tcpx_memdesc *r)
{
    for (uint32_t i = 0; i < INBOX; i++) HX_OK(tcpx_notify_send(s, "B", &i, sizeof i));
    hx_send_str(fds[0], "sent");
    hx_expect_str(fds[0], "none polled", T_WAIT);
    /* B's inbox is full: wait for its last ACKs, then a write's notification is refused. */
    hx_progress_for(s, 300);
    hx_fill(loc->ptr, 1000, 0x1B0, 0);
    uint32_t note = 0xFFFFFFFF;
    tcpx_notif_msg nm = {&note, sizeof note};
    tcpx_block b = {loc->id, 0, r, 0, 1000};
    tcpx_xfer *x;
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_write_list(x, 1, &b, &nm));
    tcpx_status st = hx_wait_timed(x, T_WAIT, NULL);
    HX_CHECK(st == TCPX_ERR_NOMEM && strstr(tcpx_last_error(), "inbox"), "write into a full inbox: %s: %s",
             tcpx_strerror(st), tcpx_last_error());
    tcpx_xfer_release(x);
    HX_OK(tcpx_session_peer_status(s, "B"));
    hx_send_str(fds[0], "refused");
    hx_expect_str(fds[0], "drained", T_WAIT);
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_OK(tcpx_xfer_post_write_list(x, 1, &b, &nm));
    HX_WAIT_OK(x, T_WAIT, "write with a notification once the inbox drained");
    tcpx_xfer_release(x);
    hx_expect_str(fds[0], "got it", T_WAIT);
}

static void part_inbox_b(tcpx_session *s)
{
    hx_expect_str(fds[1], "sent", T_WAIT);
    hx_send_str(fds[1], "none polled");
    hx_expect_str(fds[1], "refused", T_WAIT);
    char from[TCPX_NAME_MAX];
    uint32_t v;
    size_t len;
    for (uint32_t i = 0; i < INBOX; i++) {
        tcpx_status st = tcpx_notify_poll(s, from, sizeof from, &v, sizeof v, &len);
        HX_CHECK(st == TCPX_OK && len == sizeof v && v == i, "inbox notification %u: %s, %zu bytes, value %u", i,
                 tcpx_strerror(st), len, v);
    }
    hx_no_notif(s); /* the refused write's notification is not there */
    hx_send_str(fds[1], "drained");
    HX_CHECK(hx_wait_notif(s, "A", &v, sizeof v, T_WAIT) == sizeof v && v == 0xFFFFFFFF, "the next notification");
    hx_send_str(fds[1], "got it");
}

static int proc_a(void *arg)
{
    (void)arg;
    tcpx_session *s = make("A");
    hx_region loc;
    hx_region_init(s, &loc, RREG, 0xA);
    hx_connect_to(s, "B", fds[0]);
    tcpx_memdesc m, r;
    hx_recv_memdesc(fds[0], &m);
    hx_recv_memdesc(fds[0], &r);
    part_refused(s, &loc, &m);
    failed_xfer_contract(s, &loc, &m);
    hx_log("refused accesses: OK");
    part_local_errors(s, &loc, &m);
    hx_log("local errors: OK");
    part_dereg(s, &loc, &r);
    hx_log("deregistration racing a READ: OK");
    /* B registered a new R for the release part. */
    hx_recv_memdesc(fds[0], &r);
    part_release(s, &loc, &r);
    hx_log("release in flight: OK");
    part_inbox_a(s, &loc, &r);
    hx_log("inbox bound: OK");
    hx_send_str(fds[0], "bye");
    hx_region_fini(s, &loc);
    tcpx_session_destroy(s);
    return 0;
}

static int proc_b(void *arg)
{
    (void)arg;
    tcpx_session *s = make("B");
    hx_region m, r;
    uint64_t mguard = hx_mix(hx_seed, 0x3), rfill = hx_mix(hx_seed, 0xEE);
    hx_region_init(s, &m, MREG, mguard);
    hx_region_init(s, &r, RREG, rfill);
    hx_accept_from(s, "A", fds[1]);
    hx_send_memdesc(s, m.id, fds[1]);
    hx_send_memdesc(s, r.id, fds[1]);
    /* 1: only the good writes changed M. */
    int k = (int)hx_recv_u64(fds[1], T_WAIT);
    HX_OK(tcpx_session_progress(s)); /* told by A: order our reads after the transport's writes */
    for (int i = 0; i < k; i++) {
        HX_CHECK_PATTERN("target: good write", m.ptr + 8192 * (size_t)i, 4000, good_seed(i), 0);
        hx_fill(m.ptr + 8192 * (size_t)i, 4000, mguard, 8192 * (size_t)i);
    }
    HX_CHECK_PATTERN("target: region after refused writes", m.ptr, MREG, mguard, 0);
    hx_no_notif(s); /* refused writes deliver no notification */
    hx_send_str(fds[1], "region checked");
    /* 3: deregister R while A reads it. */
    size_t wlen;
    char *word = hx_recv(fds[1], &wlen, T_WAIT);
    uint64_t t0 = hx_now_ms();
    HX_OK(tcpx_mem_deregister(s, r.id));
    hx_log("deregistration returned after %" PRIu64 " ms (A said %s)", hx_now_ms() - t0, word);
    free(word);
    r.id = 0;
    hx_region_fini(s, &r);
    hx_send_str(fds[1], "deregistered");
    /* 4: a fresh R. */
    hx_region_init(s, &r, RREG, rfill);
    hx_send_memdesc(s, r.id, fds[1]);
    hx_expect_str(fds[1], "released write", T_WAIT);
    HX_OK(tcpx_session_progress(s));
    HX_CHECK_PATTERN("target: released WRITE", r.ptr, 48u * MiB, hx_mix(hx_seed, 0x1E1), 0);
    HX_OK(tcpx_session_progress(s)); /* our reads before the writes A makes once told */
    hx_send_str(fds[1], "write checked");
    part_inbox_b(s);
    hx_expect_str(fds[1], "bye", T_WAIT);
    hx_region_fini(s, &m);
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("onesided_access", 200);
    hx_pair(fds);
    pid_t a = hx_spawn("A", 180, proc_a, NULL);
    pid_t b = hx_spawn("B", 180, proc_b, NULL);
    pid_t all[2] = {a, b};
    hx_wait_all(all, 2, 190000);
    hx_log("PASS");
    return 0;
}
