/* sock_poll.c - the socket transport's I/O threads: a pool of pollers, each
 * an epoll set served by one thread, shared by all the transport's sockets.
 *
 * A socket (conn) belongs to one poller, chosen round-robin when its comm
 * is created; pollers start lazily, so a transport with one comm runs one
 * thread. A socket is armed (EPOLLONESHOT) only while work waits for it and
 * nobody else will come for it: a mover that stops at the socket's
 * would-block arms it, except a caller stopped by a small part, which puts
 * the socket on the lazy list instead (so does a caller that polls, on a
 * machine of one or two cores, whatever the part): callers poll it, and
 * sock_arm (the core calls it before any thread sleeps) arms the list. So a message
 * answered while its caller polls costs no I/O thread wake-up. A mover that
 * spends its byte budget with bytes left hands the socket to its poller's
 * carry-over list, served after the next round of events. A comm being
 * closed is taken out of its poller's set and lists and freed only after
 * that poller has finished the round it was in (its generation moved on),
 * so no thread touches it after. While the owner is idle (no thread of its
 * own progressing it), a round's notifications are put off to its end, and
 * the owner's serve hook runs first, outside the round, so that it may close
 * comms (their detach does not wait for the thread it runs on; see
 * sock_notify.c). Listeners are watched too (sock_flag, edge-triggered): an
 * arrival sets a flag, so accept costs nothing while no connection is
 * pending.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"

#define SOCK_THREAD_STACK (512 * 1024)
#define SOCK_POLL_BATCH 64

static void poke(sock_poller *p)
{
    uint64_t one = 1;
    while (write(p->evfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* Tagged epoll data: a watched flag has its low bit set; NULL is evfd. */
#define FLAG_TAG ((uintptr_t)1)

/* Take up to `cap` sockets off the carry-over list (the rest wait for the
 * next round). Once off the list a socket may be carried again at once. */
