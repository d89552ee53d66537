/*
 * tcpx_p2p.h - point-to-point transfers of host and GPU memory over TCP.
 *
 * The whole public API of libtcpx_p2p. Plain C11, no transport detail:
 * the same calls drive the built-in multi-socket TCP transport and any
 * external ncclNet plugin (GPUDirect-TCPX).
 *
 * Model
 *   A *session* owns listening endpoints, registered memory and connections
 *   to named *peers*. A connection is full duplex: a control stream plus
 *   `channels` data streams in each direction. A *transfer* groups sends and
 *   receives posted to one peer; it completes when every operation in it has
 *   completed.
 *
 *   Sends and receives are matched by tag: an incoming send is matched with
 *   the oldest posted, unmatched receive of the same tag from that peer
 *   (sends of one tag are matched in the order they were posted). Sizes must
 *   be equal: a send of N bytes matched with a receive of M != N bytes fails
 *   on both sides with TCPX_ERR_PROTOCOL and no byte is written.
 *   A send completes when the receiver has the bytes (remote completion).
 *
 *   One-sided WRITE and READ move lists of blocks between local memory and
 *   a peer's registered memory, named by the descriptor (tcpx_memdesc) the
 *   peer exported; the peer's application takes no part (a passive target).
 *   A WRITE completes when every byte is in place at the target, a READ when
 *   every byte is in local memory. Notifications (small byte strings) travel
 *   alone or attached to a one-sided list; an attached one is delivered to
 *   the target only after every byte of its list is in place there.
 *
 * Threads
 *   All calls are thread-safe: a session serialises its state internally.
 *   Progress is made by tcpx_xfer_test / tcpx_xfer_wait / tcpx_session_progress
 *   (any of them progresses every peer of the session) and, unless disabled
 *   (progress_thread = 0), by a background thread when no caller has for 1 ms;
 *   the built-in transport moves bytes on its own I/O threads.
 *
 * Errors
 *   Every call that can fail returns a tcpx_status; TCPX_OK is 0 and errors
 *   are negative. tcpx_last_error() returns a sentence with the detail of the
 *   last error raised on the calling thread.
 */
#ifndef TCPX_P2P_H
#define TCPX_P2P_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TCPX_VERSION_MAJOR 0
#define TCPX_VERSION_MINOR 1
#define TCPX_VERSION_PATCH 0

/* ------------------------------------------------------------------ status */

typedef enum tcpx_status {
    TCPX_OK = 0,
    TCPX_IN_PROGRESS = 1,        /* not an error: the operation is still running */
    TCPX_ERR_INVALID = -1,       /* bad argument or call in the wrong state */
    TCPX_ERR_NOMEM = -2,         /* allocation failed */
    TCPX_ERR_NOT_FOUND = -3,     /* unknown peer or memory id */
    TCPX_ERR_TIMEOUT = -4,       /* a deadline passed */
    TCPX_ERR_PEER = -5,          /* connection to the peer lost or closed */
    TCPX_ERR_PROTOCOL = -6,      /* malformed bytes, or a send/receive mismatch */
    TCPX_ERR_UNSUPPORTED = -7,   /* feature not available here (e.g. no GPU) */
    TCPX_ERR_CUDA = -8,          /* a CUDA call failed */
    TCPX_ERR_TRANSPORT = -9,     /* the transport (socket or plugin) failed */
    TCPX_ERR_AUTH = -10,         /* wrong or missing session token */
    TCPX_ERR_SYSTEM = -11,       /* an operating-system call failed */
    TCPX_ERR_ACCESS = -12,       /* the peer refused access to its memory (unknown id, wrong key,
                                    out of bounds, region being deregistered) */
} tcpx_status;

/* Static name of a status, e.g. "TCPX_ERR_PEER". Never NULL. */
const char *tcpx_strerror(tcpx_status st);

/* Detail of the last error raised on the calling thread ("" if none). The
 * string stays valid until the next tcpx_ call on this thread. */
const char *tcpx_last_error(void);

/* ------------------------------------------------------------------ config */

#define TCPX_MAX_CHANNELS 64
#define TCPX_NAME_MAX 64

/* Session configuration. Fill with tcpx_config_init(), change fields, then
 * pass to tcpx_session_create(). Every field can be overridden by the
 * environment variable named beside it; the environment wins over the code
 * so that an operator can tune a deployed program. */
