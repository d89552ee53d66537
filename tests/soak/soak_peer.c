/* soak_peer.c - one process of a soak round: connect, post the plan's
 * operations (some receives before the sides sync, the rest after), release
 * some mid-flight, wait for the others with deadlines, check every byte of
 * every completed transfer and notification, and report its figures. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "soak.h"

#define WAIT_MS 60000 /* one wait; past it the transfer is hung (a failure) */

typedef struct peer {
    const soak_plan *p;
    int me;
    const char *peer;
    tcpx_session *s;
    gt_gpu gpu;                     /* dev -1: this side has no GPU memory this round */
    gt_region src, dst;
    tcpx_memdesc peer_src, peer_dst;
    tcpx_xfer *x[SOAK_MAX_OPS];
    char res[SOAK_MAX_OPS + 1];     /* my part of op i: 0 none, p posted, y ok, n failed, r released */
    int rel_at[SOAK_MAX_OPS];       /* REL_LATER_POST: release once this many posts were made */
    uint8_t got[SOAK_MAX_OPS];      /* notification of op i arrived */
    uint8_t checked[SOAK_MAX_OPS];  /* the bytes a peer's WRITE put here were checked */
    int posts;
    soak_stats st;
} peer;

static void failed(peer *q, int i, tcpx_status st, const char *what)
{
    const char *msg = tcpx_last_error();
    HX_CHECK(st < 0 && st >= -(SOAK_NSTATUS - 1), "round %d op %d %s: status %d is not an error status", q->p->round,
             i, what, (int)st);
    HX_CHECK(msg[0] != '\0', "round %d op %d %s: failed with %s but tcpx_last_error() is empty", q->p->round, i,
             what, tcpx_strerror(st));
    const soak_op *op = &q->p->op[i];
    if (q->p->strict && op->rel_mode == REL_NONE)
        HX_FAIL("round %d (%s, seed %" PRIu64 ") op %d %s failed with %s though nothing was released or broken: %s",
                q->p->round, soak_round_name(q->p), q->p->seed, i, what, tcpx_strerror(st), msg);
    q->st.failed[-st]++;
    q->res[i] = 'n';
}

static void release(peer *q, int i, int count)
{
    uint64_t t0 = hx_now_ms();
    tcpx_xfer_release(q->x[i]);
    uint64_t dt = hx_now_ms() - t0;
    q->x[i] = NULL;
    if (count) {
        q->res[i] = 'r';
        q->st.released++;
    }
    if (dt > q->st.max_release_ms) q->st.max_release_ms = dt;
    int bound = HX_MS(q->p->peer_timeout_ms + 5000);
    HX_CHECK(dt <= (uint64_t)bound, "round %d op %d: tcpx_xfer_release took %" PRIu64 " ms (bound %d ms)", q->p->round,
             i, dt, bound);
}

/* A peer's WRITE of op i landed in my dst: check its blocks. */
static void check_write(peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    if (q->checked[i]) return;
    q->checked[i] = 1;
    for (uint32_t b = op->blk0; b < op->blk0 + op->nblk; b++)
        soak_check_blk(q->p, b, &q->dst, q->p->blk[b].dst_off, "bytes a peer WROTE", &q->st);
}

/* Take every notification waiting; check each. */
static void drain_notifs(peer *q)
{
    static uint8_t buf[TCPX_NOTIF_MAX];
    for (;;) {
        char from[TCPX_NAME_MAX];
        size_t len = 0;
        tcpx_status st = tcpx_notify_poll(q->s, from, sizeof from, buf, sizeof buf, &len);
        if (st == TCPX_IN_PROGRESS) return;
        HX_CHECK(st == TCPX_OK, "tcpx_notify_poll returned %s: %s", tcpx_strerror(st), tcpx_last_error());
        HX_CHECK(!strcmp(from, q->peer), "notification from \"%s\"", from);
        int i = -1;
        if (!soak_notif_check(q->p, buf, len, &i)) {
            hx_log("CORRUPTED: round %d: a notification of %zu bytes is not the one sent", q->p->round, len);
            q->st.corrupted += len ? len : 1;
            continue;
        }
        const soak_op *op = &q->p->op[i];
        HX_CHECK(op->init != q->me && (op->kind == OP_NOTIFY || op->notif), "round %d: notification of op %d unexpected",
                 q->p->round, i);
        HX_CHECK(!q->got[i], "round %d: notification of op %d delivered twice", q->p->round, i);
        q->got[i] = 1;
        q->st.notifs_verified++;
        if (op->kind == OP_WRITE) check_write(q, i); /* its bytes are in place before it */
    }
}

