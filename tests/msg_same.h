/* msg_same.h - field-by-field equality of two decoded control messages,
 * for the codec's unit test and fuzz harness. */
#ifndef TCPX_TEST_MSG_SAME_H
#define TCPX_TEST_MSG_SAME_H

#include <string.h>

#include "core/proto.h"

static inline int msg_same(const tcpx_msg *a, const tcpx_msg *b)
{
    if (a->type != b->type || a->payload_len != b->payload_len) return 0;
    if (a->payload_len && memcmp(a->payload, b->payload, a->payload_len) != 0) return 0;
    switch (a->type) {
    case TCPX_MSG_HELLO:
        return a->u.hello.role == b->u.hello.role && a->u.hello.channels == b->u.hello.channels &&
               a->u.hello.token == b->u.hello.token && a->u.hello.nonce == b->u.hello.nonce &&
               strcmp(a->u.hello.name, b->u.hello.name) == 0 && a->u.hello.max_chunk == b->u.hello.max_chunk &&
               a->u.hello.unx_max == b->u.hello.unx_max && a->u.hello.unx_max_bytes == b->u.hello.unx_max_bytes &&
               a->u.hello.flags == b->u.hello.flags;
    case TCPX_MSG_DHELLO:
        return a->u.dhello.token == b->u.dhello.token && a->u.dhello.nonce == b->u.dhello.nonce &&
               a->u.dhello.channel == b->u.dhello.channel;
    case TCPX_MSG_RTS:
        return a->u.rts.send_id == b->u.rts.send_id && a->u.rts.tag == b->u.rts.tag && a->u.rts.size == b->u.rts.size;
    case TCPX_MSG_CTS: return a->u.cts.send_id == b->u.cts.send_id && a->u.cts.recv_id == b->u.cts.recv_id &&
                                     a->u.cts.max_chunk == b->u.cts.max_chunk;
    case TCPX_MSG_DATA:
        return a->u.data.recv_id == b->u.data.recv_id && a->u.data.size == b->u.data.size &&
               a->u.data.chunk == b->u.data.chunk && a->u.data.first_channel == b->u.data.first_channel;
    case TCPX_MSG_ACK: return a->u.ack.id == b->u.ack.id;
    case TCPX_MSG_NACK: return a->u.nack.id == b->u.nack.id && a->u.nack.status == b->u.nack.status;
    case TCPX_MSG_CANCEL: return a->u.cancel.send_id == b->u.cancel.send_id;
    case TCPX_MSG_WRITE:
        return a->u.write.id == b->u.write.id && a->u.write.total == b->u.write.total &&
               a->u.write.nblocks == b->u.write.nblocks && a->u.write.first == b->u.write.first &&
               a->u.write.chunk == b->u.write.chunk && a->u.write.first_channel == b->u.write.first_channel &&
               a->u.write.flags == b->u.write.flags;
    case TCPX_MSG_READ_REQ:
        return a->u.read_req.id == b->u.read_req.id && a->u.read_req.total == b->u.read_req.total &&
               a->u.read_req.nblocks == b->u.read_req.nblocks && a->u.read_req.first == b->u.read_req.first &&
               a->u.read_req.flags == b->u.read_req.flags;
    case TCPX_MSG_READ_DATA:
        return a->u.read_data.id == b->u.read_data.id && a->u.read_data.total == b->u.read_data.total &&
               a->u.read_data.chunk == b->u.read_data.chunk && a->u.read_data.first_channel == b->u.read_data.first_channel &&
               a->u.read_data.flags == b->u.read_data.flags;
    case TCPX_MSG_NOTIF: return a->u.notif.id == b->u.notif.id && a->u.notif.flags == b->u.notif.flags;
    case TCPX_MSG_KEEPALIVE: return a->u.keepalive.flags == b->u.keepalive.flags;
    }
    return 0;
}

#endif
