/*
 * sock.h - internals of the built-in multi-socket TCP transport.
 *
 * A comm is `nsocks` TCP connections to one peer. A message of N bytes is
 * cut into nsocks contiguous parts, and every connection carries an 8-byte
 * little-endian header with N followed by its part; receivers read straight
 * into the posted buffer. Sockets are non-blocking: each has a FIFO of
 * parts, moved by whoever gets to it first: the caller's thread when it
 * posts or tests (the short path: a small message goes onto the socket, and
 * its answer is read, with no thread hand-off), or the transport's pool of
 * I/O threads (epoll) when the socket is not ready or the part is large.
 *
 * Files: sock_addr.c (addresses, socket options), sock_wire.c (listen handle
 * and per-socket hello), sock_listen.c (listen/accept), sock_connect.c
 * (connect state machine), sock_comm.c (comm lifetime), sock_fail.c (a
 * comm's failure), sock_poll.c (the I/O thread pool), sock_io.c (moving
 * parts, isend/irecv/test), sock_net.c (the tcpx_net table).
 */
#ifndef TCPX_NET_SOCK_H
#define TCPX_NET_SOCK_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/net.h"

#define SOCK_MAX_SOCKS 64          /* sockets per comm accepted in a hello */
#define SOCK_MAX_REQUESTS 64       /* requests in flight per comm */
#define SOCK_MAX_PENDING 128       /* half-open accepted connections per listener */
#define SOCK_HELLO_TIMEOUT_MS 10000
#define SOCK_PART_ALIGN 4096
#define SOCK_ADDR_STRLEN 64        /* "[v6addr%scope]:port" */
#define SOCK_MAX_POLLERS 64        /* I/O threads per transport */
#define SOCK_CALLER_BUDGET (256u * 1024) /* bytes a caller's post/test moves per socket before the pool takes over */
#define SOCK_POLLER_BUDGET (4u << 20)    /* bytes an I/O thread moves on one socket before serving the others */
#define SOCK_LOWAT_MAX (512u * 1024)     /* largest SO_RCVLOWAT a receive in a long body sets */
#define SOCK_ACK_REFRESH_NS 10000000ull /* delayed ACKs (TCP_QUICKACK 0) asked for again after this */
#define SOCK_LAZY_MAX (64u * 1024)       /* a part this small, stopped by a caller, waits for callers' polls */
#define SOCK_RXBUF (64u * 1024)          /* receive: small messages are read through this, header and body at once */
#define SOCK_AHEAD_MAX (16u * 1024)      /* a share or rest of a body this small is read ahead and copied */
#define SOCK_TAIL_AHEAD (4u * 1024)      /* bytes read ahead behind a body read straight into place */
#define SOCK_DRAINED_NS 2000ull          /* a caller does not read again this soon after a read that emptied the socket */

/* What moving a socket's queued parts stopped at. */
enum sock_stop {
    SOCK_STOP_EMPTY = 0,           /* nothing queued */
    SOCK_STOP_AGAIN = 1,           /* the socket would block */
    SOCK_STOP_BUDGET = 2,          /* the byte budget is spent: the poller carries on */
};

typedef struct sock_conn sock_conn;

/* One I/O thread and its epoll set (sock_poll.c). */
typedef struct sock_poller {
    int epfd, evfd;                /* evfd wakes the thread (stop, detach, more work) */
    pthread_t thread;
    int started;
    atomic_int stop;
    atomic_uint gen;               /* rounds (events, then carried-over sockets) finished */
    pthread_mutex_t mu;            /* guards the carry-over list */
    sock_conn *more_head, *more_tail; /* sockets whose budget ran out with bytes still to move */
    struct sock_net *net;
    int serve_due;                 /* own thread only: a notification put off to the end of the round */
} sock_poller;

/* A socket whose readiness is only noticed (a listener): its poller sets
 * `ready` and notifies the transport's owner. */
