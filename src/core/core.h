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
#include "core/match.h"
#include "core/proto.h"
#include "net/net.h"
#include "tcpx_p2p.h"
#include "util/log.h"

#define TCPX_CTRL_RECVS 16        /* control receives kept posted per peer */
#define TCPX_CTRL_WINDOW 16       /* control sends in flight per peer */
#define TCPX_HELLO_BUF 64         /* receive capacity for a DHELLO */
#define TCPX_OP_BUCKETS 1024
#define TCPX_MEM_BUCKETS 256
#define TCPX_PACK_MAX_SEGS 1024   /* blocks one chunk may touch (both ends cut alike) */
#define TCPX_INBOX_MAX_COUNT 65536  /* notifications held for the application */
#define TCPX_INBOX_MAX_BYTES (64u << 20)

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
    uint64_t serial;              /* registration number in the session: tells a new registration from an old */
    int busy;                     /* local operations referencing it */
    int rbusy;                    /* peers' one-sided operations on it */
    int closing;                  /* being deregistered: peers are refused */
    tcpx_mr *mrs;
    int nmrs, cap_mrs;
    struct tcpx_region *next;     /* hash chain */
} tcpx_region;

/* ------------------------------------------------------------ operations */

enum tcpx_op_kind {
    OP_SEND = 1,
    OP_RECV,
    OP_WRITE,           /* one-sided, initiator */
    OP_READ,
    OP_WRITE_IN,        /* one-sided, served for the peer (target): detached, owned by the peer */
    OP_READ_IN,
    OP_NOTIF,           /* a standalone notification waiting for its ACK: detached */
};

/* A piece of memory an op moves; an op's pieces in order form its stream. */
typedef struct tcpx_seg {
    uint8_t *ptr;
    size_t len;
    tcpx_region *r;
} tcpx_seg;

enum tcpx_op_state {
    OPS_RTS_SENT = 1,   /* send: announced, waiting for CTS (or ACK when inline) */
    OPS_CREDIT_WAIT,    /* send: not announced yet, the receiver's budget of unmatched sends is spent */
    OPS_POSTED,         /* recv: waiting for a matching RTS */
    OPS_MATCHED,        /* recv: CTS sent, waiting for DATA */
    OPS_DATA,           /* chunks moving */
    OPS_CANCELLING,     /* send: withdrawn, waiting for the receiver's verdict */
    OPS_REQ_SENT,       /* read: asked, waiting for READ_DATA */
    OPS_NOTIFYING,      /* read, notification: sent, waiting for its ACK */
    OPS_DONE,
    OPS_FAILED,
};

/* What differs between kinds of op, set by the file that starts one. */
typedef struct tcpx_op_hooks {
    void (*chunks_done)(tcpx_op *op);   /* every chunk retired */
    void (*finish)(tcpx_op *op);        /* leaving the peer (done or failed): undo kind links */
    /* ACK / NACK naming this op (NULL: a protocol error / op_fail). An
     * error return fails the peer. */
    tcpx_status (*acked)(tcpx_op *op);
    tcpx_status (*nacked)(tcpx_op *op, tcpx_status st, const char *text);
} tcpx_op_hooks;

struct tcpx_op {
    uint64_t id;
    const tcpx_op_hooks *hooks;
    int kind, state;
    tcpx_status status;
    char *errmsg;                  /* detail for a failed op (malloc'd) */
    struct tcpx_xfer *x;           /* NULL once released (detached) */
    tcpx_peer *p;
    tcpx_region *r;                /* two-sided: the one region */
    uint8_t *ptr;
    size_t size;                   /* bytes of the op's stream */
    tcpx_seg *segs;                /* the stream's pieces (two-sided: &seg1) */
    size_t nsegs;
    tcpx_seg seg1;
    uint64_t tag;
    uint64_t remote_id;            /* the peer's op id, once known */
    size_t nchunks, chunks_done;
    int acked;                     /* send, write: the receiver has all bytes */
    int held;                      /* counted in its regions' busy (rbusy when target) */
    int target;                    /* served for the peer */
    int drain;                     /* refused write: chunks land in scratch and are dropped */
    int no_ack;                    /* refused after its data started: no ACK at the end */
    char *ddgst_msg;               /* receiving op: the first chunk whose data digest did not match */
    tcpx_status verdict;           /* write: the target's refusal, applied once chunks retire */
    char *verdict_msg;
    uint8_t *notif;                /* read: to send when done; write target: to deliver */
    size_t notif_len;
    int has_notif;
    int notif_wait;                /* write target: the attached NOTIF has not arrived yet */
    struct tcpx_notif *nq;         /* write target: its entry in the peer's pending queue */
    tcpx_op *x_next;               /* transfer's list */
    tcpx_qlink ql;                 /* recv: its tag's queue of posted receives; send: the queue
                                      of sends waiting for credit */
    int credit;                    /* send: announced and not answered yet: counted in the peer's
                                      credit_used (and its inline bytes in credit_used_bytes) */
    tcpx_op *h_next;               /* peer's id hash */
};