static int create(peer *q, int i)
{
    tcpx_status st = tcpx_xfer_create(q->s, q->peer, &q->x[i]);
    q->st.posted++;
    q->posts++;
    if (st == TCPX_OK) return 1;
    q->x[i] = NULL;
    q->st.failed_post++;
    failed(q, i, st, "tcpx_xfer_create");
    return 0;
}

static void posted(peer *q, int i, tcpx_status st, const char *what)
{
    if (st == TCPX_OK) {
        q->res[i] = 'p';
        return;
    }
    q->st.failed_post++;
    failed(q, i, st, what);
    tcpx_xfer_release(q->x[i]);
    q->x[i] = NULL;
}

static void post_recv(peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    if (!create(q, i)) return;
    posted(q, i, tcpx_xfer_post_recv(q->x[i], q->dst.id, q->p->blk[op->blk0].dst_off, op->size, op->tag),
           "post_recv");
}

static void post_list(peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    tcpx_block bl[SOAK_MAX_BLOCKS];
    int rd = op->kind == OP_READ;
    for (uint32_t k = 0; k < op->nblk; k++) {
        const soak_blk *b = &q->p->blk[op->blk0 + k];
        bl[k] = (tcpx_block){rd ? q->dst.id : q->src.id, rd ? b->dst_off : b->src_off,
                             rd ? &q->peer_src : &q->peer_dst, rd ? b->src_off : b->dst_off, b->size};
    }
    uint8_t nb[SOAK_MAX_NOTIF];
    tcpx_notif_msg nm = {nb, op->notif_len};
    if (op->notif) soak_notif_fill(q->p, i, nb);
    if (!create(q, i)) return;
    tcpx_status st = rd ? tcpx_xfer_post_read_list(q->x[i], op->nblk, bl, op->notif ? &nm : NULL)
                        : tcpx_xfer_post_write_list(q->x[i], op->nblk, bl, op->notif ? &nm : NULL);
    posted(q, i, st, rd ? "post_read_list" : "post_write_list");
}

static void post_op(peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    if (op->kind == OP_NOTIFY) {
        if (op->init != q->me) return;
        uint8_t nb[SOAK_MAX_NOTIF];
        soak_notif_fill(q->p, i, nb);
        tcpx_status st = tcpx_notify_send(q->s, q->peer, nb, op->notif_len);
        q->st.notifs_sent++;
        if (st == TCPX_OK) {
            q->res[i] = 'y';
            return;
        }
        HX_CHECK(st < 0 && tcpx_last_error()[0], "round %d op %d: tcpx_notify_send returned %s with \"%s\"",
                 q->p->round, i, tcpx_strerror(st), tcpx_last_error());
        HX_CHECK(!q->p->strict, "round %d op %d: tcpx_notify_send failed with %s: %s", q->p->round, i,
                 tcpx_strerror(st), tcpx_last_error());
        q->st.notifs_failed++;
        q->res[i] = 'n';
        return;
    }
    if (op->kind == OP_SEND && op->init != q->me) {
        if (!op->early) post_recv(q, i);
    } else if (op->kind == OP_SEND) {
        if (create(q, i))
            posted(q, i, tcpx_xfer_post_send(q->x[i], q->src.id, q->p->blk[op->blk0].src_off, op->size, op->tag),
                   "post_send");
    } else if (op->init == q->me) {
        post_list(q, i);
    } else {
        return;
    }
    if (!q->x[i] || op->rel_mode == REL_NONE || op->rel_side != q->me) return;
    if (op->rel_mode == REL_AT_POST) release(q, i, 1);
    else if (op->rel_mode == REL_LATER_POST) q->rel_at[i] = q->posts + (int)op->rel_arg;
}

/* My part of op i completed OK: check the bytes that landed here. */
static void completed(peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    q->res[i] = 'y';
    q->st.ok++;
    int lands_here = (op->kind == OP_SEND && op->init != q->me) || op->kind == OP_READ;
    if (!lands_here) return;
    for (uint32_t b = op->blk0; b < op->blk0 + op->nblk; b++)
        soak_check_blk(q->p, b, &q->dst, q->p->blk[b].dst_off, op->kind == OP_READ ? "bytes READ" : "bytes received",
                       &q->st);
}

