/* test_twosided.c - two-sided flow control and matching on one peer, at the
 * message level (src/core/twosided.c, credit.c, unexpected.c): no transport, the peer's
 * outgoing control queue is decoded to see what would go on the wire.
 *   - sender: RTS go while the receiver's budget (sends and inline bytes)
 *     has room, the rest wait unannounced, in post order; each first answer
 *     (ACK, NACK) returns credit and the next waiting sends go; a withdrawn
 *     send that waits is dropped with no CANCEL;
 *   - receiver: unexpected sends up to its budget are held, one more (by
 *     count or by inline bytes) is TCPX_ERR_PROTOCOL with a sentence; held
 *     sends match receives posted later, per tag oldest first, bytes
 *     checked; a CANCEL of a held send is answered with a NACK.
 * Random payloads from a printed seed (TCPX_TEST_SEED reproduces). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "util/error.h"
#include "check.h"

static void fill(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(1 + rnd() % 255);
}

static tcpx_session g_s;
static tcpx_peer g_p;
static tcpx_xfer g_x;
static tcpx_region g_r;
static uint8_t g_mem[1 << 20];

static void reset(int max, size_t max_bytes, uint32_t credit, uint64_t credit_bytes)
{
    memset(&g_s, 0, sizeof g_s);
    memset(&g_p, 0, sizeof g_p);
    memset(&g_x, 0, sizeof g_x);
    tcpx_config_init(&g_s.cfg);
    g_s.cfg.unexpected_max = max;
    g_s.cfg.unexpected_max_bytes = max_bytes;
    g_s.next_op_id = 1;
    snprintf(g_p.name, sizeof g_p.name, "peer");
    g_p.s = &g_s;
    g_p.state = PEER_READY;
    g_p.refs = 1000;
    g_p.credit_max = credit;
    g_p.credit_max_bytes = credit_bytes;
    g_x.s = &g_s;
    g_x.p = &g_p;
    g_r = (tcpx_region){.ptr = g_mem, .size = sizeof g_mem, .kind = TCPX_MEM_HOST};
}

static tcpx_op *post(int kind, size_t off, size_t size, uint64_t tag)
{
    tcpx_op *op = calloc(1, sizeof *op);
    op->id = g_s.next_op_id++;
    op->kind = kind;
    op->x = &g_x;
    op->p = &g_p;
    op->r = &g_r;
    op->ptr = g_mem + off;
    op->size = size;
    op->tag = tag;
    op->seg1 = (tcpx_seg){op->ptr, size, &g_r};
    op->segs = &op->seg1;
    op->nsegs = 1;
    g_x.nops++;
    op_start(op);
    return op;
}

/* The messages queued since the last call, decoded into out (payloads
 * point into the peer's queue until the next call). */
static size_t sent(tcpx_msg *out, size_t cap)
{
    size_t n = 0, at = g_p.outq_off;
    while (at < g_p.outq_len) {
        size_t len;
        CHECK(tcpx_msg_frame_next(g_p.outq + at, g_p.outq_len - at, &len) == TCPX_OK, "frame");
        CHECK(tcpx_msg_decode(g_p.outq + at, len, &out[n < cap ? n : cap - 1]) == TCPX_OK, "decode: %s",
              tcpx_last_error());
        if (n < cap) n++;
        at += len;
    }
    g_p.outq_off = at;
    return n;
}

static void finish_peer(tcpx_op **ops, size_t n)
{
    free(g_p.outq);
    unexpected_free_all(&g_p);
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->state != OPS_DONE && ops[i]->state != OPS_FAILED)
            op_fail(ops[i], TCPX_ERR_PEER, "test over");
        op_free(ops[i]);
    }
    tagmap_free(&g_p.posted);
    CHECK(g_p.nops == 0, "%zu ops left in the peer", g_p.nops);
}

static tcpx_status answer(int type, uint64_t id)
{
    tcpx_msg m = {.type = (uint8_t)type};
    if (type == TCPX_MSG_ACK) return op_on_ack(&g_p, (m.u.ack.id = id, &m));
    m.u.nack.id = id;
    m.u.nack.status = TCPX_ERR_PEER;
    m.payload = (const uint8_t *)"no";
    m.payload_len = 2;
    return op_on_nack(&g_p, &m);
}