typedef struct tcpx_unexpected {   /* an RTS that no receive matched yet */
    uint64_t tag, size;
    uint8_t *data;                 /* inline payload copy, or NULL */
    int is_inline;
    tcpx_qlink ql;                 /* its tag's queue, in arrival order */
    tcpx_idlink il;                /* by send id (il.id) */
} tcpx_unexpected;

/* ---------------------------------------------------------------- channels */

typedef struct tcpx_retired {      /* ops of chunks retired in one progress round */
    tcpx_op **ops;
    size_t n, cap;
} tcpx_retired;

typedef struct tcpx_chunk {
    tcpx_op *op;
    size_t off, len;               /* bytes [off, off+len) of the op's stream */
    size_t seg, seg_off;           /* off is byte seg_off of op->segs[seg] */
    uint8_t *direct;               /* the bytes move in place here; NULL: through a slot */
    tcpx_region *dregion;          /* direct's registration */
    void *req;                     /* transport request while in flight */
    int done;                      /* the transport finished it */
    int slot;                      /* staging slot, -1 when the bytes move in place */
    int uslot;                     /* receive over device unpack: the transport's queue slot */
    int gpu_wait;                  /* GPU copies of the slot queued: wait for its event */
    int vec;                       /* host pieces posted as one vectored message, no slot */
    void *dreq;                    /* data digest: the 4-byte digest message after it */
    int dpend;                     /* data digest: the chunk is posted, its digest message not yet */
    int dslot;                     /* data digest: its entry of the channel's dig */
    int cdone;                     /* the chunk itself is through (done: its digest too) */
} tcpx_chunk;

struct tcpx_gpu;
struct tcpx_gpu_stream;
struct tcpx_gpu_event;
struct tcpx_gpu_copier;

/* Bounce slots of one data comm, for chunks that cannot move in place:
 * several blocks packed into one chunk, GPU memory over a transport that
 * takes host pointers only, host memory received over a device-unpack
 * transport (which receives into GPU memory only), refused writes drained.
 * Host memory (pinned in a GPU session), or device memory for receives over
 * device unpack. Slots are taken and returned in ring order. */