typedef struct sock_flag {
    atomic_int ready;
    struct sock_net *net;
    sock_poller *poller;
    int fd;
} sock_flag;

/* ---- the transport instance ---- */

typedef struct sock_net {
    tcpx_net base;                 /* first: a tcpx_net * is a sock_net * */
    int socks_per_comm;
    int peer_timeout_ms;
    int hello_timeout_ms;
    tcpx_net_notify_fn notify;
    tcpx_net_serve_fn serve;
    tcpx_net_idle_fn idle;
    void *notify_arg;
    struct sockaddr_storage bind_ss; /* port 0 */
    socklen_t bind_len;
    char bind_str[SOCK_ADDR_STRLEN];
    char ifname[32];
    int speed_mbps;
    sock_poller *pollers;          /* npollers, started when first needed */
    int npollers;
    unsigned next_poller;
    pthread_mutex_t poll_mu;
    void (*run)(sock_conn *k, int by_poller); /* what an I/O thread does with a ready socket (sock_conn_run) */
    pthread_mutex_t lazy_mu;       /* guards the lazy list */
    sock_conn *lazy_head;          /* sockets left unarmed for callers' polls (sock_arm arms them) */
    int pollers_move_all;          /* a polling caller moves large parts too (1-2 cores: sock_caller_polls) */
} sock_net;

/* ---- addresses and options (sock_addr.c) ---- */

/* Resolve opts->bind_addr ("" or NULL = first UP non-loopback IPv4, else
 * 127.0.0.1) into n->bind_ss, and find its interface name and speed. */
int sock_addr_resolve(sock_net *n, const char *bind_addr);
/* "1.2.3.4:5" or "[::1]:5". */
void sock_addr_format(const struct sockaddr *sa, char *buf, size_t cap);
/* TCP_NODELAY, keepalive and TCP_USER_TIMEOUT from peer_timeout_ms. */
void sock_set_options(int fd, int peer_timeout_ms);
int sock_set_nonblocking(int fd, int on);

/* ---- wire structures (sock_wire.c) ---- */

#define SOCK_HANDLE_MAGIC 0x4b534354u  /* "TCSK" little-endian */
#define SOCK_HELLO_MAGIC 0x4c485354u   /* "TSHL" */
#define SOCK_HELLO_SIZE 32

typedef struct sock_handle {
    struct sockaddr_storage ss;    /* family, address, port */
    socklen_t len;
    uint64_t nonce;                /* random per listener */
} sock_handle;

typedef struct sock_hello {
    uint64_t nonce;                /* the listener's nonce, from its handle */
    uint64_t comm_id;              /* random per connecting comm */
    uint32_t index, count;         /* this socket's index and the comm's socket count */
} sock_hello;

void sock_handle_encode(const sock_handle *h, void *out /* TCPX_NET_HANDLE_SIZE */);
/* Decode len bytes (TCPX_NET_HANDLE_SIZE) of a listen handle: TCPX_OK, or
 * TCPX_ERR_PROTOCOL and a sentence for tcpx_last_error() (wrong size, magic
 * or version, port 0, family not 4 or 6). Pure: no I/O. */
tcpx_status sock_handle_decode(const void *in, size_t len, sock_handle *h);
void sock_hello_encode(const sock_hello *h, uint8_t out[SOCK_HELLO_SIZE]);
/* Decode the len bytes (SOCK_HELLO_SIZE) a new connection sent first: TCPX_OK
 * on a well-formed hello (magic, version, zero reserved bytes,
 * index < count <= SOCK_MAX_SOCKS), else TCPX_ERR_PROTOCOL and a sentence for
 * tcpx_last_error(); *h is written only on success. Pure: no I/O. */
tcpx_status sock_hello_decode(const void *in, size_t len, sock_hello *h);

/* ---- comms (sock_comm.c) ---- */

typedef struct sock_req sock_req;

