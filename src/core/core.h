/* core.h - the session's internal state, shared by the files of src/core.
 *
 * Locking: one mutex per session guards everything here. Public calls take
 * it; the transport's I/O threads never touch this state (they only bump
 * the wake counter through the notify callback).
 */
#ifndef TCPX_CORE_H
#define TCPX_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/blob.h"
#include "core/proto.h"
#include "net/net.h"
#include "tcpx_p2p.h"

#define TCPX_CTRL_RECVS 16        /* control receives kept posted per peer */
#define TCPX_CTRL_WINDOW 16       /* control sends in flight per peer */
#define TCPX_UNEXPECTED_MAX_BYTES (64u << 20)
#define TCPX_UNEXPECTED_MAX_COUNT 65536
#define TCPX_HELLO_BUF 64         /* receive capacity for a DHELLO */
#define TCPX_OP_BUCKETS 1024
#define TCPX_MEM_BUCKETS 256

typedef struct tcpx_peer tcpx_peer;
typedef struct tcpx_op tcpx_op;
typedef struct tcpx_urx tcpx_urx;  /* device-unpack state of one recv comm (rx_unpack.c) */

/* ---------------------------------------------------------------- memory */

typedef struct tcpx_mr {          /* a transport registration of a region on one comm */
    void *comm;
    void *mh;
} tcpx_mr;

typedef struct tcpx_region {
    tcpx_mem_id id;
    uint8_t *ptr;
    size_t size;
    uint8_t *reg_ptr;             /* what transports register: ptr, or for GPU */
    size_t reg_size;              /* memory from the page boundary below it */
    tcpx_mem_kind kind;
    int device;
    uint64_t key;
    int busy;                     /* operations referencing it */
    tcpx_mr *mrs;
    int nmrs, cap_mrs;
    struct tcpx_region *next;     /* hash chain */
} tcpx_region;

/* ------------------------------------------------------------ operations */

enum tcpx_op_kind { OP_SEND = 1, OP_RECV = 2 };

enum tcpx_op_state {
    OPS_RTS_SENT = 1,   /* send: announced, waiting for CTS (or ACK when inline) */
    OPS_POSTED,         /* recv: waiting for a matching RTS */
    OPS_MATCHED,        /* recv: CTS sent, waiting for DATA */
    OPS_DATA,           /* chunks moving */
    OPS_CANCELLING,     /* send: withdrawn, waiting for the receiver's verdict */
    OPS_DONE,
    OPS_FAILED,
};

/* What differs between kinds of op, set by the file that starts one. */
typedef struct tcpx_op_hooks {
    void (*chunks_done)(tcpx_op *op);   /* every chunk retired */
    void (*finish)(tcpx_op *op);        /* leaving the peer (done or failed): undo kind links */
} tcpx_op_hooks;

struct tcpx_op {
    uint64_t id;
    const tcpx_op_hooks *hooks;
    int kind, state;
    tcpx_status status;
    char *errmsg;                  /* detail for a failed op (malloc'd) */
    struct tcpx_xfer *x;           /* NULL once released (detached) */
    tcpx_peer *p;
    tcpx_region *r;
    uint8_t *ptr;
    size_t size;
    uint64_t tag;
    uint64_t remote_id;            /* the peer's op id, once known */
    size_t nchunks, chunks_done;
    int acked;                     /* send: the receiver has all bytes */
    int holds_region;              /* counted in r->busy */
    tcpx_op *x_next;               /* transfer's list */
    tcpx_op *q_prev, *q_next;      /* peer's posted-receive queue */
    tcpx_op *h_next;               /* peer's id hash */
};

typedef struct tcpx_unexpected {   /* an RTS that no receive matched yet */
    uint64_t send_id, tag, size;
    uint8_t *data;                 /* inline payload copy, or NULL */
    int is_inline;
    struct tcpx_unexpected *next;
} tcpx_unexpected;

/* ---------------------------------------------------------------- channels */

typedef struct tcpx_retired {      /* ops of chunks retired in one progress round */
    tcpx_op **ops;
    size_t n, cap;
} tcpx_retired;

typedef struct tcpx_chunk {
    tcpx_op *op;
    size_t off, len;
    void *req;                     /* transport request while in flight */
    int done;                      /* the transport finished it */
    int slot;                      /* staging slot, -1 when the bytes move in place */
    int uslot;                     /* receive over device unpack: the transport's queue slot */
} tcpx_chunk;

struct tcpx_gpu;
struct tcpx_gpu_stream;
struct tcpx_gpu_event;

/* Bounce slots of one data comm: pinned host memory for GPU memory over a
 * transport that takes host pointers only; device memory for host-memory
 * receives over a device-unpack transport (which receives into GPU memory
 * only). Slots are taken and returned in ring order. */