static void test_sender(void)
{
    enum { N = 12, SZ = 5000 };
    reset(65536, 64u << 20, 4, 16384); /* 3 of 5000 bytes fit the bytes, 4 the count */
    tcpx_op *ops[N];
    tcpx_msg m[32];
    fill(g_mem, N * SZ);
    for (int i = 0; i < N; i++) ops[i] = post(OP_SEND, (size_t)i * SZ, SZ, 7); /* one tag: order matters */
    size_t n = sent(m, 32);
    CHECK(n == 3, "%zu RTS went, the budget holds 3", n);
    for (size_t i = 0; i < n; i++)
        CHECK(m[i].type == TCPX_MSG_RTS && m[i].u.rts.send_id == ops[i]->id && m[i].payload_len == SZ &&
                  !memcmp(m[i].payload, g_mem + i * SZ, SZ),
              "RTS %zu: send %" PRIu64 " with its bytes", i, ops[i]->id);
    CHECK(ops[3]->state == OPS_CREDIT_WAIT && ops[N - 1]->state == OPS_CREDIT_WAIT, "the rest wait");
    CHECK(g_p.credit_used == 3 && g_p.credit_used_bytes == 3 * SZ, "credit used %zu / %" PRIu64, g_p.credit_used,
          g_p.credit_used_bytes);

    /* A withdrawn waiting send goes at once, with nothing on the wire. */
    op_withdraw(ops[4]);
    CHECK(ops[4]->state == OPS_FAILED && ops[4]->status == TCPX_ERR_PEER, "withdrawn while waiting");
    CHECK(sent(m, 32) == 0, "no CANCEL for a send never announced");

    /* An ACK returns one credit: the next waiting send (3) goes. */
    CHECK(answer(TCPX_MSG_ACK, ops[0]->id) == TCPX_OK, "ACK");
    CHECK(ops[0]->state == OPS_DONE, "acked send done");
    n = sent(m, 32);
    CHECK(n == 1 && m[0].u.rts.send_id == ops[3]->id, "after the ACK: send 3 announced (%zu RTS)", n);
    /* A NACK returns credit too: 5 goes (4 was withdrawn). */
    CHECK(answer(TCPX_MSG_NACK, ops[1]->id) == TCPX_OK, "NACK");
    CHECK(ops[1]->state == OPS_FAILED, "nacked send failed");
    n = sent(m, 32);
    CHECK(n == 1 && m[0].u.rts.send_id == ops[5]->id, "after the NACK: send 5 announced (%zu RTS)", n);
    /* An announced send withdrawn: CANCEL, still counted until answered. */
    op_withdraw(ops[2]);
    n = sent(m, 32);
    CHECK(n == 1 && m[0].type == TCPX_MSG_CANCEL && m[0].u.cancel.send_id == ops[2]->id, "CANCEL of send 2");
    CHECK(ops[2]->state == OPS_CANCELLING && g_p.credit_used == 3, "cancelling, credit held (%zu)", g_p.credit_used);
    CHECK(answer(TCPX_MSG_NACK, ops[2]->id) == TCPX_OK, "NACK of the withdrawn send");
    n = sent(m, 32);
    CHECK(n == 1 && m[0].u.rts.send_id == ops[6]->id, "after the withdrawal's NACK: send 6 (%zu RTS)", n);
    /* Answer everything: every send goes, in post order. */
    size_t next = 7;
    for (int i = 3; i < N; i++) {
        if (i == 4) continue;
        CHECK(answer(TCPX_MSG_ACK, ops[i]->id) == TCPX_OK, "ACK %d", i);
        n = sent(m, 32);
        for (size_t k = 0; k < n; k++, next++)
            CHECK(next < N && m[k].u.rts.send_id == ops[next]->id, "send %zu next", next);
    }
    CHECK(next == N, "every send announced (%zu)", next);
    CHECK(g_p.credit_used == 0 && g_p.credit_used_bytes == 0, "all credit back");
    for (int i = 0; i < N; i++)
        CHECK(ops[i]->state == (i == 1 || i == 2 || i == 4 ? OPS_FAILED : OPS_DONE), "send %d state %d", i,
              ops[i]->state);
    finish_peer(ops, N);
    /* An ACK for a send that waits for none is a protocol error. */
    reset(65536, 64u << 20, 1, 16384);
    ops[0] = post(OP_SEND, 0, 10, 1);
    ops[1] = post(OP_SEND, 10, 10, 1);
    sent(m, 32);
    CHECK(ops[1]->state == OPS_CREDIT_WAIT, "second waits");
    CHECK(answer(TCPX_MSG_ACK, ops[1]->id) == TCPX_ERR_PROTOCOL, "ACK of a send never announced");
    finish_peer(ops, 2);
    CHECK(g_p.credit_wait.head == NULL, "waiting queue empty after the ops left");
}