typedef struct tcpx_config {
    int gpu_id;                /* TCPX_GPU: CUDA device for GPU memory, -1 = host only, -2 = the device of
                                  the first GPU memory registered (the transport is then chosen without
                                  a GPU: "auto" keeps the socket transport) (default -1) */
    int channels;              /* TCPX_CHANNELS: data streams per direction, 1..64 (default 4) */
    char transport[256];       /* TCPX_TRANSPORT: "auto", "socket", or path/name of an ncclNet plugin (default "auto") */
    char bind_addr[64];        /* TCPX_BIND_ADDR: numeric IPv4/IPv6 address to listen on; "" = first
                                  up non-loopback interface, else 127.0.0.1 (default "") */
    char name[TCPX_NAME_MAX];  /* TCPX_NAME: this session's name as peers see it (default host:pid) */
    size_t chunk_bytes;        /* TCPX_CHUNK_BYTES: unit a message is split into across channels (default 1 MiB) */
    int window;                /* TCPX_WINDOW: max requests in flight per data stream (default 8) */
    int staging_slots;         /* TCPX_STAGING_SLOTS: pinned bounce slots (chunk_bytes each) per data
                                  stream for GPU memory over a host-only transport (default 4) */
    int socks_per_comm;        /* TCPX_SOCKS_PER_COMM: TCP sockets per transport stream (default 1) */
    int io_threads;            /* TCPX_IO_THREADS: the socket transport's I/O threads, serving all its
                                  sockets (epoll); 0 = one per core, at most 32, and one on
                                  machines of 1-2 cores (default 0) */
    int callers_move;          /* TCPX_CALLERS_MOVE: a thread that polls (tcpx_xfer_test,
                                  tcpx_notify_poll, tcpx_session_progress) moves the bytes of large
                                  messages itself instead of leaving them to the I/O threads: 1 = yes,
                                  0 = no, -1 = on machines of one or two cores, where an I/O thread
                                  could only run by taking the polling caller's core (default -1) */
    int spin_us;               /* TCPX_SPIN_US: tcpx_xfer_wait on a transfer of at most 256 KiB first polls
                                  the connection this long (the answer to a small message usually comes
                                  sooner than a sleeping thread could wake), then sleeps; 0 = sleep at
                                  once, saving CPU at the cost of latency (default 200) */
    int progress_spin_us;      /* TCPX_PROGRESS_SPIN_US: while traffic flows to a session no application
                                  thread progresses (a passive target), the background thread polls its
                                  sockets until this long passes with nothing happening, so the next READ
                                  or WRITE is read at once instead of after an I/O thread's wake-up; it
                                  costs that thread's CPU only while traffic flows (an idle session
                                  sleeps). -1 = 300 on machines of 4 or more cores, 0 (no poll) below
                                  (default -1) */
    int connect_timeout_ms;    /* TCPX_CONNECT_TIMEOUT_MS: bound on connect/accept (default 30000) */
    int peer_timeout_ms;       /* TCPX_PEER_TIMEOUT_MS: a peer fails with TCPX_ERR_TIMEOUT, and with it
                                  every pending transfer to or from it, when data we sent it stays
                                  unacknowledged this long (TCP_USER_TIMEOUT), or when operations wait on
                                  it and nothing at all (data, control message, or the keepalive asked
                                  for after a third of this) came from it this long: a stalled process
                                  whose kernel still ACKs is caught too. Idle connections (nothing
                                  outstanding) exchange nothing and stay up. Both ends must be progressed
                                  at least every third of this (the progress thread does). Default 30000 */
    int log_level;             /* TCPX_LOG_LEVEL: 0 none, 1 error, 2 warn, 3 info, 4 debug (default 2) */
    int progress_thread;       /* TCPX_PROGRESS_THREAD: 1 = a background thread progresses the session
                                  whenever no caller has for 1 ms, so peers are answered (acknowledgements,
                                  withdrawals, handshakes) even while the application is busy elsewhere;
                                  0 = only tcpx_xfer_test/wait and tcpx_session_progress do (default 1) */
    int net_device;            /* TCPX_NET_DEVICE: transport device (NIC) index; -1 = the device whose PCI
                                  path is nearest the session's GPU (GPUDirect-TCPX VMs have one data NIC
                                  per GPU pair), device 0 without a GPU (default -1) */
    int accept_any;            /* TCPX_ACCEPT_ANY: 1 = accept every peer that presents this session's
                                  token, without a tcpx_session_accept call per peer, and open the reply
                                  direction to it; the peer is known by the name it gives (its config
                                  name). Progress (the background thread, or any call that progresses)
                                  completes such connections and serves one-sided operations and
                                  notifications with no application call (default 0) */
    int data_digest;           /* TCPX_DATA_DIGEST: 1 = every data chunk travels with a CRC-32C of its
                                  bytes (as NVMe/TCP's DDGST), checked before the chunk counts as
                                  received; a mismatch fails that transfer on both sides with
                                  TCPX_ERR_PROTOCOL, naming the chunk, and the connection goes on. On a
                                  connection when either side asks for it. Host and staged GPU memory
                                  (GPU chunks then always go through the host staging slots); not on a
                                  device-unpack transport (session creation refuses). Control messages
                                  always carry a digest (default 0) */
    int unexpected_max;        /* TCPX_UNEXPECTED_MAX: sends from one peer this session holds before a
                                  receive is posted for them (unexpected sends). A peer is granted this
                                  many at connect; past it, its further sends wait on the peer's side,
                                  unannounced, until receives posted here match the ones held: a flood
                                  of sends nobody receives yet slows the sender, the connection stays
                                  up. A peer sending beyond it breaks the protocol and fails.
                                  Sends wait in the order they were posted: a receiver that wants a
                                  send posted after more than this many others it posts no receives
                                  for waits until it posts some (its wait's deadline applies).
                                  1..INT_MAX (default 65536) */
    size_t unexpected_max_bytes; /* TCPX_UNEXPECTED_MAX_BYTES: bytes of the small sends (up to 8 KiB,
                                  which travel with their announcement) among them; larger sends count
                                  only against unexpected_max, their bytes move once matched.
                                  At least 8192 (default 64 MiB) */
} tcpx_config;

