/* proto.h - the control-stream wire protocol, in one place.
 *
 * Control messages travel in frames: one transport message (one isend on the
 * control comm of a direction) of at most TCPX_CTRL_MSG_MAX bytes holds one
 * or more messages back to back, each:
 *
 *   u8  version (TCPX_PROTO_VERSION)
 *   u8  type    (enum tcpx_msg_type)
 *   u16 hdr_size   bytes of header, fixed per type, payload follows
 *   u32 payload_len
 *   u32 digest     CRC-32C of every other byte of the message: the 8 bytes
 *                  above, then the type fields and the payload below
 *   ... type fields (little-endian, fixed width) ...
 *   ... payload (inline data, a connection-info blob, or an error text) ...
 *
 * A direction A->B is one control comm and N data comms, all A's send comms
 * to B's recv comms. Data comms carry only chunks; both ends post chunks on
 * each data comm in the order of the DATA messages on that direction's
 * control comm, so ordered matching on every comm always holds.
 *
 * Two-sided send of `size` bytes, A -> B:
 *   A: RTS{send_id, tag, size} (+ inline payload when size <= TCPX_INLINE_MAX)
 *   B: matches the oldest posted receive with that tag.
 *      inline: copies, answers ACK{send_id}. Done.
 *      sizes differ: NACK{send_id, PROTOCOL} and fails its receive.
 *      else: CTS{send_id, recv_id, max_chunk} on B->A.
 *   A: DATA{recv_id, chunk <= max_chunk, first_channel} then chunk k on data
 *      comm (first_channel + k) % N.
 *   B: posts the chunk receives on DATA; when all arrived, ACK{send_id}.
 *   A withdraws an RTS with CANCEL{send_id}: if B still holds it unmatched, B
 *   drops it and answers NACK{send_id, PEER}; if B had matched it, B's CTS
 *   (answered by A with NACK{recv_id, PEER}) or ACK (inline: delivered)
 *   is already on its way. Either way A learns the outcome.
 *   Matching is by tag alone: per tag, the oldest posted receive takes the
 *   oldest unmatched RTS (each side keeps FIFO queues keyed by tag, O(1) a
 *   message whatever the order of tags).
 * Flow control of RTS (credit): B's HELLO grants A a budget, unx_max RTS and
 *   unx_max_bytes of inline payload among them (B's unexpected_max and
 *   unexpected_max_bytes). An RTS counts against it from when A sends it
 *   until A receives B's first answer to it (CTS, the ACK of an inline send,
 *   or a NACK); B frees its copy of an unmatched RTS before it answers, so B
 *   never holds more than the budget. A send that would overspend waits on
 *   A, unannounced, behind any that wait already (RTS leave A in post
 *   order), and goes when answers return credit. A withdrawn send that never
 *   left A is dropped there. B receiving an RTS that it cannot match while
 *   it already holds unx_max unmatched ones (or that would take it past
 *   unx_max_bytes) fails the connection: TCPX_ERR_PROTOCOL.
 *
 * One-sided, A the initiator, B the target. A list of n blocks (B's mem id,
 * key, offset, length; zero-length blocks are not sent) is one stream of
 * `total` bytes cut into chunks (tcpx_pack_cut: at most `chunk` bytes and
 * TCPX_PACK_MAX_SEGS blocks each), dealt round-robin from first_channel.
 * A list spans several messages of the same type and id, pieces
 * [first, first + payload_len / 32) in order, back to back on the stream;
 * the last has flag LAST.
 *   WRITE{id, total, nblocks, first, chunk, first_channel, flags} + blocks,
 *      then A's chunks on A->B's data comms at once (no CTS). B checks every
 *      block (id, key, bounds, not being deregistered) once the list is
 *      whole, then receives the chunks into the blocks and answers ACK{id}
 *      when every byte is in place; refused: NACK{id, ACCESS} and the chunks
 *      are received into scratch memory and dropped. Chunks never exceed the
 *      max_chunk of B's HELLO. A small WRITE (total <= TCPX_INLINE_MAX, the
 *      list and its bytes fit one message) is one piece with flag INLINE:
 *      the blocks, then the bytes; no chunks. B checks the blocks, copies
 *      the bytes in and ACKs (refused: NACK{id, ACCESS}, bytes dropped).
 *   READ_REQ{id, total, nblocks, first, flags} + blocks. B checks them, then
 *      READ_DATA{id, total, chunk, first_channel, flags} on B->A and its
 *      chunks on B->A's data comms; refused: NACK{id, ACCESS}, no data. A
 *      small READ (total <= TCPX_INLINE_MAX) is answered with its bytes as
 *      READ_DATA's payload (flag INLINE), no chunks.
 *   NOTIF{id, flags} + bytes: with flag ATTACHED it follows the last piece
 *      of WRITE id (which had flag NOTIF) and is delivered with that write
 *      (ACK{id} covers both), dropped if the write was refused; after a
 *      READ, or alone, B delivers it in order and answers ACK{id}. A full
 *      inbox answers NACK{id, NOMEM}.
 * KEEPALIVE{flags}: a side with operations waiting on a peer it has heard
 *   nothing from for peer_timeout_ms / 3 sends one with flag ASK (again
 *   every peer_timeout_ms / 3); the peer answers KEEPALIVE{0}. A peer heard
 *   from in no way for peer_timeout_ms while operations wait on it is
 *   stalled and fails (liveness.c). Idle connections exchange nothing.
 * Data digest: when either side's HELLO has flag DATA_DIGEST, every chunk
 *   on a data comm, both directions, is followed on that comm by a 4-byte
 *   message: the CRC-32C of the chunk's bytes. The receiver checks it before
 *   the chunk counts; a mismatch fails the op: a receive or a served WRITE
 *   answers NACK{sender's id, PROTOCOL, which chunk} instead of its ACK (the
 *   sender's op fails once its chunks are out), a READ fails where it is.
 * ACK and NACK name the op id of the side that waits for them.
 * First message on a new control comm: HELLO; on a new data comm: DHELLO.
 *
 * Integrity: a message whose digest does not match is never acted on; it
 * fails the connection (TCPX_ERR_PROTOCOL). The version byte is checked
 * first, so a peer of another protocol version is told so, not that its
 * messages look corrupted. Version 4 added the digest (and with it the 12-byte
 * common header) and the RTS budget of HELLO; versions differ => the
 * connection is refused.
 */