static int take_carried(sock_poller *p, sock_conn **out, int cap)
{
    int n = 0;
    pthread_mutex_lock(&p->mu);
    while (n < cap && p->more_head) {
        sock_conn *k = p->more_head;
        p->more_head = k->more_next;
        if (!p->more_head) p->more_tail = NULL;
        k->in_more = 0;
        out[n++] = k;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void *poller_main(void *arg)
{
    sock_poller *p = arg;
    sock_poller_enter(p);
    struct epoll_event ev[SOCK_POLL_BATCH];
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&p->mu);
        int carried = p->more_head != NULL;
        pthread_mutex_unlock(&p->mu);
        int n = epoll_wait(p->epfd, ev, SOCK_POLL_BATCH, carried ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            TCPX_ERROR("socket transport: epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uintptr_t d = (uintptr_t)ev[i].data.ptr;
            if (!d) {
                uint64_t v;
                while (read(p->evfd, &v, sizeof v) < 0 && errno == EINTR) {
                }
            } else if (d & FLAG_TAG) {
                sock_flag *f = (sock_flag *)(d & ~FLAG_TAG);
                atomic_store(&f->ready, 1);
                sock_notify(f->net);
            } else {
                sock_conn *k = (sock_conn *)d;
                atomic_store(&k->armed, 0); /* one shot: the kernel disarmed it */
                k->comm->net->run(k, 1);
            }
        }
        /* Sockets whose budget ran out, after everyone else had a turn. A
         * socket spent again goes back on the list for the next round. */
        sock_conn *carried_now[SOCK_POLL_BATCH];
        int nc = take_carried(p, carried_now, SOCK_POLL_BATCH);
        for (int i = 0; i < nc; i++) carried_now[i]->comm->net->run(carried_now[i], 1);
        /* Nothing of this round is touched any more. */
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        sock_notify_round(p);
    }
    return NULL;
}

static int poller_start(sock_poller *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || p->evfd < 0) goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev)) goto fail;
    atomic_init(&p->stop, 0);
    atomic_init(&p->gen, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_attr_t attr;
    sigset_t all, old;
    if (pthread_attr_init(&attr)) goto fail;
    pthread_attr_setstacksize(&attr, SOCK_THREAD_STACK);
    /* I/O threads take no signals: the application's handlers run elsewhere. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, &attr, poller_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) goto fail;
    p->started = 1;
    return 0;
fail:
    if (p->epfd >= 0) close(p->epfd);
    if (p->evfd >= 0) close(p->evfd);
    p->epfd = p->evfd = -1;
    return -1;
}

int sock_pollers_init(sock_net *n, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    if (nthreads > SOCK_MAX_POLLERS) nthreads = SOCK_MAX_POLLERS;
    n->pollers = calloc((size_t)nthreads, sizeof *n->pollers);
    if (!n->pollers) return tcpx_set_error(TCPX_ERR_NOMEM, "socket transport: poller allocation failed");
    for (int i = 0; i < nthreads; i++) {
        n->pollers[i].epfd = n->pollers[i].evfd = -1;
        n->pollers[i].net = n;
    }
    n->npollers = nthreads;
    pthread_mutex_init(&n->poll_mu, NULL);
    pthread_mutex_init(&n->lazy_mu, NULL);
    return TCPX_OK;
}

void sock_pollers_fini(sock_net *n)
{
    if (!n->pollers) return;
    for (int i = 0; i < n->npollers; i++) {
        sock_poller *p = &n->pollers[i];
        if (!p->started) continue;
        atomic_store(&p->stop, 1);
        poke(p);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->mu);
        close(p->epfd);
        close(p->evfd);
    }
    pthread_mutex_destroy(&n->poll_mu);
    pthread_mutex_destroy(&n->lazy_mu);
    free(n->pollers);
    n->pollers = NULL;
}

static sock_poller *pick(sock_net *n)
{
    pthread_mutex_lock(&n->poll_mu);
    sock_poller *p = &n->pollers[n->next_poller++ % n->npollers];
    int rc = p->started ? 0 : poller_start(p);
    pthread_mutex_unlock(&n->poll_mu);
    if (rc) {
        tcpx_set_error(TCPX_ERR_SYSTEM, "socket transport: cannot start an I/O thread: %s", strerror(errno));
        return NULL;
    }
    return p;
}

int sock_poller_attach(sock_net *n, sock_conn *k)
{
    sock_poller *p = pick(n);
    if (!p) return TCPX_ERR_SYSTEM;
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = k}; /* unarmed until there is work */
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, k->fd, &ev))
        return tcpx_set_error(TCPX_ERR_SYSTEM, "socket transport: epoll_ctl: %s", strerror(errno));
    k->poller = p;
    return TCPX_OK;
}