/* Fill cfg with the defaults above (environment not applied yet). */
void tcpx_config_init(tcpx_config *cfg);

/* Apply the TCPX_* environment variables to cfg. tcpx_session_create()
 * does this itself; it is public so that a tool can show the result.
 * Errors: TCPX_ERR_INVALID when a variable holds a malformed value. */
tcpx_status tcpx_config_apply_env(tcpx_config *cfg);

/* ----------------------------------------------------------------- session */

typedef struct tcpx_session tcpx_session;

/* Create a session. cfg may be NULL (defaults + environment). The config is
 * copied. Errors: TCPX_ERR_INVALID (bad config), TCPX_ERR_TRANSPORT (the
 * transport could not be loaded or has no device), TCPX_ERR_UNSUPPORTED
 * (gpu_id >= 0 on a build or machine without CUDA), TCPX_ERR_NOMEM. */
tcpx_status tcpx_session_create(const tcpx_config *cfg, tcpx_session **out);

/* Release everything the session holds: connections (pending transfers fail
 * with TCPX_ERR_PEER), registrations, listening endpoints. Transfers still
 * held by the caller must be released before this call. NULL is ignored. */
void tcpx_session_destroy(tcpx_session *s);

/* The session's configuration after defaults and environment. */
const tcpx_config *tcpx_session_config(const tcpx_session *s);

/* Name of the transport in use ("socket", or the plugin's name). */
const char *tcpx_session_transport(const tcpx_session *s);

/* Start listening (idempotent) and return the connection-info blob that a
 * peer passes to tcpx_session_load_remote(). *blob points into the session
 * and stays valid until the session is destroyed. */
tcpx_status tcpx_session_listen(tcpx_session *s, const void **blob, size_t *len);

/* Wait until the peer that calls itself `peer` (its config name) has
 * connected, check its token, and open the reply direction to it. Bounded
 * by connect_timeout_ms. Connections from other peers that arrive meanwhile
 * are kept for their own accept. Connections with a wrong token are closed
 * and logged; accept keeps waiting for the right one.
 * With accept_any set, the session accepts on its own and this call only
 * waits for the peer of that name to be connected.
 * Errors: TCPX_ERR_TIMEOUT, TCPX_ERR_INVALID (name in use), TCPX_ERR_PEER. */
tcpx_status tcpx_session_accept(tcpx_session *s, const char *peer);

/* Store the connection info of a peer under the name `peer` (a local label).
 * Loading the info of a peer that is connected, or connecting, under that
 * label with the same info again is a no-op.
 * Errors: TCPX_ERR_PROTOCOL (malformed blob), TCPX_ERR_INVALID (the label
 * is connected to another session, or the peer uses another transport). */
tcpx_status tcpx_session_load_remote(tcpx_session *s, const char *peer,
                                     const void *blob, size_t len);

