/*
 * net.h - the internal transport interface.
 *
 * Shaped after the ncclNet plugin ABI so that the core drives the built-in
 * socket transport and external ncclNet plugins (GPUDirect-TCPX) the same way:
 *
 *   - comms are one-directional: a send comm (from connect_send) pairs with one
 *     recv comm (from accept);
 *   - requests on one comm are matched in posting order (the k-th isend on a
 *     send comm lands in the buffer of the k-th irecv on its recv comm);
 *   - an irecv posts a capacity; test() reports the size actually sent, and a
 *     message larger than the posted capacity is an error, never a truncation;
 *   - every call is non-blocking: connect_send/accept may return a NULL comm,
 *     meaning "not yet, call again"; isend/irecv may return a NULL request,
 *     meaning "no room now, call again";
 *   - at most props.max_requests requests are in flight per comm.
 *
 * Return codes are tcpx_status values (TCPX_OK or a negative error); a
 * transport also records a sentence with tcpx_set_error().
 */
#ifndef TCPX_NET_H
#define TCPX_NET_H

#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"

#define TCPX_NET_HANDLE_SIZE 128   /* ncclNet NCCL_NET_HANDLE_MAXSIZE */

enum tcpx_net_ptr {
    TCPX_NET_PTR_HOST = 1,         /* values as NCCL_PTR_HOST / NCCL_PTR_CUDA */
    TCPX_NET_PTR_CUDA = 2,
};

enum tcpx_net_offload {
    TCPX_NET_OFFLOAD_NONE = 0,
    TCPX_NET_OFFLOAD_UNPACK = 1,   /* GPUDirect-TCPX: receive lands in bounce pages */
};

typedef struct tcpx_net_props {
    char name[64];                 /* device (NIC) name */
    char pci_path[256];            /* its sysfs PCI path ("" if unknown): matched to the GPU's */
    int ptr_support;               /* bit mask of tcpx_net_ptr */
    int speed_mbps;                /* link speed, 0 if unknown */
    int max_comms;                 /* max comms per device */
    int max_requests;              /* max requests in flight per comm */
    int max_recvs;                 /* max buffers per grouped irecv (we use 1) */
    size_t max_message;            /* largest single isend/irecv in bytes */
    int offload;                   /* enum tcpx_net_offload */
} tcpx_net_props;

/* Called by a transport's own threads whenever a request may have completed,
 * so that a waiting caller can wake up instead of polling. May be NULL. */
typedef void (*tcpx_net_notify_fn)(void *arg);

/* Optional pair (NULL: not used). idle: whether the owner has no thread of
 * its own progressing it now; cheap, called on every completion. While it
 * is idle, a transport thread puts its notifications off to the end of its
 * round of work, then calls serve, holding none of the transport's locks,
 * and notifies after unless serve returned 1 (it has seen to everything and
 * nobody waits): the owner does its work there (the core runs the session's
 * round: a passive target's ACK or READ reply leaves without waking a
 * second thread). serve may call back into the transport, including
 * closing comms. */
typedef int (*tcpx_net_idle_fn)(void *arg);
typedef int (*tcpx_net_serve_fn)(void *arg);

/* Transport-wide options the core passes at init. */
typedef struct tcpx_net_opts {
    int socks_per_comm;            /* built-in transport: TCP sockets per comm */
    int io_threads;                /* built-in transport: I/O threads (0 = one per core, at most 32; 1 on 1-2 cores) */
    int callers_move;              /* built-in transport: polling callers move large parts: 0 = on machines
                                      of 1-2 cores (what a zeroed struct asks for), 1 = always, 2 = never */
    int peer_timeout_ms;           /* TCP_USER_TIMEOUT and similar */
    const char *bind_addr;         /* numeric address to listen on, "" = auto */
    tcpx_net_notify_fn notify;
    tcpx_net_idle_fn idle;         /* these two with notify_arg */
    tcpx_net_serve_fn serve;
    void *notify_arg;
} tcpx_net_opts;

typedef struct tcpx_net tcpx_net;

/* One piece of host memory of a vectored isend/irecv. */
typedef struct tcpx_net_iov {
    void *base;
    size_t len;
} tcpx_net_iov;

/* One transport instance. Created by a constructor (tcpx_net_socket_create,
 * tcpx_net_plugin_create) and released with ops.destroy. Every function
 * takes the instance first. */