typedef struct tcpx_stage {
    struct tcpx_gpu_stream *stream;
    struct tcpx_gpu_event **ev;    /* one per slot: its copy finished */
    uint8_t *arena;                /* nslots * slot_bytes, pinned or device */
    void *arena_raw;               /* device: the allocation holding the page-aligned arena */
    int on_device;
    void *mh;                      /* arena registered on the comm */
    size_t slot_bytes;
    int nslots, used;
    unsigned next;
} tcpx_stage;

/* One data comm: a ring of chunks. [head, posted) are posted to the transport
 * (and, when receiving into GPU memory, may be copying out of their slot);
 * sending from GPU memory, [posted, staged) are copying into their slot;
 * the rest up to tail wait. */
typedef struct tcpx_chan {
    void *comm;
    tcpx_chunk *ring;
    size_t cap, head, posted, staged, tail;
    tcpx_stage *stage;             /* created at the first staged chunk */
    tcpx_urx *urx;                 /* receive comm of a device-unpack transport */
} tcpx_chan;

/* ------------------------------------------------------------------ peers */

enum tcpx_peer_state {
    PEER_IDLE = 1,      /* remote info loaded, not connected */
    PEER_CONNECTING,
    PEER_READY,
    PEER_FAILED,
    PEER_CLOSED,
};

/* Outgoing half of a connection being dialled: our send comms to the peer. */
typedef struct tcpx_dial {
    int ncomms;                    /* 1 + channels */
    void *state[TCPX_MAX_CHANNELS + 1];
    void *comm[TCPX_MAX_CHANNELS + 1];
    void *req[TCPX_MAX_CHANNELS + 1];
    uint8_t *buf[TCPX_MAX_CHANNELS + 1];
    void *mh[TCPX_MAX_CHANNELS + 1];
    int sent[TCPX_MAX_CHANNELS + 1];
    int all_sent;
} tcpx_dial;

struct tcpx_peer {
    char name[TCPX_NAME_MAX];
    struct tcpx_session *s;
    int state;
    int refs;                      /* the session's table + each transfer */
    int linked;                    /* still in the session's peer list */
    int local_close;               /* failing because we close it: log quietly */
    tcpx_status err;
    char errmsg[256];
    uint64_t nonce;
    int want_role;                 /* role of the HELLO that opens our incoming half */
    int has_remote;
    tcpx_conninfo remote;

    /* outgoing direction: ours -> peer */
    tcpx_dial *dial;
    void *ctrl_send;
    uint8_t *ctrl_out_buf;         /* TCPX_CTRL_WINDOW frame slots of TCPX_CTRL_MSG_MAX */
    void *ctrl_out_mh;
    void *frame_req[TCPX_CTRL_WINDOW];
    unsigned frame_head, frame_tail;   /* frames in flight: [head, tail) */
    uint8_t *outq;                 /* encoded control messages not yet framed */
    size_t outq_off, outq_len, outq_cap;
    int ntx;
    tcpx_chan tx[TCPX_MAX_CHANNELS];
    uint16_t next_first_channel;

    /* incoming direction: peer -> ours */
    void *ctrl_recv;
    tcpx_urx *ctrl_urx;            /* device-unpack transport: ctrl_recv's unpack state */
    int ctrl_in_uslot[TCPX_CTRL_RECVS];
    int nrx;
    tcpx_chan rx[TCPX_MAX_CHANNELS];
    uint8_t *ctrl_in_buf;          /* TCPX_CTRL_RECVS * TCPX_CTRL_MSG_MAX */
    void *ctrl_in_mh;
    void *ctrl_in_req[TCPX_CTRL_RECVS];
    int ctrl_in_next;
    int ctrl_cur;                  /* frame being handed up by ctrl_next, -1 none */
    size_t ctrl_cur_off, ctrl_cur_size;
    tcpx_status ctrl_err;          /* ctrl_send failed: the engine fails the peer */
    char ctrl_errmsg[256];

    /* two-sided matching */
    tcpx_op *posted_head, *posted_tail;
    tcpx_unexpected *unx_head, *unx_tail;
    size_t unx_bytes, unx_count;
    tcpx_op *ops[TCPX_OP_BUCKETS]; /* live ops by id */
    size_t nops;

    struct tcpx_peer *next;
};

/* An inbound comm accepted from one of our listen comms, and what its first
 * message said. */
typedef struct tcpx_inbound {
    void *comm;
    int lidx;                      /* which listen comm accepted it (0 = control) */
    uint8_t *buf;
    void *mh;
    void *req;
    tcpx_urx *urx;                 /* device-unpack transport; handed on with the comm */
    int uslot;
    uint64_t deadline;
    int identified;
    tcpx_msg msg;                  /* decoded HELLO/DHELLO (payload copied to blob) */
    uint8_t *blob;
    struct tcpx_inbound *next;
} tcpx_inbound;