typedef struct tcpx_stage {
    struct tcpx_gpu_stream *stream;          /* GPU session: this comm's copies */
    struct tcpx_gpu_event **ev;              /* one per slot: its copies finished */
    struct tcpx_gpu_copier **cp;             /* GPU session: one copy list per slot */
    uint8_t *arena;                /* nslots * slot_bytes */
    void *arena_raw;               /* device: the allocation holding the page-aligned arena */
    uint8_t *mirror;               /* host slots in a GPU session: device memory as large, made at first use */
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
    tcpx_net_iov *iov;             /* scratch of vectored posts (TCPX_PACK_MAX_SEGS) */
    tcpx_urx *urx;                 /* receive comm of a device-unpack transport */
    int ddgst;                     /* every chunk followed by its CRC-32C (proto.h, Data digest) */
    uint32_t *dig;                 /* digests of the chunks in flight, slot posted % window */
    void *dig_mh;                  /* dig's registration with comm */
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
    int dial_role;                 /* role of our own HELLO */
    uint64_t connect_deadline;     /* CONNECTING: fail with TCPX_ERR_TIMEOUT past it */
    int auto_accepted;             /* opened by accept_any: unlinked if the handshake fails */
    int has_remote;
    uint32_t remote_max_chunk;     /* from the peer's HELLO: chunks we send it stay within */
    int ddgst;                     /* data digest on this connection (either side asked) */
    uint64_t last_rx_ns;           /* READY: when a control message or a chunk last came from it */
    uint64_t last_ask_ns;          /* READY: when we last sent it a KEEPALIVE ASK */
    uint64_t last_check_ns;        /* READY: when liveness_check last ran on it */
    uint64_t last_data_ns;         /* READY: when a chunk last came, or we last expected none */
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

    /* two-sided matching (match.h): posted receives and the peer's
     * unexpected sends (at most cfg.unexpected_max of them and
     * cfg.unexpected_max_bytes of inline bytes: more breaks the credit) */
    tcpx_tagmap posted;
    tcpx_tagmap unx;
    tcpx_idmap unx_ids;
    size_t unx_bytes, unx_count;

    /* flow control of our RTS (credit.c): the peer's HELLO grants how many
     * sends (and inline bytes) it holds unmatched; an RTS counts from when it
     * goes until its first answer (CTS, ACK or NACK) comes back */
    uint32_t credit_max;
    uint64_t credit_max_bytes;
    size_t credit_used;
    uint64_t credit_used_bytes;
    tcpx_tagq credit_wait;         /* sends not announced yet, in post order */
    tcpx_op *ops[TCPX_OP_BUCKETS]; /* live ops by id */
    size_t nops;

    /* one-sided target: a block list arriving in pieces (onesided.c) */
    struct {
        uint8_t type;              /* 0: none under way */
        uint64_t id;
        uint32_t nblocks, got;
        tcpx_msg hdr;              /* the first piece's fields */
        tcpx_wire_block *blocks;
        const uint8_t *inline_data; /* an INLINE WRITE's bytes, in the frame being handled */
    } list;
    uint64_t notif_for;            /* id of the write whose attached NOTIF comes next (0: none) */
    tcpx_op *notif_op;             /* that write, or NULL when it was refused */

    /* notifications received, waiting in order to be delivered (notify.c) */
    struct tcpx_notif *nq_head, *nq_tail;
    int reads_in;                  /* READs served to this peer still sending */
    tcpx_log_limit notif_refused_log;  /* our notifications it refused (logged at most once a second) */
    tcpx_log_limit inbox_full_log;     /* its notifications our full inbox refused (likewise) */

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
    int superseded;                /* an INITIATE that lost a crossing connect: closed, quietly, later */
    uint64_t from_token;           /* superseded: the token of the session it came from */
    int deferred;                  /* from a session connected already: waits for that connection to fail */
    tcpx_msg msg;                  /* decoded HELLO/DHELLO (payload copied to blob) */
    uint8_t *blob;
    struct tcpx_inbound *next;
} tcpx_inbound;

/* ---------------------------------------------------------------- session */

typedef struct tcpx_session {
    tcpx_config cfg;
    tcpx_net *net;
    struct tcpx_gpu *gpu;          /* NULL when gpu_id is -1 */
    uint8_t *inline_pinned;        /* TCPX_INLINE_MAX pinned bytes for GPU inline copies, once needed */
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
    _Atomic uint64_t wake_seq;     /* changed under wake_mu; read without it */
    atomic_int nappers;            /* application threads asleep in sess_nap_locked */
    _Atomic uint64_t serve_seq;    /* rounds run by transport threads (sess_io_serve) */
    atomic_int bg_polling;         /* the progress thread polls the sockets (bg_poll) */
    _Atomic uint64_t held_since_ns; /* a post's control messages wait for the next round (0: none) */
    int notify_supported;
    uint64_t wait_spin_ns;         /* a wait for a small transfer polls this long before it sleeps */
    uint64_t spin_ns;              /* while traffic flows, the progress thread polls until this long
                                      passes with nothing happening (bg_poll; 0: fewer than 4 cores) */

    /* background progress (cfg.progress_thread) */
    pthread_t bg_thread;
    int bg_running;
    atomic_int bg_stop;
    _Atomic uint64_t last_app_ns;  /* an application thread's last progress round */
    void (*wake)(void *s);         /* sess_wake, for callers that must not name progress.c */

    int listening;
    void *listen_comm[TCPX_MAX_CHANNELS + 1];
    uint64_t token;
    uint8_t *blob;
    size_t blob_len;
    uint64_t last_inbound_ns;

    tcpx_peer *peers;
    tcpx_inbound *inbound;
    tcpx_region *mem[TCPX_MEM_BUCKETS];
    uint64_t mem_secret;          /* names regions: ids and keys are a hash of it and the range */
    uint64_t mem_serial;
    uint64_t next_op_id;
    tcpx_retired retired;          /* scratch of peer progress */

    /* notifications delivered, for tcpx_notify_poll; counts include those
     * still waiting in peers' queues */
    struct tcpx_notif *inbox_head, *inbox_tail;
    size_t inbox_count, inbox_bytes;
} tcpx_session;