#ifndef TCPX_PROTO_H
#define TCPX_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"

#define TCPX_PROTO_VERSION 4
#define TCPX_CTRL_MSG_MAX (16 * 1024)
#define TCPX_INLINE_MAX (8 * 1024)
#define TCPX_PROTO_HDR_COMMON 12
#define TCPX_PROTO_DIGEST_OFF 8       /* the u32 digest inside the common header */
#define TCPX_WIRE_BLOCK_SIZE 32      /* one block of a one-sided list */
#define TCPX_BLOCKS_PER_MSG 500      /* blocks in one WRITE/READ_REQ message */

/* The one list of message types: name, wire value, bytes of type-specific
 * header after the common 12, and the handler the progress engine dispatches
 * an established connection's message to (HELLO and DHELLO only open a comm).
 * The enum, the names, the header sizes and the dispatch table are all made
 * from it. */
#define TCPX_MSG_TYPES(X)                                      \
    X(HELLO, 1, 1 + 2 + 8 + 8 + TCPX_NAME_MAX + 4 + 4 + 8 + 1, msg_refuse) \
    X(DHELLO, 2, 8 + 8 + 2, msg_refuse)                        \
    X(RTS, 3, 24, twosided_on_rts)                             \
    X(CTS, 4, 20, twosided_on_cts)                             \
    X(DATA, 5, 22, twosided_on_data)                           \
    X(ACK, 6, 8, op_on_ack)                                    \
    X(NACK, 7, 12, op_on_nack)                                 \
    X(CANCEL, 8, 8, twosided_on_cancel)                        \
    X(WRITE, 9, 32, onesided_on_write)                         \
    X(READ_REQ, 10, 26, onesided_on_read_req)                  \
    X(READ_DATA, 11, 23, onesided_on_read_data)                \
    X(NOTIF, 12, 10, notify_on_notif)                          \
    X(KEEPALIVE, 13, 2, liveness_on_keepalive)

typedef enum tcpx_msg_type {
#define TCPX_MSG_ENUM_(name, value, hdr, handler) TCPX_MSG_##name = value,
    TCPX_MSG_TYPES(TCPX_MSG_ENUM_)
#undef TCPX_MSG_ENUM_
    TCPX_MSG_MAX_ /* one past the last value: the list is dense from 1 */
} tcpx_msg_type;

enum tcpx_list_flags {              /* WRITE / READ_REQ */
    TCPX_LIST_LAST = 1,                /* the list is whole with this piece */
    TCPX_LIST_NOTIF = 2,               /* a NOTIF ATTACHED with this id follows the last piece */
    TCPX_LIST_INLINE = 4,              /* WRITE: the whole list in this one piece, its `total` bytes after the blocks */
};

enum tcpx_read_data_flags {
    TCPX_READ_INLINE = 1,              /* the `total` bytes are this message's payload: no chunks */
};

enum tcpx_hello_flags {
    TCPX_HELLO_DATA_DIGEST = 1,        /* the sender wants data chunks digested on this connection */
};

enum tcpx_keepalive_flags {
    TCPX_KEEPALIVE_ASK = 1,            /* answer with a KEEPALIVE{0} */
};

enum tcpx_notif_flags {
    TCPX_NOTIF_ATTACHED = 1,           /* delivered with WRITE id */
};

/* One block of a one-sided list as it travels. */
typedef struct tcpx_wire_block {
    uint64_t mem_id, key, offset, len;
} tcpx_wire_block;