/* One part of a request queued on one connection's thread. */
typedef struct sock_part {
    struct sock_part *next;
    sock_req *req;
} sock_part;

struct sock_conn {
    int fd;
    int index;
    struct sock_comm *comm;
    sock_poller *poller;
    pthread_mutex_t qmu;           /* guards head/tail (posting appends, the mover pops) */
    sock_part *head, *tail;
    pthread_mutex_t mu;            /* held by the one thread moving bytes; guards what follows */
    int started;                   /* the head part's header is set up */
    uint8_t hdr[8];
    size_t hdr_done;
    size_t off, len, done;         /* the head part's byte range in its request; bytes of it moved */
    atomic_int kick;               /* another thread found it busy: the mover looks again */
    atomic_int armed;              /* in its epoll set's wait (one shot) */
    int lowat;                     /* receive: the socket's SO_RCVLOWAT */
    uint64_t acks_set_ns;          /* receive: when delayed ACKs were last asked for (0: never) */
    uint8_t *rxb;                  /* receive: SOCK_RXBUF bytes read ahead (a part's header and body in one
                                      system call, maybe the next part's too); bytes [rx_head, rx_tail) unused */
    size_t rx_head, rx_tail;
    uint64_t drained_ns;           /* receive: when a read last emptied the socket (0: not just now) */
    int by_poller;                 /* the thread moving bytes is an I/O thread (not a caller) */
    sock_conn *more_next;          /* poller->mu: in its carry-over list */
    int in_more;
    sock_conn *lazy_next;          /* net->lazy_mu: in the lazy list */
    int in_lazy;
};

typedef struct sock_comm {
    sock_net *net;
    int is_send;
    int nsocks;
    char peer[SOCK_ADDR_STRLEN];
    /* Failure: the first failing thread claims `fail_claimed`, writes
     * fail_msg, then publishes fail_status (release). */
    atomic_int fail_claimed;
    atomic_int fail_status;
    atomic_int closing;
    char fail_msg[256];
    /* Caller side only (the caller serializes calls on one comm). */
    int outstanding;
    sock_req *live;                /* requests handed out and not yet freed */
    sock_req *free_reqs;           /* freed requests kept for reuse */
    int nfree;
    sock_conn conns[];
} sock_comm;

struct sock_req {
    sock_comm *comm;
    sock_req *prev, *next;         /* comm->live */
    int is_send;
    struct iovec *iov;             /* the message's pieces: &one, or iov_store */
    int niov;
    struct iovec one;
    struct iovec *iov_store;       /* kept with the request for reuse */
    int iov_cap;
    size_t size;                   /* send: message size; recv: capacity */
    atomic_size_t total;           /* recv: size agreed by the headers, SIZE_MAX until read */
    atomic_int parts_left;         /* last access of a thread to the request */
    atomic_int failed;
    sock_part parts[];
};

/* Build a comm from connected sockets (fds[i] is socket i): non-blocking,
 * each served by a poller of the pool. On failure closes the fds. */
int sock_comm_create(sock_net *n, int is_send, const int *fds, int nsocks, const char *peer, sock_comm **out);
/* Stop threads, close sockets, free abandoned requests and the comm. */
void sock_comm_destroy(sock_comm *c);
/* Mark the comm failed with st (first caller wins), shut its sockets down
 * (queued parts then fail without touching user buffers), and notify. */