/* ---------------------------------------------------------------- session */

typedef struct tcpx_session {
    tcpx_config cfg;
    tcpx_net *net;
    struct tcpx_gpu *gpu;          /* NULL when gpu_id is -1 */
    int stage_gpu;                 /* the transport takes host pointers only */
    int unpack;                    /* receives land in bounce pages: device unpack */
    int net_dev;                   /* the transport device (NIC) every comm uses */
    int plugin_on_gpu;             /* make the session's GPU current around transport calls */
    tcpx_net_props props;
    int window;                    /* data requests in flight per comm */
    int ctrl_recvs;                /* control receives kept posted (<= TCPX_CTRL_RECVS) */
    pthread_mutex_t mu;

    /* wake-up for waiters: bumped by the transport's threads */
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    uint64_t wake_seq;
    int notify_supported;

    /* background progress (cfg.progress_thread) */
    pthread_t bg_thread;
    int bg_running;
    atomic_int bg_stop;
    uint64_t last_progress_ns;     /* under mu */

    int listening;
    void *listen_comm[TCPX_MAX_CHANNELS + 1];
    uint64_t token;
    uint8_t *blob;
    size_t blob_len;
    uint64_t last_inbound_ns;

    tcpx_peer *peers;
    tcpx_inbound *inbound;
    tcpx_region *mem[TCPX_MEM_BUCKETS];
    uint64_t next_mem_id;
    uint64_t next_op_id;
    tcpx_retired retired;          /* scratch of peer progress */
} tcpx_session;

typedef struct tcpx_xfer {
    tcpx_session *s;
    tcpx_peer *p;
    tcpx_op *ops, *ops_tail;
    size_t nops, ndone;
    tcpx_status err;
    char errmsg[256];
} tcpx_xfer;

/* mem.c */
tcpx_region *mem_find(tcpx_session *s, tcpx_mem_id id);
void *mem_mr(tcpx_session *s, tcpx_region *r, void *comm, tcpx_status *st);
void mem_drop_comm(tcpx_session *s, void *comm);
void mem_free_all(tcpx_session *s);

/* listen.c / connect.c */
tcpx_status sess_listen_locked(tcpx_session *s);
void inbound_progress(tcpx_session *s, int force);
void inbound_free_all(tcpx_session *s);
tcpx_inbound *inbound_take(tcpx_session *s, int ctrl, uint64_t nonce, uint16_t channel);
tcpx_status dial_start(tcpx_session *s, tcpx_peer *p, int role);
tcpx_status dial_progress(tcpx_session *s, tcpx_peer *p, int *done);
void dial_free(tcpx_session *s, tcpx_dial *d);

