/* progress.c - the engine: every peer's round (control messages through the
 * dispatch table, data comms, retired chunks credited), waking and waiting,
 * and the background thread. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "core/core.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

/* HELLO and DHELLO open a comm; on an established one they are an error. */
static tcpx_status msg_refuse(tcpx_peer *p, const tcpx_msg *m)
{
    return tcpx_set_error(TCPX_ERR_PROTOCOL, "unexpected %s on an established connection from %s",
                          tcpx_msg_name(m->type), p->name);
}

typedef tcpx_status (*msg_handler)(tcpx_peer *p, const tcpx_msg *m);

static const msg_handler handlers[TCPX_MSG_MAX_] = {
#define HANDLER_(name, value, hdr, handler) [TCPX_MSG_##name] = handler,
    TCPX_MSG_TYPES(HANDLER_)
#undef HANDLER_
};

/* A round on one data comm: credit the retired chunks (*heard set when a
 * received one was among them), then fail the peer if the stream broke.
 * Non-zero when the peer failed. */
static int chan_round(tcpx_peer *p, tcpx_chan *c, int is_send, int *heard)
{
    /* Nothing queued or posted (most comms in a small message's round). */
    if (c->head == c->tail) return 0;
    tcpx_retired *r = &p->s->retired;
    r->n = 0;
    tcpx_status st = chan_progress(p->s, c, is_send, r);
    if (heard && r->n) *heard = 1;
    p->refs++; /* a credited op may hold the last reference */
    for (size_t i = 0; i < r->n; i++) op_chunk_done(r->ops[i]);
    r->n = 0;
    if (st) peer_fail(p, st, "%s", tcpx_last_error());
    int failed = p->state != PEER_READY;
    peer_unref(p);
    return failed;
}

/* A control message that could not be queued fails the peer here. */
static int ctrl_check(tcpx_peer *p)
{
    if (p->state == PEER_READY && p->ctrl_err) peer_fail(p, p->ctrl_err, "%s", p->ctrl_errmsg);
    return p->state != PEER_READY;
}

/* One round on a peer: messages in (each to its handler), the messages they
 * queued out, data comms, then what those queued out. */
static void peer_round(tcpx_peer *p, uint64_t now)
{
    if (ctrl_check(p)) return;
    tcpx_msg m;
    tcpx_status st;
    int heard = 0, heard_data = 0;
    unsigned handled = 0;
    while ((st = ctrl_next(p, &m)) == TCPX_OK) {
        heard = 1;
        /* A long backlog (a flood of notifications) is answered as it is
         * handled, not at the end of the round: the peer keeps hearing. */
        if (++handled % 256 == 0 && (st = ctrl_flush(p))) {
            peer_fail(p, st, "%s", tcpx_last_error());
            return;
        }
        /* The decoder admits listed types only. */
        st = handlers[m.type](p, &m);
        if (p->state != PEER_READY) return;
        if (st) {
            peer_fail(p, st, "%s: %s", tcpx_msg_name(m.type), tcpx_last_error());
            return;
        }
        if (ctrl_check(p)) return;
    }
    if (st != TCPX_IN_PROGRESS) {
        peer_fail(p, st, "%s", tcpx_last_error());
        return;
    }
    /* What the handlers queued (a READ_DATA, a CTS, ACKs) leaves before the
     * data comms move chunks: the peer acts on it while the bytes follow
     * (a single 64 KiB NIXL READ on two cores: 38 -> 27 us). */
    if (handled && (st = ctrl_flush(p))) {
        peer_fail(p, st, "%s", tcpx_last_error());
        return;
    }
    for (int c = 0; c < p->nrx; c++)
        if (chan_round(p, &p->rx[c], 0, &heard_data)) return;
    for (int c = 0; c < p->ntx; c++)
        if (chan_round(p, &p->tx[c], 1, NULL)) return;
    if (liveness_check(p, heard, heard_data, now) || ctrl_check(p)) return;
    if ((st = ctrl_flush(p))) peer_fail(p, st, "%s", tcpx_last_error());
}

static __thread int tl_polled; /* this thread's last wait was a poll (not a nap) */

/* Tell the transport whether this thread polls (tcpx_net caller_polls). */
static void polls(tcpx_session *s, int on)
{
    if (s->net && s->net->caller_polls) s->net->caller_polls(s->net, on);
}