enum tcpx_hello_role {
    TCPX_HELLO_INITIATE = 1,   /* connector -> acceptor, carries its conninfo */
    TCPX_HELLO_REPLY = 2,      /* acceptor -> connector on the reply direction */
};

typedef struct tcpx_msg {
    uint8_t type;                  /* enum tcpx_msg_type */
    union {
        struct {
            uint8_t role;
            uint16_t channels;
            uint64_t token;        /* the receiving session's token */
            uint64_t nonce;        /* connection id chosen by the initiator */
            char name[TCPX_NAME_MAX];   /* sender's session name, NUL terminated */
            uint32_t max_chunk;    /* largest chunk the sender receives (its chunk_bytes) */
            uint32_t unx_max;      /* unmatched sends the sender holds for us, >= 1 (its unexpected_max) */
            uint64_t unx_max_bytes; /* inline bytes among them, >= TCPX_INLINE_MAX (its unexpected_max_bytes) */
            uint8_t flags;         /* enum tcpx_hello_flags */
        } hello;                   /* payload: initiator's conninfo blob (INITIATE) */
        struct {
            uint64_t token;
            uint64_t nonce;
            uint16_t channel;
        } dhello;
        struct {
            uint64_t send_id;
            uint64_t tag;
            uint64_t size;
        } rts;                     /* payload: the data when inline */
        struct {
            uint64_t send_id;
            uint64_t recv_id;
            uint32_t max_chunk;    /* largest chunk the receiver takes (its chunk_bytes) */
        } cts;
        struct {
            uint64_t recv_id;
            uint64_t size;
            uint32_t chunk;
            uint16_t first_channel;
        } data;
        struct {
            uint64_t id;
        } ack;
        struct {
            uint64_t id;
            int32_t status;        /* a negative tcpx_status */
        } nack;                    /* payload: error text */
        struct {
            uint64_t send_id;
        } cancel;
        struct {
            uint64_t id;
            uint64_t total;        /* bytes of the whole list */
            uint32_t nblocks;      /* blocks of the whole list */
            uint32_t first;        /* index of this message's first block */
            uint32_t chunk;
            uint16_t first_channel;
            uint16_t flags;        /* enum tcpx_list_flags */
        } write;                   /* payload: blocks */
        struct {
            uint64_t id;
            uint64_t total;
            uint32_t nblocks;
            uint32_t first;
            uint16_t flags;
        } read_req;                /* payload: blocks */
        struct {
            uint64_t id;           /* the initiator's READ */
            uint64_t total;
            uint32_t chunk;
            uint16_t first_channel;
            uint8_t flags;         /* TCPX_READ_INLINE (a byte: the header size differs from every
                                      type one bit away, so a flipped type bit is caught) */
        } read_data;
        struct {
            uint64_t id;
            uint16_t flags;        /* enum tcpx_notif_flags */
        } notif;                   /* payload: the notification */
        struct {
            uint16_t flags;        /* enum tcpx_keepalive_flags */
        } keepalive;
    } u;
    const uint8_t *payload;        /* decode: points into the decoded buffer */
    uint32_t payload_len;
} tcpx_msg;

/* Encode m (its payload copied after the header) into buf. Returns the
 * encoded length, or 0 if it does not fit in cap. */
size_t tcpx_msg_encode(const tcpx_msg *m, void *buf, size_t cap);

/* Decode one message of exactly len bytes. TCPX_ERR_PROTOCOL (with detail)
 * on another protocol version, a digest that does not match, an unknown
 * type, a wrong header size, a payload length that disagrees with len, or an
 * out-of-range field. m->payload points into buf. */
tcpx_status tcpx_msg_decode(const void *buf, size_t len, tcpx_msg *m);

/* The digest of an encoded message of len >= TCPX_PROTO_HDR_COMMON bytes:
 * CRC-32C of every byte but the digest field. tcpx_msg_seal writes it into
 * the field (encode does; tests and fuzzers that edit an encoded message
 * reseal it to reach the checks behind the digest). */
uint32_t tcpx_msg_digest(const void *buf, size_t len);
void tcpx_msg_seal(void *buf, size_t len);

/* Length of the first message of a frame (control messages travel back to
 * back in one transport message). TCPX_ERR_PROTOCOL when the common header
 * is cut short or announces more bytes than the frame holds. */
tcpx_status tcpx_msg_frame_next(const void *buf, size_t len, size_t *msg_len);

/* Block i of a decoded WRITE or READ_REQ payload (i < payload_len / 32). */
tcpx_wire_block tcpx_msg_block(const tcpx_msg *m, uint32_t i);
/* Encode block b at index i of a payload buffer. */
void tcpx_wire_block_put(uint8_t *payload, uint32_t i, const tcpx_wire_block *b);

/* Static name of a message type for logs ("?" when unknown). */
const char *tcpx_msg_name(uint8_t type);

#endif
