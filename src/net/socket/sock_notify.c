/* sock_notify.c - telling the transport's owner that requests may have
 * finished. From a caller's thread at once. From an I/O thread, while the
 * owner is idle (no thread of its own progressing it), at the end of that
 * thread's round: the owner's serve hook runs first, outside the round (it
 * may close comms: their detach does not wait for the poller it runs on),
 * and the notification is then skipped when the hook saw to everything. */
#include "net/socket/sock.h"

static __thread sock_poller *this_poller; /* set in a poller's own thread */

void sock_poller_enter(sock_poller *p) { this_poller = p; }

sock_poller *sock_this_poller(void) { return this_poller; }

void sock_notify(sock_net *n)
{
    sock_poller *p = this_poller;
    if (p && p->net == n && n->idle && n->idle(n->notify_arg)) {
        p->serve_due = 1;
        return;
    }
    if (n->notify) n->notify(n->notify_arg);
}

/* What the hook's own work finishes is put off again: the hook runs again
 * to see it (a few times; then the owner is notified). */
#define SERVE_AGAIN_MAX 3

void sock_notify_round(sock_poller *p)
{
    sock_net *n = p->net;
    int served = 1;
    for (int i = 0; p->serve_due && served && i < SERVE_AGAIN_MAX; i++) {
        p->serve_due = 0;
        served = n->serve && n->serve(n->notify_arg);
    }
    if ((p->serve_due || !served) && n->notify) n->notify(n->notify_arg);
    p->serve_due = 0;
}