/* orphan_ms >= 0: the peer released its part of op i; wait at most that. */
static void settle(peer *q, int i, int orphan_ms)
{
    const soak_op *op = &q->p->op[i];
    int mine = op->rel_mode != REL_NONE && op->rel_side == q->me;
    if (mine && (op->rel_mode == REL_AFTER_WAIT || op->rel_mode == REL_LATER_POST)) {
        tcpx_status st = op->rel_mode == REL_AFTER_WAIT ? tcpx_xfer_wait(q->x[i], (int)op->rel_arg) : TCPX_IN_PROGRESS;
        if (st == TCPX_OK) {
            completed(q, i);
            tcpx_xfer_release(q->x[i]);
            q->x[i] = NULL;
            return;
        }
        int ended = st < 0 && st != TCPX_ERR_TIMEOUT;
        if (ended) failed(q, i, st, "wait before a release");
        release(q, i, !ended);
        return;
    }
    if (orphan_ms >= 0) { /* the peer released its side: this side may wait for good */
        tcpx_status st = tcpx_xfer_wait(q->x[i], orphan_ms);
        if (st == TCPX_OK) completed(q, i);
        int pending = st == TCPX_ERR_TIMEOUT || st == TCPX_IN_PROGRESS;
        if (st != TCPX_OK && !pending) failed(q, i, st, "tcpx_xfer_wait (the peer released its side)");
        if (pending) {
            q->st.orphaned++;
            release(q, i, 1);
        } else {
            tcpx_xfer_release(q->x[i]);
            q->x[i] = NULL;
        }
        return;
    }
    uint64_t t0 = hx_now_ms();
    tcpx_status st = tcpx_xfer_wait(q->x[i], HX_MS(WAIT_MS));
    uint64_t dt = hx_now_ms() - t0;
    if (dt > q->st.max_wait_ms) q->st.max_wait_ms = dt;
    HX_CHECK(!(st == TCPX_ERR_TIMEOUT && dt + 50 >= (uint64_t)HX_MS(WAIT_MS)),
             "round %d (%s, seed %" PRIu64 ") op %d (kind %d from %c, %zu bytes in %u blocks, tag %" PRIu64
             ", early %d, release %d by %c): still pending after %" PRIu64 " ms: a hang",
             q->p->round, soak_round_name(q->p), q->p->seed, i, op->kind, 'A' + op->init, op->size, op->nblk,
             op->tag, op->early, op->rel_mode, 'A' + op->rel_side, dt);
    if (st == TCPX_OK) completed(q, i);
    else failed(q, i, st, "tcpx_xfer_wait");
    tcpx_xfer_release(q->x[i]);
    q->x[i] = NULL;
}

static int peer_released(const peer *q, int i)
{
    const soak_op *op = &q->p->op[i];
    return op->kind == OP_SEND && op->rel_mode != REL_NONE && op->rel_side != q->me;
}

static void setup(peer *q, soak_side *sd)
{
    const soak_plan *p = q->p;
    if (p->digest) setenv("TCPX_DATA_DIGEST", "1", 1);
    else unsetenv("TCPX_DATA_DIGEST");
    q->gpu.dev = -1;
    if (p->gpu[q->me] >= 0) gt_gpu_open(&q->gpu, p->gpu[q->me]);
    gt_sess_opts o = {.name = q->me ? "B" : "A", .gpu = p->gpu[q->me], .channels = p->channels, .chunk = p->chunk,
                      .peer_timeout_ms = p->peer_timeout_ms, .connect_timeout_ms = 20000};
    q->s = gt_session(&o);
    /* Connect before filling the regions: filling hundreds of MiB on a busy
     * machine may take longer than the peer's accept waits. */
    if (q->me) hx_accept_from(q->s, q->peer, sd->fd_peer);
    else hx_connect_to(q->s, q->peer, sd->fd_peer);
    gt_region_init(q->s, &q->gpu, &q->src, p->kind[q->me][0], p->src_size[q->me], hx_mix(p->seed, 11u + (uint64_t)q->me),
                   q->me ? "B src" : "A src");
    gt_region_init(q->s, &q->gpu, &q->dst, p->kind[q->me][1], p->dst_size[q->me], hx_mix(p->seed, 13u + (uint64_t)q->me),
                   q->me ? "B dst" : "A dst");
    for (int i = 0; i < p->nops; i++) {
        const soak_op *op = &p->op[i];
        int owner = op->kind == OP_READ ? !op->init : op->init;
        if (op->kind == OP_NOTIFY || owner != q->me) continue;
        for (uint32_t b = op->blk0; b < op->blk0 + op->nblk; b++)
            soak_fill_blk(p, b, &q->src, p->blk[b].src_off);
    }
    hx_send_memdesc(q->s, q->src.id, sd->fd_peer);
    hx_send_memdesc(q->s, q->dst.id, sd->fd_peer);
    hx_recv_memdesc(sd->fd_peer, &q->peer_src);
    hx_recv_memdesc(sd->fd_peer, &q->peer_dst);
}

/* The peer says which of its operations completed: check what its WRITEs
 * left here and wait for the notifications that must have come. */