/* Connect to a peer whose info was loaded, present its token, and wait for
 * the peer to accept and open the reply direction (bounded by
 * connect_timeout_ms). Listens implicitly if needed. Idempotent: on a peer
 * that is connected it returns TCPX_OK, on one being connected it waits.
 * Both sessions may connect to each other at the same time: they end up
 * with one connection (the one opened by the session with the lower token).
 * A session may connect to itself (load its own info under a label).
 * Errors: TCPX_ERR_NOT_FOUND (no info loaded), TCPX_ERR_TIMEOUT,
 * TCPX_ERR_AUTH (the peer refused the token), TCPX_ERR_PEER, TCPX_ERR_TRANSPORT,
 * TCPX_ERR_INVALID (that session is already connected under another label). */
tcpx_status tcpx_session_connect(tcpx_session *s, const char *peer);

/* Close the connection to a peer. Its pending operations fail with
 * TCPX_ERR_PEER; transfers that hold them stay valid until released.
 * Errors: TCPX_ERR_NOT_FOUND. */
tcpx_status tcpx_session_disconnect(tcpx_session *s, const char *peer);

/* Begin connecting to a peer whose info was loaded, without waiting:
 * TCPX_OK when it is connected already, TCPX_IN_PROGRESS when the
 * connection is being made (progress completes it; tcpx_session_peer_status
 * tells), or the errors of tcpx_session_connect. */
tcpx_status tcpx_session_connect_start(tcpx_session *s, const char *peer);

/* State of a peer: TCPX_OK when connected, TCPX_IN_PROGRESS while it is
 * being connected, TCPX_ERR_NOT_FOUND, or the error that failed it
 * (TCPX_ERR_PEER, TCPX_ERR_TIMEOUT, ...). */
tcpx_status tcpx_session_peer_status(tcpx_session *s, const char *peer);

/* Make progress on every peer without blocking. Returns TCPX_OK. */
tcpx_status tcpx_session_progress(tcpx_session *s);

/* ------------------------------------------------------------------ memory */

typedef enum tcpx_mem_kind {
    TCPX_MEM_HOST = 0,
    TCPX_MEM_CUDA = 1,
} tcpx_mem_kind;

typedef uint64_t tcpx_mem_id;   /* 0 is never a valid id */

typedef struct tcpx_mem_info_t {
    void *ptr;
    size_t size;
    tcpx_mem_kind kind;
    int device;                 /* CUDA device, -1 for host memory */
    tcpx_mem_id id;
} tcpx_mem_info_t;

/* Register [ptr, ptr+size) for transfers. The caller keeps ownership of the
 * memory and must not free it before tcpx_mem_deregister(). Registrations
 * are per session; transports register lazily per connection. The id and
 * the descriptor's key are derived from a secret of the session and the
 * range: registering the same (ptr, size, kind) again after deregistering
 * it gives the same id and descriptor, so peers that kept the descriptor
 * may use it again; a second registration of a range that is registered
 * already gets another id.
 * Errors: TCPX_ERR_INVALID (NULL ptr, size 0), TCPX_ERR_UNSUPPORTED (CUDA
 * memory without GPU support), TCPX_ERR_NOMEM. */
tcpx_status tcpx_mem_register(tcpx_session *s, void *ptr, size_t size,
                              tcpx_mem_kind kind, tcpx_mem_id *id);

/* Deregister. Local operations still using the region (posted, not
 * completed) make this fail with TCPX_ERR_INVALID; release their transfers
 * first. Peers' one-sided operations on it: new ones are refused from now
 * on (TCPX_ERR_ACCESS at the peer) and those under way are waited for,
 * bounded by peer_timeout_ms (then TCPX_ERR_TIMEOUT, and the region stays
 * registered, refusing peers, until a later call succeeds).
 * Errors: TCPX_ERR_NOT_FOUND, TCPX_ERR_INVALID, TCPX_ERR_TIMEOUT. */
tcpx_status tcpx_mem_deregister(tcpx_session *s, tcpx_mem_id id);

/* Describe a registration. Errors: TCPX_ERR_NOT_FOUND. */
tcpx_status tcpx_mem_info(tcpx_session *s, tcpx_mem_id id, tcpx_mem_info_t *info);

/* Memory descriptor: what a peer needs to name a remote registration. The
 * owner exports it (tcpx_memdesc_get, then serialize); an initiator passes
 * the deserialized descriptor to one-sided calls, with offsets relative to
 * the start of the registration (addr). */