static tcpx_status rts(uint64_t id, uint64_t tag, const uint8_t *data, size_t size)
{
    tcpx_msg m = {.type = TCPX_MSG_RTS};
    m.u.rts.send_id = id;
    m.u.rts.tag = tag;
    m.u.rts.size = size;
    if (size <= TCPX_INLINE_MAX) {
        m.payload = data;
        m.payload_len = (uint32_t)size;
    }
    return twosided_on_rts(&g_p, &m);
}

static void test_receiver(void)
{
    static uint8_t src[8][4000];
    tcpx_msg m[16];
    for (int i = 0; i < 8; i++) fill(src[i], sizeof src[i]);
    /* by count: 4 held, the 5th breaks the credit */
    reset(4, 64u << 20, 16, 1 << 20);
    for (int i = 0; i < 4; i++) CHECK(rts(100 + i, 9 - i % 2, src[i], 4000) == TCPX_OK, "RTS %d held", i);
    tcpx_status st = rts(104, 3, src[4], 4000);
    CHECK(st == TCPX_ERR_PROTOCOL && strstr(tcpx_last_error(), "credit"), "5th RTS: %s: %s", tcpx_strerror(st),
          tcpx_last_error());
    CHECK(g_p.unx_count == 4, "held %zu", g_p.unx_count);
    /* Receives match held sends, oldest of the tag first: tag 9 is 100 then 102. */
    fill(g_mem, 16000);
    tcpx_op *ops[4];
    ops[0] = post(OP_RECV, 0, 4000, 9);
    ops[1] = post(OP_RECV, 4000, 4000, 9);
    CHECK(ops[0]->state == OPS_DONE && !memcmp(g_mem, src[0], 4000), "first tag-9 receive has send 100");
    CHECK(ops[1]->state == OPS_DONE && !memcmp(g_mem + 4000, src[2], 4000), "second tag-9 receive has send 102");
    size_t n = sent(m, 16);
    CHECK(n == 2 && m[0].type == TCPX_MSG_ACK && m[0].u.ack.id == 100 && m[1].u.ack.id == 102, "ACKs 100, 102");
    /* room again: one more is held; a CANCEL of it is answered with a NACK */
    CHECK(rts(104, 3, src[4], 4000) == TCPX_OK, "RTS after receives freed room");
    tcpx_msg c = {.type = TCPX_MSG_CANCEL};
    c.u.cancel.send_id = 104;
    CHECK(twosided_on_cancel(&g_p, &c) == TCPX_OK, "CANCEL");
    n = sent(m, 16);
    CHECK(n == 1 && m[0].type == TCPX_MSG_NACK && m[0].u.nack.id == 104, "NACK for the withdrawn send");
    CHECK(g_p.unx_count == 2, "held %zu after the cancel", g_p.unx_count);
    /* A posted receive is matched by an RTS arriving later. */
    ops[2] = post(OP_RECV, 8000, 4000, 44);
    CHECK(ops[2]->state == OPS_POSTED, "posted");
    CHECK(rts(105, 44, src[5], 4000) == TCPX_OK && ops[2]->state == OPS_DONE && !memcmp(g_mem + 8000, src[5], 4000),
          "RTS matches the posted receive");
    ops[3] = post(OP_RECV, 12000, 4000, 8);
    CHECK(ops[3]->state == OPS_DONE && !memcmp(g_mem + 12000, src[1], 4000), "tag 8: send 101");
    finish_peer(ops, 4);

    /* by bytes: 10000 inline bytes hold two of 4000, not a third; a large
     * send (bytes not inline) still fits */
    reset(100, 10000, 16, 1 << 20);
    CHECK(rts(1, 1, src[0], 4000) == TCPX_OK && rts(2, 2, src[1], 4000) == TCPX_OK, "two held");
    st = rts(3, 3, src[2], 4000);
    CHECK(st == TCPX_ERR_PROTOCOL && strstr(tcpx_last_error(), "credit"), "third by bytes: %s",
          tcpx_last_error());
    CHECK(rts(4, 4, NULL, 1 << 20) == TCPX_OK, "a large send counts no inline bytes");
    CHECK(g_p.unx_count == 3 && g_p.unx_bytes == 8000, "held %zu, %zu bytes", g_p.unx_count, g_p.unx_bytes);
    finish_peer(ops, 0);
    CHECK(g_p.unx_count == 0 && g_p.unx_bytes == 0, "freed");
}

int main(void)
{
    uint64_t seed = check_seed("test_twosided");
    test_sender();
    test_receiver();
    return check_done("test_twosided", seed);
}