/* Whether the control messages of a small post (at most TCPX_INLINE_MAX
 * bytes: inline, no chunks) may wait for the next round: while other
 * operations with the peer are under way, a round comes soon (the caller's
 * next test or wait that is not done yet, or the answer to one of those),
 * and the posts made until then leave in one frame, one system call, and
 * are answered in one too: with 4 sends of 4 KiB in flight, 1 message per
 * sendmsg each way became up to 4 (2-core VM: 0.44-0.52 -> 0.69-0.77
 * GB/s). Nagle's rule at message level: a post with nothing else under way
 * leaves at once. Only where a progress thread bounds the wait
 * (PUSH_HOLD_MAX_NS), and never past a full frame. */
static int push_may_wait(tcpx_session *s, tcpx_peer *p, size_t bytes, size_t nops)
{
    return s->bg_running && bytes <= TCPX_INLINE_MAX && p->nops > nops &&
           p->outq_len - p->outq_off < TCPX_CTRL_MSG_MAX;
}

/* What a post has queued for p goes out now (or, a small post while others
 * are under way, at the next round: push_may_wait): its control messages
 * first (a WRITE's header reaches the target while its chunks are still
 * being sent, so the target's handling overlaps the data; a single 64 KiB
 * NIXL WRITE on two cores: 38 -> 27 us), then its data comms' sends, then
 * what those queued. Nothing is read (that is a round's job), so a post
 * costs no system call for an answer that cannot have come yet. */
void sess_push_locked(tcpx_session *s, tcpx_peer *p, size_t bytes, size_t nops)
{
    uint64_t now = tcpx_now_ns();
    atomic_store_explicit(&s->last_app_ns, now, memory_order_relaxed);
    if (ctrl_check(p)) return;
    if (push_may_wait(s, p, bytes, nops)) {
        uint64_t none = 0;
        atomic_compare_exchange_strong_explicit(&s->held_since_ns, &none, now, memory_order_relaxed,
                                                memory_order_relaxed);
        return;
    }
    tcpx_status st = ctrl_flush(p);
    if (st) {
        peer_fail(p, st, "%s", tcpx_last_error());
        return;
    }
    /* A thread that polled for its last transfer is taken to poll for this
     * one too (NIXL's agent: post, poll, repost). */
    if (tl_polled) polls(s, 1);
    int failed = 0;
    for (int c = 0; c < p->ntx && !failed; c++) failed = chan_round(p, &p->tx[c], 1, NULL);
    if (tl_polled) polls(s, 0);
    if (failed || ctrl_check(p)) return;
    if ((st = ctrl_flush(p))) peer_fail(p, st, "%s", tcpx_last_error());
}

/* One round over everything: the connections being made, then every peer;
 * the clock is read once for all of it (a poll loop runs rounds back to
 * back, and the clock was several reads of each). */
static void progress_round(tcpx_session *s, uint64_t now)
{
    /* Every peer's round ends with its control stream flushed. */
    atomic_store_explicit(&s->held_since_ns, 0, memory_order_relaxed);
    hs_progress(s, 0, now);
    for (tcpx_peer *p = s->peers; p; p = p->next) peer_round(p, now);
}

void sess_progress_locked(tcpx_session *s)
{
    uint64_t now = tcpx_now_ns();
    atomic_store_explicit(&s->last_app_ns, now, memory_order_relaxed);
    progress_round(s, now);
    /* A round that moved megabytes took milliseconds: the caller was busy
     * with the session all along, not away from it. */
    atomic_store_explicit(&s->last_app_ns, tcpx_now_ns(), memory_order_relaxed);
}

void sess_poll_locked(tcpx_session *s)
{
    tl_polled = 1;
    polls(s, 1);
    sess_progress_locked(s);
    polls(s, 0);
}

/* Called by transport threads on every completion. */
void sess_wake(void *arg)
{
    tcpx_session *s = arg;
    pthread_mutex_lock(&s->wake_mu);
    s->wake_seq++;
    pthread_cond_broadcast(&s->wake_cv);
    pthread_mutex_unlock(&s->wake_mu);
}

#define BG_IDLE_NS 1000000ull
#define PUSH_HOLD_MAX_NS 200000ull  /* longest a post's held messages wait for a round */
#define PUSH_HOLD_RETRY_NS 20000ull /* the progress thread's next look when the lock was taken */

/* An application thread progressed the session less than BG_IDLE_NS ago. */
static int app_recent(tcpx_session *s, uint64_t now)
{
    return now - atomic_load_explicit(&s->last_app_ns, memory_order_relaxed) < BG_IDLE_NS;
}