/* A received notification. */
typedef struct tcpx_notif {
    struct tcpx_notif *next;
    char peer[TCPX_NAME_MAX];      /* who sent it */
    uint64_t ack_id;               /* answer ACK{ack_id} on delivery (0: none) */
    int ready;                     /* its data is in place: deliverable */
    int after_reads;               /* waits until the peer's READs served here have finished */
    size_t len;
    uint8_t data[];
} tcpx_notif;

#define TCPX_XFER_LIVE 0x58464552u  /* "XFER" */
#define TCPX_XFER_DEAD 0x44454144u  /* "DEAD": released */

typedef struct tcpx_xfer {
    tcpx_session *s;
    tcpx_peer *p;
    tcpx_op *ops, *ops_tail;
    size_t nops, ndone;
    tcpx_status err;
    /* TCPX_XFER_LIVE until release. Not at the start: free() keeps its own
     * links in a chunk's first bytes, so a released handle most likely still
     * reads DEAD here, and a call on it is refused instead of corrupting. */
    uint32_t magic;
    char errmsg[256];
} tcpx_xfer;

/* mem.c */
tcpx_region *mem_find(tcpx_session *s, tcpx_mem_id id);
/* Block `index` of a peer's list against the registry: TCPX_OK with its
 * region, or TCPX_ERR_ACCESS with a sentence naming the block in why. */
tcpx_status mem_access(tcpx_session *s, const tcpx_wire_block *b, uint32_t index, tcpx_region **r, char *why,
                       size_t cap);
void mem_free_region(tcpx_session *s, tcpx_region *r);
void *mem_mr(tcpx_session *s, tcpx_region *r, void *comm, tcpx_status *st);
void mem_drop_comm(tcpx_session *s, void *comm);
void mem_free_all(tcpx_session *s);

/* listen.c / connect.c */
tcpx_status sess_listen_locked(tcpx_session *s);
/* now: the round's clock (tcpx_now_ns at its start). */
void inbound_progress(tcpx_session *s, int force, uint64_t now);
void inbound_free_all(tcpx_session *s);
tcpx_inbound *inbound_take(tcpx_session *s, int ctrl, uint64_t nonce, uint16_t channel);
/* Close and forget every inbound comm of connection `nonce`, quietly. */
void inbound_discard(tcpx_session *s, uint64_t nonce);
tcpx_status dial_start(tcpx_session *s, tcpx_peer *p, int role);
tcpx_status dial_progress(tcpx_session *s, tcpx_peer *p, int *done);
void dial_free(tcpx_session *s, tcpx_dial *d);

/* handshake.c */
/* Begin connecting p: our half dialled with `role` and `nonce`, CONNECTING
 * until the engine has it READY or failed (deadline connect_timeout_ms). */
tcpx_status hs_start(tcpx_session *s, tcpx_peer *p, int role, uint64_t nonce);
/* Accept the INITIATE hello `in` (its conninfo ci) as peer `label` (a peer
 * of that label is replaced): *out is the new peer, CONNECTING. */
