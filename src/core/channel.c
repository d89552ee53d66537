/* channel.c - one data comm: chunks queued in control-message order, posted
 * while the sliding window has room, retired strictly in posting order.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"

#define CHAN_INITIAL_CAP 64

tcpx_status chan_init(tcpx_chan *c, void *comm)
{
    memset(c, 0, sizeof *c);
    c->comm = comm;
    c->ring = calloc(CHAN_INITIAL_CAP, sizeof *c->ring);
    if (!c->ring) return tcpx_set_error(TCPX_ERR_NOMEM, "channel ring allocation failed");
    c->cap = CHAN_INITIAL_CAP;
    return TCPX_OK;
}

void chan_free(tcpx_chan *c)
{
    free(c->ring);
    memset(c, 0, sizeof *c);
}

tcpx_status chan_push(tcpx_chan *c, tcpx_op *op, size_t off, size_t len)
{
    if (c->tail - c->head == c->cap) {
        size_t ncap = c->cap * 2;
        tcpx_chunk *r = calloc(ncap, sizeof *r);
        if (!r) return tcpx_set_error(TCPX_ERR_NOMEM, "channel ring growth failed");
        for (size_t i = c->head; i < c->tail; i++) r[i % ncap] = c->ring[i % c->cap];
        free(c->ring);
        c->ring = r;
        c->cap = ncap;
    }
    tcpx_chunk *ch = &c->ring[c->tail % c->cap];
    ch->op = op;
    ch->off = off;
    ch->len = len;
    ch->req = NULL;
    ch->done = 0;
    c->tail++;
    return TCPX_OK;
}

void enqueue_chunks(tcpx_peer *p, tcpx_op *op, tcpx_chan *chans, int nchans, size_t chunk, uint16_t first)
{
    size_t n = (op->size + chunk - 1) / chunk;
    op->nchunks = n;
    op->chunks_done = 0;
    for (size_t k = 0; k < n; k++) {
        size_t off = k * chunk;
        size_t len = op->size - off < chunk ? op->size - off : chunk;
        if (chan_push(&chans[(first + k) % (size_t)nchans], op, off, len)) {
            peer_fail(p, TCPX_ERR_NOMEM, "cannot queue chunks");
            return;
        }
    }
}

/* Returns non-zero when the peer failed. */
tcpx_status chan_progress(tcpx_peer *p, tcpx_chan *c, int is_send)
{
    tcpx_session *s = p->s;
    tcpx_net *n = s->net;
    for (size_t i = c->head; i < c->posted; i++) {
        tcpx_chunk *ch = &c->ring[i % c->cap];
        if (ch->done) continue;
        int done = 0;
        size_t size = 0;
        if (n->test(n, ch->req, &done, &size)) {
            ch->req = NULL;
            peer_fail(p, TCPX_ERR_PEER, "data stream: %s", tcpx_last_error());
            return TCPX_ERR_PEER;
        }
        if (!done) break; /* requests of one comm complete in order */
        ch->done = 1;
        if (!is_send && size != ch->len) {
            peer_fail(p, TCPX_ERR_PROTOCOL, "data stream: chunk of %zu bytes where %zu were announced", size,
                      ch->len);
            return TCPX_ERR_PROTOCOL;
        }
    }
    while (c->head < c->posted && c->ring[c->head % c->cap].done) {
        tcpx_chunk *ch = &c->ring[c->head % c->cap];
        if (!is_send && n->irecv_consumed(n, c->comm, ch->req)) {
            peer_fail(p, TCPX_ERR_TRANSPORT, "data stream: %s", tcpx_last_error());
            return TCPX_ERR_TRANSPORT;
        }
        c->head++;
        op_chunk_done(ch->op);
    }
    while (c->posted < c->tail && c->posted - c->head < (size_t)s->window) {
        tcpx_chunk *ch = &c->ring[c->posted % c->cap];
        tcpx_status st = TCPX_OK;
        void *mh = mem_mr(s, ch->op->r, c->comm, &st);
        int rc = st;
        if (!rc)
            rc = is_send ? n->isend(n, c->comm, ch->op->ptr + ch->off, ch->len, 0, mh, &ch->req)
                         : n->irecv(n, c->comm, ch->op->ptr + ch->off, ch->len, 0, mh, &ch->req);
        if (rc) {
            peer_fail(p, (tcpx_status)rc, "data stream: %s", tcpx_last_error());
            return (tcpx_status)rc;
        }
        if (!ch->req) break;
        c->posted++;
    }
    return TCPX_OK;
}