static void reconcile(peer *q, int fd)
{
    const soak_plan *p = q->p;
    hx_send(fd, q->res, (size_t)p->nops);
    size_t n = 0;
    char *theirs = hx_recv(fd, &n, HX_MS(120000));
    HX_CHECK(n == (size_t)p->nops, "peer reported %zu ops, expected %d", n, p->nops);
    /* The peer's word comes from another process: a call into our session
     * orders our reads after the engine thread that saw its WRITEs land. */
    HX_OK(tcpx_session_progress(q->s));
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(10000);
    for (int i = 0; i < p->nops; i++) {
        const soak_op *op = &p->op[i];
        if (op->init == q->me) continue;
        if (p->strict && op->rel_mode == REL_NONE)
            HX_CHECK(theirs[i] == 'y' || (op->kind == OP_SEND && theirs[i] == 0), "round %d op %d: peer's part is '%c'",
                     p->round, i, theirs[i] ? theirs[i] : '0');
        if (op->kind == OP_WRITE && theirs[i] == 'y') check_write(q, i);
        int must = theirs[i] == 'y' && (op->notif || (op->kind == OP_NOTIFY && p->strict));
        while (must && !q->got[i]) {
            drain_notifs(q);
            if (q->got[i]) break;
            if (hx_now_ms() >= deadline)
                for (int j = 0; j < p->nops; j++)
                    if (p->op[j].init != q->me && (p->op[j].notif || p->op[j].kind == OP_NOTIFY))
                        hx_log("op %d: kind %d, peer '%c', notification %s", j, p->op[j].kind, theirs[j] ? theirs[j] : '0',
                               q->got[j] ? "came" : "missing");
            HX_CHECK(hx_now_ms() < deadline, "round %d (seed %" PRIu64 "): notification of op %d (kind %d) never came",
                     p->round, p->seed, i, op->kind);
            hx_sleep_ms(1);
        }
    }
    free(theirs);
    hx_send_str(fd, "bye");
    hx_expect_str(fd, "bye", HX_MS(60000));
}

int soak_peer_main(void *arg)
{
    soak_side *sd = arg;
    for (int k = 0; k < sd->nclose; k++) close(sd->close_fds[k]);
    static peer q;
    memset(&q, 0, sizeof q);
    q.p = sd->plan;
    q.me = sd->me;
    q.peer = q.me ? "A" : "B";
    const soak_plan *p = q.p;
    setup(&q, sd);
    for (int i = 0; i < p->nops; i++)
        if (p->op[i].kind == OP_SEND && p->op[i].init != q.me && p->op[i].early) post_recv(&q, i);
    hx_send_str(sd->fd_peer, "ready");
    hx_expect_str(sd->fd_peer, "ready", HX_MS(60000));
    int faulty = p->type == R_FAULT && p->fault_side == q.me;
    if (faulty) {
        int (*arm)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "tcpx_fault_arm");
        HX_CHECK(arm && arm(p->fault_spec) == 0, "arming fault %s", p->fault_spec);
    }
    int doomed = (p->type == R_KILL && p->victim == q.me) || (faulty && p->fault_kind == F_STALL);
    if (doomed) hx_send_str(sd->fd_sup, "go");
    for (int i = 0; i < p->nops; i++) {
        post_op(&q, i);
        for (int j = 0; j < i; j++)
            if (q.x[j] && q.rel_at[j] && q.rel_at[j] <= q.posts) release(&q, j, 1);
        if ((i & 15) == 15) drain_notifs(&q);
    }
    int stalled = faulty && p->fault_kind == F_STALL; /* its sending threads sleep for ever */
    /* A send or receive whose peer released its side may never match
     * (withdrawn before it was matched, or a receive posted after the
     * withdrawal): those wait last, together, for a while. */
    for (int i = 0; i < p->nops && !stalled; i++) {
        if (q.x[i] && !peer_released(&q, i)) settle(&q, i, -1);
        drain_notifs(&q);
    }
    uint64_t orphan_end = hx_now_ms() + (uint64_t)HX_MS(300);
    for (int i = 0; i < p->nops && !stalled; i++) {
        if (!q.x[i]) continue;
        uint64_t now = hx_now_ms();
        settle(&q, i, now < orphan_end ? (int)(orphan_end - now) : 0);
    }
    if (doomed) /* killed by the supervisor, figures untold */
        for (;;) hx_sleep_ms(1000);
    int peer_alive = p->type != R_KILL && !(p->type == R_FAULT && p->fault_kind == F_STALL);
    if (peer_alive) reconcile(&q, sd->fd_peer);
    drain_notifs(&q);
    uint64_t t0 = hx_now_ms();
    tcpx_session_destroy(q.s);
    uint64_t dt = hx_now_ms() - t0;
    HX_CHECK(dt < (uint64_t)HX_MS(15000), "round %d: tcpx_session_destroy took %" PRIu64 " ms", p->round, dt);
    gt_region_fini(NULL, &q.src);
    gt_region_fini(NULL, &q.dst);
    gt_gpu_close(&q.gpu);
    hx_send(sd->fd_sup, &q.st, sizeof q.st);
    return 0;
}