/* A session that no application thread has progressed for BG_IDLE_NS (a
 * passive target) gets its round on the transport thread that completed
 * something for it, before that thread notifies: an ACK or a READ's reply
 * then leaves without first waking the progress thread. Only where the
 * session has a progress thread (without one, rounds run in the
 * application's calls only); never waiting for the session lock. */
int sess_io_idle(void *arg)
{
    tcpx_session *s = arg;
    return s->cfg.progress_thread && !app_recent(s, tcpx_now_ns());
}

/* 1 when the round ran and no thread need be woken for what it has done:
 * none sleeps on the wake counter, and the progress thread either polls
 * already or has no spin (with one, the first request after a quiet spell
 * wakes it, and it polls while the traffic lasts: bg_poll). */
int sess_io_serve(void *arg)
{
    tcpx_session *s = arg;
    if (!sess_io_idle(s) || pthread_mutex_trylock(&s->mu)) return 0;
    progress_round(s, tcpx_now_ns());
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(&s->serve_seq, 1, memory_order_relaxed);
    if (s->spin_ns && !atomic_load_explicit(&s->bg_polling, memory_order_relaxed)) return 0;
    return atomic_load_explicit(&s->nappers, memory_order_acquire) == 0;
}

uint64_t sess_wake_seq(tcpx_session *s) { return atomic_load_explicit(&s->wake_seq, memory_order_acquire); }

/* Sleep until the wake counter moves past `seen` or the deadline. Transports
 * that never notify are polled: the nap is then short. Also bounded by a few
 * milliseconds so that work that needs no notification (inbound accepts)
 * is still looked at. */
void sess_nap_locked(tcpx_session *s, uint64_t seen, uint64_t deadline)
{
    tl_polled = 0;
    /* Counted before the lock goes: a serve hook that takes it after us
     * then knows it must wake us (sess_io_serve). */
    atomic_fetch_add_explicit(&s->nappers, 1, memory_order_acq_rel);
    pthread_mutex_unlock(&s->mu);
    sess_wait_event(s, seen, deadline);
    atomic_fetch_sub_explicit(&s->nappers, 1, memory_order_acq_rel);
    pthread_mutex_lock(&s->mu);
}

