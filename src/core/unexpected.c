/* unexpected.c - the receiver's store of the peer's sends that no receive
 * matched yet: each RTS held (with its bytes when inline) by tag, in
 * arrival order, and by send id (for a CANCEL), within the credit our HELLO
 * granted the peer.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/error.h"

/* u out of both indexes and the counts; u itself for the caller. */
static tcpx_unexpected *take(tcpx_peer *p, tcpx_unexpected *u)
{
    tagmap_unlink(&p->unx, &u->ql);
    idmap_remove(&p->unx_ids, &u->il);
    p->unx_count--;
    p->unx_bytes -= u->is_inline ? u->size : 0;
    return u;
}

void unexpected_free(tcpx_unexpected *u)
{
    free(u->data);
    free(u);
}

tcpx_status unexpected_add(tcpx_peer *p, const tcpx_msg *m, int is_inline)
{
    uint64_t size = m->u.rts.size;
    /* We granted the peer this much in our HELLO; its RTS count against it
     * until we answer them, so an honest peer never gets here. */
    const tcpx_config *c = &p->s->cfg;
    if (p->unx_count >= (size_t)c->unexpected_max || p->unx_bytes + (is_inline ? size : 0) > c->unexpected_max_bytes)
        return tcpx_set_error(TCPX_ERR_PROTOCOL,
                              "%s sent more unmatched sends than its credit (%d sends, %zu inline bytes) allows",
                              p->name, c->unexpected_max, c->unexpected_max_bytes);
    tcpx_unexpected *u = calloc(1, sizeof *u);
    if (u && is_inline && size) u->data = malloc(size);
    if (!u || (is_inline && size && !u->data)) {
        free(u);
        return tcpx_set_error(TCPX_ERR_NOMEM, "cannot hold an unexpected send");
    }
    u->il.id = m->u.rts.send_id;
    u->tag = m->u.rts.tag;
    u->size = size;
    u->is_inline = is_inline;
    if (is_inline && size) memcpy(u->data, m->payload, size);
    tcpx_status st = tagmap_push(&p->unx, u->tag, &u->ql);
    if (!st && (st = idmap_put(&p->unx_ids, &u->il))) tagmap_unlink(&p->unx, &u->ql);
    if (st) {
        unexpected_free(u);
        return st;
    }
    p->unx_count++;
    p->unx_bytes += is_inline ? size : 0;
    return TCPX_OK;
}

tcpx_unexpected *unexpected_take_tag(tcpx_peer *p, uint64_t tag)
{
    tcpx_qlink *l = tagmap_first(&p->unx, tag);
    return l ? take(p, TCPX_CONTAINER(l, tcpx_unexpected, ql)) : NULL;
}

tcpx_unexpected *unexpected_take_id(tcpx_peer *p, uint64_t send_id)
{
    tcpx_idlink *l = idmap_take(&p->unx_ids, send_id);
    return l ? take(p, TCPX_CONTAINER(l, tcpx_unexpected, il)) : NULL;
}

static void free_one(tcpx_qlink *l, void *arg)
{
    (void)arg;
    unexpected_free(TCPX_CONTAINER(l, tcpx_unexpected, ql));
}

void unexpected_free_all(tcpx_peer *p)
{
    idmap_free(&p->unx_ids); /* its links live in the entries freed next */
    tagmap_clear(&p->unx, free_one, NULL);
    p->unx_bytes = p->unx_count = 0;
}