void sock_conn_arm(sock_conn *k)
{
    if (!k->poller || atomic_exchange(&k->armed, 1)) return;
    struct epoll_event ev = {.events = (k->comm->is_send ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT, .data.ptr = k};
    if (epoll_ctl(k->poller->epfd, EPOLL_CTL_MOD, k->fd, &ev)) {
        atomic_store(&k->armed, 0);
        sock_comm_fail(k->comm, TCPX_ERR_SYSTEM, "socket transport: epoll_ctl for %s: %s", k->comm->peer,
                       strerror(errno));
    }
}

void sock_conn_lazy(sock_conn *k)
{
    sock_net *n = k->comm->net;
    if (!k->poller || atomic_load(&k->armed)) return;
    pthread_mutex_lock(&n->lazy_mu);
    if (!k->in_lazy) {
        k->in_lazy = 1;
        k->lazy_next = n->lazy_head;
        n->lazy_head = k;
    }
    pthread_mutex_unlock(&n->lazy_mu);
}

int sock_conn_is_lazy(sock_conn *k)
{
    sock_net *n = k->comm->net;
    pthread_mutex_lock(&n->lazy_mu);
    int lazy = k->in_lazy;
    pthread_mutex_unlock(&n->lazy_mu);
    return lazy;
}

void sock_arm(tcpx_net *net)
{
    sock_net *n = (sock_net *)net;
    pthread_mutex_lock(&n->lazy_mu);
    sock_conn *k = n->lazy_head;
    n->lazy_head = NULL;
    for (; k; k = k->lazy_next) {
        k->in_lazy = 0;
        sock_conn_arm(k);
    }
    pthread_mutex_unlock(&n->lazy_mu);
}

static void unlazy(sock_net *n, sock_conn *k)
{
    pthread_mutex_lock(&n->lazy_mu);
    if (k->in_lazy) {
        sock_conn **pp = &n->lazy_head;
        while (*pp != k) pp = &(*pp)->lazy_next;
        *pp = k->lazy_next;
        k->in_lazy = 0;
    }
    pthread_mutex_unlock(&n->lazy_mu);
}

void sock_conn_carry(sock_conn *k)
{
    sock_poller *p = k->poller;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    int add = !k->in_more;
    if (add) {
        k->in_more = 1;
        k->more_next = NULL;
        if (p->more_tail)
            p->more_tail->more_next = k;
        else
            p->more_head = k;
        p->more_tail = k;
    }
    pthread_mutex_unlock(&p->mu);
    /* The poller itself looks at its list after each round. */
    if (add && sock_this_poller() != p) poke(p);
}

static void uncarry(sock_poller *p, sock_conn *k)
{
    pthread_mutex_lock(&p->mu);
    if (k->in_more) {
        sock_conn **pp = &p->more_head, *prev = NULL;
        while (*pp != k) {
            prev = *pp;
            pp = &(*pp)->more_next;
        }
        *pp = k->more_next;
        if (p->more_tail == k) p->more_tail = prev;
        k->in_more = 0;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Wait until every poller in seen[0..n) finished the round it was in. The
 * poller this runs on (its serve hook closing a comm) is between rounds. */
static void wait_rounds(sock_poller **seen, const unsigned *gen, int n)
{
    /* Each poller finishes its round quickly (nothing in it blocks). */
    for (int j = 0; j < n; j++) {
        if (seen[j] == sock_this_poller()) continue;
        struct timespec nap = {0, 20000};
        while (atomic_load_explicit(&seen[j]->gen, memory_order_acquire) == gen[j]) nanosleep(&nap, NULL);
    }
}

void sock_pollers_detach(sock_comm *c)
{
    sock_poller *seen[SOCK_MAX_POLLERS];
    unsigned gen[SOCK_MAX_POLLERS];
    int nseen = 0;
    for (int i = 0; i < c->nsocks; i++) {
        sock_conn *k = &c->conns[i];
        pthread_mutex_lock(&k->mu); /* an I/O thread moving k's bytes finishes first */
        sock_poller *p = k->poller;
        if (p) {
            unlazy(c->net, k); /* first: sock_arm then cannot arm it any more */
            epoll_ctl(p->epfd, EPOLL_CTL_DEL, k->fd, NULL);
            uncarry(p, k);
        }
        k->poller = NULL;
        pthread_mutex_unlock(&k->mu);
        if (!p) continue;
        int j = 0;
        while (j < nseen && seen[j] != p) j++;
        if (j == nseen) {
            seen[nseen] = p;
            gen[nseen++] = atomic_load_explicit(&p->gen, memory_order_acquire);
            poke(p);
        }
    }
    wait_rounds(seen, gen, nseen);
}

int sock_poller_watch(sock_net *n, sock_flag *f)
{
    sock_poller *p = pick(n);
    if (!p) return TCPX_ERR_SYSTEM;
    atomic_init(&f->ready, 1); /* look once: connections may be pending already */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = (void *)((uintptr_t)f | FLAG_TAG)};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, f->fd, &ev))
        return tcpx_set_error(TCPX_ERR_SYSTEM, "socket transport: epoll_ctl: %s", strerror(errno));
    f->poller = p;
    return TCPX_OK;
}

void sock_poller_unwatch(sock_flag *f)
{
    sock_poller *p = f->poller;
    if (!p) return;
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, f->fd, NULL);
    f->poller = NULL;
    unsigned gen = atomic_load_explicit(&p->gen, memory_order_acquire);
    poke(p);
    wait_rounds(&p, &gen, 1);
}