/* Sleep until the wake counter moves past `seen` or `until`. */
static void wait_until(tcpx_session *s, uint64_t seen, uint64_t until)
{
    /* What the transport left to polling callers must now wake us. */
    if (s->net && s->net->arm) s->net->arm(s->net);
    /* wake_cv runs on CLOCK_MONOTONIC (set at session creation). */
    struct timespec abs = {.tv_sec = (time_t)(until / 1000000000ull), .tv_nsec = (long)(until % 1000000000ull)};
    int wait_ns = until > tcpx_now_ns();
    pthread_mutex_lock(&s->wake_mu);
    while (s->wake_seq == seen && wait_ns) {
        if (pthread_cond_timedwait(&s->wake_cv, &s->wake_mu, &abs) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&s->wake_mu);
}

void sess_wait_event(tcpx_session *s, uint64_t seen, uint64_t deadline)
{
    uint64_t cap = tcpx_now_ns() + (s->notify_supported ? 5000000ull : 50000ull);
    wait_until(s, seen, deadline < cap ? deadline : cap);
}

#define BG_IDLE_MAX_NS 128000000ull

/* Something happened: a completion (the wake counter) or a round run by a
 * transport thread for the idle session. */
static uint64_t activity(tcpx_session *s)
{
    return sess_wake_seq(s) + atomic_load_explicit(&s->serve_seq, memory_order_relaxed);
}

/* While traffic flows to a session no application thread progresses (a
 * passive target), the progress thread polls its sockets as a polling
 * caller would, until spin_ns pass with nothing happening, instead of
 * waiting to be woken: the next READ request or WRITE header is read at
 * once. Otherwise it waited for an I/O thread to wake in epoll_wait and
 * serve it (H200, READ of 1 MiB, 8 channels, 4 in flight: 82-93 % of
 * WRITE; polling for 300 us: 98-99 %). Sockets it leaves unarmed are armed
 * by wait_until before the thread sleeps. */
static void bg_poll(tcpx_session *s)
{
    atomic_store_explicit(&s->bg_polling, 1, memory_order_relaxed);
    uint64_t mark = activity(s), end = tcpx_now_ns() + s->spin_ns;
    for (unsigned i = 1; !atomic_load(&s->bg_stop); i++) {
        uint64_t now = tcpx_now_ns();
        if (now >= end || app_recent(s, now)) break;
        if (!pthread_mutex_trylock(&s->mu)) {
            polls(s, 1);
            progress_round(s, now);
            polls(s, 0);
            pthread_mutex_unlock(&s->mu);
        }
        uint64_t a = activity(s);
        if (a != mark) {
            mark = a;
            end = now + s->spin_ns;
        }
        if (i % 8 == 0) sched_yield();
    }
    atomic_store_explicit(&s->bg_polling, 0, memory_order_relaxed);
}

/* The background thread serves the session while no application thread
 * does: once no caller has progressed it for BG_IDLE_NS, it waits on the
 * wake condition (transport completions, GPU copies finishing) and runs a
 * round at each wake, so a passive target answers at once; at least every
 * BG_IDLE_NS for work that notifies nobody (deadlines, a hello read from a
 * new connection, transports that do not notify); over a transport that
 * notifies, each round that nothing woke doubles that tick up to
 * BG_IDLE_MAX_NS, so an idle session costs next to no CPU. While traffic
 * flows (something happened during its last wait) it polls first
 * (bg_poll), which saves the sleep-and-wake delay of each request; an idle
 * session does not poll. While callers progress the session (the last
 * call left less than BG_IDLE_NS ago, or one holds the session lock now) it
 * only naps, and it never waits for the session lock. */
static void *bg_main(void *arg)
{
    tcpx_session *s = arg;
    int busy = 0;
    uint64_t tick = BG_IDLE_NS;
    sess_own_thread_gpu(s);
    while (!atomic_load(&s->bg_stop)) {
        uint64_t now = tcpx_now_ns();
        uint64_t app = atomic_load_explicit(&s->last_app_ns, memory_order_relaxed);
        if (now - app < BG_IDLE_NS) {
            uint64_t left = BG_IDLE_NS - (now - app);
            /* A post's messages held for the caller's next round leave by
             * PUSH_HOLD_MAX_NS even if that round does not come. */
            uint64_t held = atomic_load_explicit(&s->held_since_ns, memory_order_relaxed);
            if (held && now - held >= PUSH_HOLD_MAX_NS && !pthread_mutex_trylock(&s->mu)) {
                progress_round(s, now);
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            if (held) { /* due, or overdue with the lock taken: look again soon */
                uint64_t to = now - held < PUSH_HOLD_MAX_NS ? PUSH_HOLD_MAX_NS - (now - held) : PUSH_HOLD_RETRY_NS;
                if (to < left) left = to;
            }
            struct timespec nap = {0, (long)left};
            nanosleep(&nap, NULL);
            busy = 0;
            tick = BG_IDLE_NS;
            continue;
        }
        /* Read before the round: what happens from here on ends the wait. */
        uint64_t seen = sess_wake_seq(s), act = activity(s);
        if (pthread_mutex_trylock(&s->mu)) {
            /* Someone runs a round or a post right now (a waiting caller
             * sleeps without the lock): it moves the bytes. Waiting on the
             * wake counter would first arm the sockets it polls, and an
             * I/O thread would then fight it for them. */
            struct timespec nap = {0, (long)BG_IDLE_NS};
            nanosleep(&nap, NULL);
            continue;
        }
        progress_round(s, tcpx_now_ns());
        pthread_mutex_unlock(&s->mu);
        if (busy && s->spin_ns) bg_poll(s);
        wait_until(s, seen, tcpx_now_ns() + tick);
        busy = activity(s) != act;
        if (busy || !s->notify_supported) tick = BG_IDLE_NS;
        else if (tick < BG_IDLE_MAX_NS) tick *= 2;
    }
    return NULL;
}

int sess_bg_start(tcpx_session *s)
{
    if (pthread_create(&s->bg_thread, NULL, bg_main, s)) return -1;
    s->bg_running = 1;
    return 0;
}

void sess_bg_stop(tcpx_session *s)
{
    if (!s->bg_running) return;
    atomic_store(&s->bg_stop, 1);
    pthread_join(s->bg_thread, NULL);
    s->bg_running = 0;
}

tcpx_status tcpx_session_progress(tcpx_session *s)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "session is NULL");
    sess_lock(s);
    sess_poll_locked(s);
    sess_unlock(s);
    return TCPX_OK;
}