tcpx_status hs_accept(tcpx_session *s, tcpx_inbound *in, const tcpx_conninfo *ci, const char *label, int automatic,
                      tcpx_peer **out);
/* The engine's round: inbound comms, unclaimed hellos, connecting peers
 * (now: the round's clock). */
void hs_progress(tcpx_session *s, int force, uint64_t now);

/* peer.c */
tcpx_peer *peer_find(tcpx_session *s, const char *name);
tcpx_peer *peer_new(tcpx_session *s, const char *name);
void peer_unlink(tcpx_session *s, tcpx_peer *p);
void peer_unref(tcpx_peer *p);
void peer_fail(tcpx_peer *p, tcpx_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* liveness.c: at the end of a peer's round (heard: a control message came
 * from it in this round, heard_data: a chunk): fail it with TCPX_ERR_TIMEOUT
 * when nothing has come for peer_timeout_ms while operations wait on it, or
 * no chunk while chunks it announced are due; ask it for a KEEPALIVE after
 * a third of that. now: the round's clock, read once for the whole round
 * (stamps a handshake set later in the round count as now). Non-zero when
 * the peer failed. */
int liveness_check(tcpx_peer *p, int heard, int heard_data, uint64_t now);
tcpx_status liveness_on_keepalive(tcpx_peer *p, const tcpx_msg *m);
void peer_close_comms(tcpx_peer *p);

/* ctrl.c */
tcpx_status ctrl_open(tcpx_peer *p);        /* buffers, registrations, receives posted */
void ctrl_close(tcpx_peer *p);              /* comms closed, buffers freed */
/* Queue a message. An error (TCPX_ERR_PEER when the peer is not ready) is
 * also kept in p->ctrl_err for the engine. */
tcpx_status ctrl_send(tcpx_peer *p, const tcpx_msg *m);
tcpx_status ctrl_flush(tcpx_peer *p);       /* retire sent frames, frame and send queued messages */
/* NACK{id, st} with the sentence text. */
tcpx_status ctrl_send_nack(tcpx_peer *p, uint64_t id, tcpx_status st, const char *text);
/* The next received message, TCPX_IN_PROGRESS when none is in, or an error.
 * m->payload stays valid until the next call. */
tcpx_status ctrl_next(tcpx_peer *p, tcpx_msg *m);

/* channel.c */
tcpx_status chan_init(tcpx_chan *c, void *comm);
void chan_close(tcpx_session *s, tcpx_chan *c, int is_send);
/* One round on a data comm: test, retire (the ops of retired chunks are
 * appended to *out, one entry per chunk), stage, post. An error means the
 * stream is broken (detail in tcpx_last_error); the caller fails the peer. */
tcpx_status chan_progress(tcpx_session *s, tcpx_chan *c, int is_send, tcpx_retired *out);
/* Cut op's stream into chunks (pack_cut) dealt round-robin from channel
 * `first`, each marked to move in place or through a slot. */
tcpx_status enqueue_chunks(tcpx_session *s, tcpx_op *op, tcpx_chan *chans, int nchans, size_t chunk, uint16_t first,
                           int is_send);

/* pack.c */
/* Length of the chunk starting at segs[*seg] + *seg_off: at most `chunk`
 * bytes and TCPX_PACK_MAX_SEGS pieces; advances *seg / *seg_off past it.
 * Both ends of a stream cut alike from the same piece lengths. */
size_t pack_cut(const tcpx_op *op, size_t *seg, size_t *seg_off, size_t chunk);
/* Start of [seg:seg_off, +len) when it is one run of memory in one
 * registration (*r), else NULL. */
uint8_t *pack_contiguous(const tcpx_op *op, size_t seg, size_t seg_off, size_t len, tcpx_region **r);
/* The chunk's pieces as host-memory iovecs (for a transport's isendv /
 * irecvv): their count, or 0 when one is GPU memory or they are more than cap. */
int pack_iov(const tcpx_chunk *ch, tcpx_net_iov *iov, int cap);
/* Gather (1) the chunk's pieces into slot, or scatter (0) the slot into
 * them. Host pieces next to a host slot are copied at once; the rest is
 * queued on stream (*queued = 1: record an event and wait for it). mirror:
 * device memory of the slot's size (or NULL) for chunks of many GPU pieces. */