struct tcpx_net {
    const char *name;              /* "socket", or the plugin's name */

    int (*devices)(tcpx_net *n, int *ndev);
    int (*get_properties)(tcpx_net *n, int dev, tcpx_net_props *props);

    /* Listen on device dev. handle (TCPX_NET_HANDLE_SIZE bytes) receives what a
     * connecting side needs; it travels to the peer inside the connection info. */
    int (*listen)(tcpx_net *n, int dev, void *handle, void **listen_comm);
    /* Start/continue connecting to a listen handle. *send_comm stays NULL until
     * the connection is established. The same handle and *state pointer are
     * passed on every retry; *state starts NULL and the transport owns it. */
    int (*connect_send)(tcpx_net *n, int dev, const void *handle, void **state, void **send_comm);
    /* Continue accepting one connection; *recv_comm stays NULL until one is
     * fully established. Garbage from strangers is dropped internally. */
    int (*accept)(tcpx_net *n, void *listen_comm, void **recv_comm);

    int (*reg_mr)(tcpx_net *n, void *comm, void *data, size_t size, int ptr_type, void **mhandle);
    int (*dereg_mr)(tcpx_net *n, void *comm, void *mhandle);

    int (*isend)(tcpx_net *n, void *send_comm, void *data, size_t size, int tag,
                 void *mhandle, void **request);
    int (*irecv)(tcpx_net *n, void *recv_comm, void *data, size_t size, int tag,
                 void *mhandle, void **request);
    /* *done = 1 when finished; *size = bytes sent/received (plugins that do
     * not report sizes give the posted size). A finished send is freed by
     * test; a finished receive and its request stay valid until
     * irecv_consumed, which must follow for every finished receive, in
     * posting order (a no-op for transports without offload). */
    /* Optional (NULL when not offered): isend / irecv of one message made of
     * n pieces of host memory, in order (n >= 1; the array is read during
     * the call only). Matched with plain irecv/isend like any message. */
    int (*isendv)(tcpx_net *n, void *send_comm, const tcpx_net_iov *iov, int niov, void **request);
    int (*irecvv)(tcpx_net *n, void *recv_comm, const tcpx_net_iov *iov, int niov, void **request);
    int (*test)(tcpx_net *n, void *request, int *done, size_t *size);
    /* Optional (may be NULL): the caller is about to sleep until notify; from
     * now on every outstanding request notifies when it finishes. (The
     * socket transport leaves small requests to callers' test() polls while
     * they poll, and hands them to its I/O threads here.) Thread-safe. */
    void (*arm)(tcpx_net *n);
    /* Optional (may be NULL): the calling thread starts (on = 1) or stops
     * (0) polling: until it stops, it calls test() again at once, so the
     * transport may leave it work that its own threads would otherwise do
     * (the socket transport, on a machine of one or two cores, has such a
     * caller move large messages' bytes too: its I/O threads would only
     * take the core from it). arm() still hands everything over. */
    void (*caller_polls)(tcpx_net *n, int on);
    /* Hand back a finished irecv (its buffers, and for plugins its request
     * slot), strictly in posting order. Transports without offload: no-op. */
    int (*irecv_consumed)(tcpx_net *n, void *recv_comm, void *request);
    /* UNPACK device handle of a recv comm, or NULL. */
    void *(*device_handle)(tcpx_net *n, void *recv_comm);

    /* Close; outstanding requests are abandoned and the transport stops
     * touching their buffers before returning. */
    int (*close_send)(tcpx_net *n, void *send_comm);
    int (*close_recv)(tcpx_net *n, void *recv_comm);
    int (*close_listen)(tcpx_net *n, void *listen_comm);
    /* Abandon a connect in progress (the *state of connect_send). */
    void (*connect_abort)(tcpx_net *n, void *state);
    /* Optional (may be NULL): 1 if the far end of a send comm has closed its
     * side (so a handshake was refused or the peer died), else 0. Never blocks. */
    int (*send_closed)(tcpx_net *n, void *send_comm);

    void (*destroy)(tcpx_net *n);
};

/* The built-in multi-socket TCP transport. */
int tcpx_net_socket_create(const tcpx_net_opts *opts, tcpx_net **out);

#endif /* TCPX_NET_H */