typedef struct tcpx_memdesc {
    uint64_t addr;              /* base address in the owner's address space */
    uint64_t size;
    tcpx_mem_kind kind;
    tcpx_mem_id id;             /* the owner's mem id */
    uint64_t key;               /* access key checked by the owner (unguessable without its secret) */
} tcpx_memdesc;

#define TCPX_MEMDESC_BLOB_SIZE 48

/* Describe a local registration as a descriptor. Errors: TCPX_ERR_NOT_FOUND. */
tcpx_status tcpx_memdesc_get(tcpx_session *s, tcpx_mem_id id, tcpx_memdesc *out);

/* Serialize to exactly TCPX_MEMDESC_BLOB_SIZE bytes into buf (cap >= that).
 * *len receives the size written. Errors: TCPX_ERR_INVALID (cap too small). */
tcpx_status tcpx_memdesc_serialize(const tcpx_memdesc *d, void *buf, size_t cap, size_t *len);

/* Parse a descriptor blob. Checks magic, version, length and checksum;
 * anything else is TCPX_ERR_PROTOCOL. Never reads past buf+len. */
tcpx_status tcpx_memdesc_deserialize(const void *buf, size_t len, tcpx_memdesc *out);

/* --------------------------------------------------------------- transfers */

typedef struct tcpx_xfer tcpx_xfer;

/* Create an empty transfer to a connected peer.
 * Errors: TCPX_ERR_NOT_FOUND, TCPX_ERR_PEER (peer failed), TCPX_ERR_NOMEM. */
tcpx_status tcpx_xfer_create(tcpx_session *s, const char *peer, tcpx_xfer **out);

/* Post a send of [offset, offset+size) of registration `mem` with `tag`.
 * size may be 0. The bytes must not change until the transfer completes.
 * Errors: TCPX_ERR_NOT_FOUND (unknown mem id), TCPX_ERR_INVALID (range out
 * of the registration, transfer already released/failed), TCPX_ERR_PEER. */
tcpx_status tcpx_xfer_post_send(tcpx_xfer *x, tcpx_mem_id mem, size_t offset,
                                size_t size, uint64_t tag);

/* Post a receive into [offset, offset+size) of `mem`, matched by tag.
 * Errors: as tcpx_xfer_post_send. */
tcpx_status tcpx_xfer_post_recv(tcpx_xfer *x, tcpx_mem_id mem, size_t offset,
                                size_t size, uint64_t tag);

/* Batch forms: n operations from parallel arrays. Validates all of them
 * before posting any: on error nothing was posted. */
tcpx_status tcpx_xfer_post_send_batch(tcpx_xfer *x, size_t n, const tcpx_mem_id *mems,
                                      const size_t *offsets, const size_t *sizes,
                                      const uint64_t *tags);
tcpx_status tcpx_xfer_post_recv_batch(tcpx_xfer *x, size_t n, const tcpx_mem_id *mems,
                                      const size_t *offsets, const size_t *sizes,
                                      const uint64_t *tags);

/* Progress without blocking. TCPX_OK when every posted operation completed,
 * TCPX_IN_PROGRESS while some run, or the first error of the transfer. A
 * transfer that failed takes no more posts (TCPX_ERR_INVALID); release it. */
tcpx_status tcpx_xfer_test(tcpx_xfer *x);

/* Wait for completion. timeout_ms < 0 waits without a deadline (the peer
 * timeout still applies to a dead peer); 0 is tcpx_xfer_test().
 * Returns as tcpx_xfer_test, or TCPX_ERR_TIMEOUT when the deadline passed
 * (the transfer keeps running; wait again or release it). */
tcpx_status tcpx_xfer_wait(tcpx_xfer *x, int timeout_ms);

/* Release a transfer. Unfinished operations are cancelled: operations whose
 * bytes have not started moving are withdrawn (the peer's matching operation
 * fails with TCPX_ERR_PEER); operations with bytes in flight are finished
 * first, bounded by peer_timeout_ms, after which the peer connection is
 * closed. After return no byte of the transfer's memory is touched.
 * The handle is freed: it must not be used again, not even released again
 * (as with libuv's handles). Most such misuse is caught (a marker word):
 * the call returns TCPX_ERR_INVALID, or release logs an error and does
 * nothing, instead of corrupting memory; do not rely on it. */
void tcpx_xfer_release(tcpx_xfer *x);

/* ------------------------------------------------------ one-sided transfers */

/* One block of a one-sided list: `size` bytes between [local_offset, +size)
 * of local registration `local` and [remote_offset, +size) of the peer's
 * registration `remote` (a descriptor it exported). Either side may be host
 * or GPU memory. Zero-size blocks are allowed and move nothing. */