void sock_comm_fail(sock_comm *c, int st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int sock_comm_failed(sock_comm *c)
{
    return atomic_load_explicit(&c->fail_status, memory_order_acquire);
}

/* ---- the I/O thread pool (sock_poll.c) ---- */

int sock_pollers_init(sock_net *n, int nthreads);
void sock_pollers_fini(sock_net *n);   /* after every comm and listener is gone */
/* Put k in a poller's set, unarmed, starting that poller if needed. */
int sock_poller_attach(sock_net *n, sock_conn *k);
/* Have k's poller wait for its socket (one shot: an event disarms it). */
void sock_conn_arm(sock_conn *k);
/* Leave k unarmed while callers poll; sock_arm arms it before anyone sleeps.
 * The caller holds k->mu. */
void sock_conn_lazy(sock_conn *k);
/* k waits on the lazy list: for a caller's poll to move it. */
int sock_conn_is_lazy(sock_conn *k);
/* The tcpx_net arm call: every lazy socket is armed. */
void sock_arm(tcpx_net *n);
/* The tcpx_net caller_polls call. */
void sock_caller_polls(tcpx_net *n, int on);
/* The poller continues k (its budget ran out). */
void sock_conn_carry(sock_conn *k);
/* Take c's sockets out of their sets and lists and wait until no I/O
 * thread can be touching them. */
void sock_pollers_detach(sock_comm *c);

/* ---- notifying the owner (sock_notify.c) ---- */

/* Tell the owner a request may have finished: at once, or, on one of n's
 * I/O threads while the owner is idle (tcpx_net_opts idle), at the end of
 * that thread's round, after the owner's serve hook. */
void sock_notify(sock_net *n);
/* A poller's thread: this thread is p's (at its start). */
void sock_poller_enter(sock_poller *p);
/* The poller whose thread this is, or NULL. */
sock_poller *sock_this_poller(void);
/* End of p's round: what sock_notify put off (serve hook, notification). */
void sock_notify_round(sock_poller *p);
/* Watch f->fd for reading: f->ready is set and the owner notified on each
 * arrival (f->net set by the caller). */
int sock_poller_watch(sock_net *n, sock_flag *f);
/* Stop watching; no I/O thread touches f after. */
void sock_poller_unwatch(sock_flag *f);

/* ---- I/O (sock_io.c) ---- */

/* Move k's queued parts as far as the socket allows. An I/O thread
 * (by_poller) moves up to SOCK_POLLER_BUDGET bytes and arms the socket when
 * it would block; a caller moves up to SOCK_CALLER_BUDGET and, when the part
 * that waits is small, leaves the socket unarmed (the caller, who polls,
 * will be back, or arms it before sleeping: the short path costs no wake-up
 * of an I/O thread). A budget spent with bytes left hands k to its poller.
 * Any thread may call it: one moves bytes at a time; a thread that finds k
 * busy leaves it to the mover, which looks again. */
void sock_conn_run(sock_conn *k, int by_poller);

/* Offset and length of part `index` of `nsocks` of a message of `size` bytes. */
void sock_part_range(size_t size, int nsocks, int index, size_t *off, size_t *len);
int sock_isend(tcpx_net *n, void *comm, void *data, size_t size, int tag, void *mh, void **request);
int sock_irecv(tcpx_net *n, void *comm, void *data, size_t size, int tag, void *mh, void **request);
int sock_isendv(tcpx_net *n, void *comm, const tcpx_net_iov *iov, int niov, void **request);
int sock_irecvv(tcpx_net *n, void *comm, const tcpx_net_iov *iov, int niov, void **request);
int sock_test(tcpx_net *n, void *request, int *done, size_t *size);
/* Free a request that no thread references any more. */
void sock_req_free(sock_req *r);

/* ---- listen/accept (sock_listen.c), connect (sock_connect.c) ---- */

int sock_listen(tcpx_net *n, int dev, void *handle, void **listen_comm);
int sock_accept(tcpx_net *n, void *listen_comm, void **recv_comm);
int sock_close_listen(tcpx_net *n, void *listen_comm);
int sock_connect(tcpx_net *n, int dev, const void *handle, void **state, void **send_comm);
void sock_connect_abort(tcpx_net *n, void *state);

/* Test hook: how long accept waits for a complete hello (default 10 s). */
void tcpx_net_socket_set_hello_timeout(tcpx_net *n, int ms);

#endif