tcpx_status pack_copy(const tcpx_chunk *ch, int gather, uint8_t *slot, int slot_on_device, uint8_t *mirror,
                      struct tcpx_gpu_stream *stream, struct tcpx_gpu_copier *cp, int *queued);

/* staging.c */
/* Can the transport take memory of `kind` in place in this direction? */
int stage_direct_ok(const tcpx_session *s, tcpx_mem_kind kind, int is_send);
tcpx_status stage_create(tcpx_session *s, void *comm, int is_send, tcpx_stage **out);
void stage_destroy(tcpx_session *s, void *comm, tcpx_stage *st);
int stage_acquire(tcpx_stage *st);
void stage_release(tcpx_stage *st);
static inline uint8_t *stage_slot(tcpx_stage *st, int slot) { return st->arena + (size_t)slot * st->slot_bytes; }
/* The device mirror of a host slot (allocated at first use), or NULL when
 * there is none (no GPU, device slots, out of memory: pack_copy then copies
 * without it). */
uint8_t *stage_mirror(tcpx_session *s, tcpx_stage *st, int slot);
tcpx_status op_copy(tcpx_session *s, const tcpx_op *op, void *dst, const void *src, size_t n);
/* The same for memory of region r (the host side of the copy is dst or src). */
tcpx_status region_copy(tcpx_session *s, const tcpx_region *r, void *dst, const void *src, size_t n);

