/* sock_poll.c - the socket transport's I/O threads: a pool of pollers, each
 * an epoll set served by one thread, shared by all the transport's sockets.
 *
 * A socket (conn) belongs to one poller, chosen round-robin when its comm
 * is created; pollers start lazily, so a transport with one comm runs one
 * thread. A conn is armed (EPOLLONESHOT, for reading or writing) only while
 * it has work that waits for the socket; whoever finds it ready moves its
 * bytes (sock_conn_run). A comm being closed is taken out of its pollers'
 * sets and freed only after each of them has finished the batch of events
 * it was handling (its generation moved on), so no thread touches it after.
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

static void *poller_main(void *arg)
{
    sock_poller *p = arg;
    struct epoll_event ev[SOCK_POLL_BATCH];
    while (!atomic_load(&p->stop)) {
        int n = epoll_wait(p->epfd, ev, SOCK_POLL_BATCH, -1);
        if (n < 0 && errno != EINTR) {
            TCPX_ERROR("socket transport: epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            sock_conn *k = ev[i].data.ptr;
            if (!k) {
                uint64_t v;
                while (read(p->evfd, &v, sizeof v) < 0 && errno == EINTR) {
                }
                continue;
            }
            atomic_store(&k->armed, 0); /* one-shot: the kernel disarmed it */
            sock_conn_run(k, SOCK_POLLER_BUDGET);
        }
        /* Nothing of this batch is touched any more. */
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
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
    for (int i = 0; i < nthreads; i++) n->pollers[i].epfd = n->pollers[i].evfd = -1;
    n->npollers = nthreads;
    pthread_mutex_init(&n->poll_mu, NULL);
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
        close(p->epfd);
        close(p->evfd);
    }
    pthread_mutex_destroy(&n->poll_mu);
    free(n->pollers);
    n->pollers = NULL;
}

int sock_poller_attach(sock_net *n, sock_conn *k)
{
    pthread_mutex_lock(&n->poll_mu);
    sock_poller *p = &n->pollers[n->next_poller++ % n->npollers];
    int rc = p->started ? 0 : poller_start(p);
    pthread_mutex_unlock(&n->poll_mu);
    if (rc) return tcpx_set_error(TCPX_ERR_SYSTEM, "socket transport: cannot start an I/O thread: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = k}; /* disarmed until there is work */
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, k->fd, &ev))
        return tcpx_set_error(TCPX_ERR_SYSTEM, "socket transport: epoll_ctl: %s", strerror(errno));
    k->poller = p;
    return TCPX_OK;
}

void sock_conn_arm(sock_conn *k, int want)
{
    if (!want || !k->poller || atomic_load(&k->armed) == want) return;
    struct epoll_event ev = {.events = (uint32_t)(want == SOCK_WANT_OUT ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT,
                             .data.ptr = k};
    atomic_store(&k->armed, want);
    if (epoll_ctl(k->poller->epfd, EPOLL_CTL_MOD, k->fd, &ev)) {
        atomic_store(&k->armed, 0);
        sock_comm_fail(k->comm, TCPX_ERR_SYSTEM, "socket transport: epoll_ctl for %s: %s", k->comm->peer,
                       strerror(errno));
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
        if (p) epoll_ctl(p->epfd, EPOLL_CTL_DEL, k->fd, NULL);
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
    /* Each poller finishes its batch quickly (nothing in it blocks): wait. */
    for (int j = 0; j < nseen; j++) {
        struct timespec nap = {0, 20000};
        while (atomic_load_explicit(&seen[j]->gen, memory_order_acquire) == gen[j]) nanosleep(&nap, NULL);
    }
}