/* peer.c */
tcpx_peer *peer_find(tcpx_session *s, const char *name);
tcpx_peer *peer_new(tcpx_session *s, const char *name);
void peer_unlink(tcpx_session *s, tcpx_peer *p);
void peer_unref(tcpx_peer *p);
void peer_fail(tcpx_peer *p, tcpx_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void peer_close_comms(tcpx_peer *p);

/* ctrl.c */
tcpx_status ctrl_open(tcpx_peer *p);        /* buffers, registrations, receives posted */
void ctrl_close(tcpx_peer *p);              /* comms closed, buffers freed */
/* Queue a message. An error (TCPX_ERR_PEER when the peer is not ready) is
 * also kept in p->ctrl_err for the engine. */
tcpx_status ctrl_send(tcpx_peer *p, const tcpx_msg *m);
tcpx_status ctrl_flush(tcpx_peer *p);       /* retire sent frames, frame and send queued messages */
/* The next received message, TCPX_IN_PROGRESS when none is in, or an error.
 * m->payload stays valid until the next call. */
tcpx_status ctrl_next(tcpx_peer *p, tcpx_msg *m);

/* channel.c */
tcpx_status chan_init(tcpx_chan *c, void *comm);
void chan_close(tcpx_session *s, tcpx_chan *c, int is_send);
tcpx_status chan_push(tcpx_chan *c, tcpx_op *op, size_t off, size_t len);
/* One round on a data comm: test, retire (the ops of retired chunks are
 * appended to *out, one entry per chunk), stage, post. An error means the
 * stream is broken (detail in tcpx_last_error); the caller fails the peer. */
tcpx_status chan_progress(tcpx_session *s, tcpx_chan *c, int is_send, tcpx_retired *out);
/* Cut op into chunks dealt round-robin from channel `first`. */
tcpx_status enqueue_chunks(tcpx_op *op, tcpx_chan *chans, int nchans, size_t chunk, uint16_t first);

/* staging.c */
int stage_needed(tcpx_session *s, const tcpx_op *op, int is_send);
tcpx_status stage_create(tcpx_session *s, void *comm, tcpx_stage **out);
void stage_destroy(tcpx_session *s, void *comm, tcpx_stage *st);
int stage_acquire(tcpx_stage *st);
void stage_release(tcpx_stage *st);
static inline uint8_t *stage_slot(tcpx_stage *st, int slot) { return st->arena + (size_t)slot * st->slot_bytes; }
tcpx_status op_copy(tcpx_session *s, const tcpx_op *op, void *dst, const void *src, size_t n);

/* op.c */
void ops_add(tcpx_peer *p, tcpx_op *op);
tcpx_op *ops_find(tcpx_peer *p, uint64_t id);
void ops_remove(tcpx_peer *p, tcpx_op *op);
void op_complete(tcpx_op *op);
void op_fail(tcpx_op *op, tcpx_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One more chunk of op retired; the kind's chunks_done hook after the last. */
void op_chunk_done(tcpx_op *op);
void op_free(tcpx_op *op);          /* an op that has left its peer (or never joined one) */

/* twosided.c */
/* Handlers of the messages of an established connection (proto.h's list). */
tcpx_status twosided_on_rts(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_cts(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_data(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_ack(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_nack(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_cancel(tcpx_peer *p, const tcpx_msg *m);
tcpx_status op_start(tcpx_op *op);
void op_withdraw(tcpx_op *op);

/* transport.c */
/* Open the transport cfg.transport names, pick its device, read its
 * properties and the session's data-path mode (stage, unpack). */
tcpx_status open_transport(tcpx_session *s);
tcpx_status pick_net_device(tcpx_session *s, int ndev);
/* Leading path components two paths share ("/a/b/c", "/a/b/d": 2). */
int pci_path_shared(const char *a, const char *b);

/* rx_unpack.c (device-unpack transports only) */
tcpx_status urx_open(tcpx_session *s, void *comm, size_t land_bytes, tcpx_urx **out);
void urx_stop(tcpx_session *s, void *comm, tcpx_urx *u);   /* before the comm closes; NULL ignored */
void urx_free(tcpx_session *s, tcpx_urx *u);               /* after it closed; NULL ignored */
/* Device memory starting on a page boundary, as GPUDirect-TCPX registers
 * only page-aligned GPU buffers; free *raw with tcpx_gpu_free. */
tcpx_status urx_dev_alloc(tcpx_session *s, size_t size, uint8_t **aligned, void **raw);
int urx_take_slot(tcpx_urx *u);                           /* queue slot of the irecv just posted */
/* Post a receive whose destination is host memory: into host_buf (host_mh),
 * or, over a device-unpack transport (u), into u's landing area at land_off,
 * with *uslot its queue slot; bring it in with urx_pull. *req stays NULL
 * when the transport has no room now. */
int recv_post_host(tcpx_session *s, void *comm, tcpx_urx *u, size_t land_off, uint8_t *host_buf, size_t cap,
                   void *host_mh, void **req, int *uslot);
/* Queue the gather of a finished receive into dst (the buffer it was posted
 * with), then a copy of the len bytes to host_out when not NULL; its event
 * completes when both are done. */
tcpx_status urx_unpack(tcpx_urx *u, int slot, uint8_t *dst, size_t len, void *host_out);
tcpx_status urx_query(tcpx_urx *u, int slot);              /* TCPX_OK, TCPX_IN_PROGRESS or an error */
/* The same for a landing slot, waited for (bounded by the peer timeout),
 * with the landing slot zeroed again afterwards. */
tcpx_status urx_pull(tcpx_session *s, tcpx_urx *u, int slot, size_t land_off, size_t len, void *host_out);

/* lock.c */
void sess_lock(tcpx_session *s);    /* s->mu, and the session's GPU current for plugin calls */
void sess_unlock(tcpx_session *s);
/* A thread of the session's own (the progress thread) keeps its GPU current
 * for good: call once when it starts. */
void sess_own_thread_gpu(tcpx_session *s);

/* progress.c */
void sess_progress_locked(tcpx_session *s);
void sess_wake(void *arg);
void sess_wait_event(tcpx_session *s, uint64_t seen, uint64_t deadline);
/* The same for a caller holding s->mu: released while asleep, held again on return. */
void sess_nap_locked(tcpx_session *s, uint64_t seen, uint64_t deadline);
uint64_t sess_wake_seq(tcpx_session *s);
int sess_bg_start(tcpx_session *s);
void sess_bg_stop(tcpx_session *s);

#endif