typedef struct tcpx_block {
    tcpx_mem_id local;
    size_t local_offset;
    const tcpx_memdesc *remote;   /* read during the call only */
    uint64_t remote_offset;
    size_t size;
} tcpx_block;

/* A notification attached to a one-sided list: len bytes (0..TCPX_NOTIF_MAX;
 * an empty one still counts), copied during the call. */
typedef struct tcpx_notif_msg {
    const void *data;
    size_t len;
} tcpx_notif_msg;

#define TCPX_NOTIF_MAX 8192         /* bytes in one notification */
#define TCPX_LIST_MAX_BLOCKS 1048576 /* blocks in one list call */

/* WRITE the blocks to the peer: each block's local bytes into the peer's
 * memory. One list moves as one stream of bytes cut into chunks, so small
 * blocks cost about what one message of their total size costs. Completes
 * (tcpx_xfer_test/wait) when every byte is in place at the peer. With notif
 * (may be NULL), the peer receives the notification after every byte of
 * this list is in place there, and never if the write failed; a write that
 * completed here has its notification delivered there even when the
 * connection fails right after.
 * Every block is checked before anything is posted: on error nothing was.
 * Errors: TCPX_ERR_NOT_FOUND (unknown local mem id), TCPX_ERR_INVALID (a
 * range outside its local registration or outside the descriptor's size,
 * NULL descriptor, too many blocks, notification too long), TCPX_ERR_PEER.
 * Memory a target shares with peers is ordered with its own accesses by
 * its session's calls. When the peer is told (or tells) through another
 * channel than a notification, call any function on the session
 * (tcpx_session_progress, say) between the access and the message: after
 * touching memory that a peer will then READ or WRITE, and after learning
 * that a peer WROTE memory, before reading it. tcpx_notify_poll does this
 * itself. A WRITE whose attached notification is refused (a full inbox)
 * fails, but its bytes may have been written.
 * The peer checks every block again (id, key, bounds, being deregistered):
 * a refusal fails the transfer with TCPX_ERR_ACCESS and a sentence naming
 * the block; the peer stays connected and keeps serving. */
tcpx_status tcpx_xfer_post_write_list(tcpx_xfer *x, size_t n, const tcpx_block *blocks,
                                      const tcpx_notif_msg *notif);

/* READ the blocks from the peer into local memory, with the same rules.
 * Completes when every byte is in local memory; with notif, the peer then
 * receives the notification, and the transfer completes once it has been
 * delivered. */
tcpx_status tcpx_xfer_post_read_list(tcpx_xfer *x, size_t n, const tcpx_block *blocks,
                                     const tcpx_notif_msg *notif);

/* One block, no notification. */
tcpx_status tcpx_xfer_post_write(tcpx_xfer *x, tcpx_mem_id local, size_t local_offset,
                                 const tcpx_memdesc *remote, uint64_t remote_offset, size_t size);
tcpx_status tcpx_xfer_post_read(tcpx_xfer *x, tcpx_mem_id local, size_t local_offset,
                                const tcpx_memdesc *remote, uint64_t remote_offset, size_t size);

/* ----------------------------------------------------------- notifications */

/* Send a notification of len bytes (0..TCPX_NOTIF_MAX) to a connected peer,
 * without waiting. Notifications from one session to a peer arrive in the
 * order they were sent (attached ones once their data is in place, later
 * ones after them). A peer whose inbox is full refuses it; that is logged
 * here as a warning.
 * Errors: TCPX_ERR_NOT_FOUND (unknown peer), TCPX_ERR_PEER (not connected),
 * TCPX_ERR_INVALID (too long). */
tcpx_status tcpx_notify_send(tcpx_session *s, const char *peer, const void *msg, size_t len);

/* Take the oldest notification received (progressing the session first):
 * the sending peer's name in peer (peer_cap bytes, NUL terminated), its
 * bytes in buf (cap bytes) and their count in *len.
 * Returns TCPX_OK with one notification, TCPX_IN_PROGRESS when none is
 * waiting (not an error), or TCPX_ERR_INVALID when buf or peer is too small
 * (*len then says how many bytes the notification has; it stays queued).
 * The inbox holds at most 65536 notifications and 64 MiB; past that peers'
 * notifications are refused (their transfers fail with TCPX_ERR_NOMEM). */
tcpx_status tcpx_notify_poll(tcpx_session *s, char *peer, size_t peer_cap, void *buf, size_t cap,
                             size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* TCPX_P2P_H */