/* op.c */
void ops_add(tcpx_peer *p, tcpx_op *op);
tcpx_op *ops_find(tcpx_peer *p, uint64_t id);
void ops_remove(tcpx_peer *p, tcpx_op *op);
void op_complete(tcpx_op *op);
void op_fail(tcpx_op *op, tcpx_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One more chunk of op retired; the kind's chunks_done hook after the last. */
void op_chunk_done(tcpx_op *op);
/* "send", "receive", "WRITE", ... for sentences (inline: channel.c, below
 * op.c, names ops in its logs). */
static inline const char *op_kind_name(const tcpx_op *op)
{
    switch (op->kind) {
    case OP_SEND: return "send";
    case OP_RECV: return "receive";
    case OP_WRITE: return "WRITE";
    case OP_READ: return "READ";
    case OP_WRITE_IN: return "served WRITE";
    case OP_READ_IN: return "served READ";
    default: return "notification";
    }
}
void op_free(tcpx_op *op);          /* an op that has left its peer (or never joined one) */
/* Count the op in its regions' busy counts (rbusy for a target op), and
 * stop counting (when it finishes, or earlier once it no longer touches them). */
void op_hold_regions(tcpx_op *op);
void op_release_regions(tcpx_op *op);
/* Something an op waits for besides its chunks arrived: its chunks_done
 * hook runs again if every chunk is in. (Inline: notify.c, which peer.c
 * calls, uses it without a call back into op.c.) */
static inline void op_recheck(tcpx_op *op)
{
    if (op->chunks_done == op->nchunks && op->hooks && op->hooks->chunks_done) op->hooks->chunks_done(op);
}
/* ACK and NACK: to the named op's hooks. */
tcpx_status op_on_ack(tcpx_peer *p, const tcpx_msg *m);
tcpx_status op_on_nack(tcpx_peer *p, const tcpx_msg *m);

/* twosided.c */
/* Handlers of the messages of an established connection (proto.h's list). */
tcpx_status twosided_on_rts(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_cts(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_data(tcpx_peer *p, const tcpx_msg *m);
tcpx_status twosided_on_cancel(tcpx_peer *p, const tcpx_msg *m);
tcpx_status op_start(tcpx_op *op);
void op_withdraw(tcpx_op *op);

/* unexpected.c: the receiver's store of the peer's sends that no receive
 * matched yet (RTS held until a receive with their tag is posted) */
/* Hold the send of RTS m (its bytes when inline); an error when the peer
 * sent more than the credit of our HELLO allows, or memory runs out. */
tcpx_status unexpected_add(tcpx_peer *p, const tcpx_msg *m, int is_inline);
/* The oldest held send of tag, or the one of send id, out of the store;
 * NULL if none. The caller frees it. */
tcpx_unexpected *unexpected_take_tag(tcpx_peer *p, uint64_t tag);
tcpx_unexpected *unexpected_take_id(tcpx_peer *p, uint64_t send_id);
void unexpected_free(tcpx_unexpected *u);
/* Free every held send (the peer is closing: they are its). */
void unexpected_free_all(tcpx_peer *p);

/* credit.c: the sender's half of two-sided flow control. It decides and
 * counts; twosided.c announces what it lets go. */
/* A new send: 1 if it may be announced now (nothing waits before it and the
 * peer's budget has room); 0 when it was queued (OPS_CREDIT_WAIT). */
int credit_post(tcpx_op *op);
/* The first answer to op's RTS came: its credit returns. 1 if it held
 * some (waiting sends may fit now), 0 for an op that held none. */
int credit_return(tcpx_op *op);
/* The oldest waiting send, out of the queue, if it fits the budget now
 * (and the peer is ready); NULL otherwise. */
tcpx_op *credit_next(tcpx_peer *p);
/* Count an RTS going out. */
void credit_take(tcpx_op *op);
/* A send leaving the peer: out of the waiting queue. */
void credit_forget(tcpx_op *op);

/* onesided.c */
/* Put an initiator's WRITE or READ (op->kind) on the wire: its list of n
 * blocks in the peer's memory, then for a WRITE its chunks. */
tcpx_status onesided_start(tcpx_op *op, const tcpx_wire_block *blocks, uint32_t n);
tcpx_status onesided_on_write(tcpx_peer *p, const tcpx_msg *m);
tcpx_status onesided_on_read_req(tcpx_peer *p, const tcpx_msg *m);
tcpx_status onesided_on_read_data(tcpx_peer *p, const tcpx_msg *m);

/* notify.c */
tcpx_status notify_on_notif(tcpx_peer *p, const tcpx_msg *m);
void notify_mark_ready(tcpx_notif *n);     /* its write's bytes are in place */
void notify_flush(tcpx_peer *p);           /* deliver the ready head of p's queue into the inbox */
/* p is going away: its ready notifications (their writes were acknowledged,
 * or they were queued behind one that never became ready) go into the
 * inbox in order; the others are dropped. */
void notify_rescue(tcpx_peer *p);
void notify_drop(tcpx_peer *p, tcpx_notif *n);   /* its write failed: forget it */
void notify_reads_done(tcpx_peer *p);      /* no READ of p is served here any more */
void notify_pop(tcpx_session *s);          /* the oldest of the inbox has been taken */
void notify_free_inbox(tcpx_session *s);

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
 * with) on the unpack stream; urx_mark then records the slot's event after
 * whatever else was queued on urx_stream for it. */
tcpx_status urx_unpack(tcpx_urx *u, int slot, uint8_t *dst, size_t len);
tcpx_status urx_mark(tcpx_urx *u, int slot);
struct tcpx_gpu_stream *urx_stream(tcpx_urx *u);
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
/* Put what was just posted to p on the wire, reading nothing. */
void sess_push_locked(tcpx_session *s, tcpx_peer *p, size_t bytes, size_t nops);
void sess_wake(void *arg);
/* A round for a caller that polls (tcpx_xfer_test, tcpx_notify_poll,
 * tcpx_session_progress): it will be back at once, so the transport may
 * leave it work (tcpx_net caller_polls). */
void sess_poll_locked(tcpx_session *s);
/* The transport's idle and serve hooks: a round, on a transport thread, for
 * a session no other thread progresses. */
int sess_io_idle(void *arg);
int sess_io_serve(void *arg);
void sess_wait_event(tcpx_session *s, uint64_t seen, uint64_t deadline);
/* The same for a caller holding s->mu: released while asleep, held again on return. */
void sess_nap_locked(tcpx_session *s, uint64_t seen, uint64_t deadline);
uint64_t sess_wake_seq(tcpx_session *s);
int sess_bg_start(tcpx_session *s);
void sess_bg_stop(tcpx_session *s);

#endif
