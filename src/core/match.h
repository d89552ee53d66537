/* match.h - the tables two-sided matching looks things up in, O(1) each:
 * FIFO queues keyed by tag (a peer's posted receives, its unexpected sends:
 * the oldest entry of a tag is found at once whatever the order of tags),
 * and a table keyed by id (unexpected sends by send id, for CANCEL).
 * Entries are intrusive links embedded in the caller's structs; the tables
 * own only their own buckets and queues. Every lookup and removal costs the
 * length of one bucket chain of distinct keys, and the tables grow to keep
 * those short.
 */
#ifndef TCPX_MATCH_H
#define TCPX_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"

struct tcpx_tagq;

typedef struct tcpx_qlink {        /* an entry of a tag's queue */
    struct tcpx_qlink *prev, *next;
    struct tcpx_tagq *q;           /* the queue it is in, NULL when in none */
} tcpx_qlink;

typedef struct tcpx_tagq {         /* the entries of one tag, oldest first */
    uint64_t tag;
    tcpx_qlink *head, *tail;
    struct tcpx_tagq *next;        /* bucket chain */
} tcpx_tagq;

/* A queue on its own (not in a map): append, and take out (nothing when l
 * is in no queue). */
void tagq_push(tcpx_tagq *q, tcpx_qlink *l);
void tagq_unlink(tcpx_qlink *l);

typedef struct tcpx_tagmap {
    tcpx_tagq **b;
    size_t nb;                     /* buckets, a power of two (0 until the first push) */
    size_t nq;                     /* tags with a queue */
    size_t n;                      /* entries */
} tcpx_tagmap;

/* Append l to the queue of tag. TCPX_ERR_NOMEM when a new tag's queue
 * cannot be made (l is then in none). */
tcpx_status tagmap_push(tcpx_tagmap *m, uint64_t tag, tcpx_qlink *l);
/* The oldest entry of tag, or NULL. */
tcpx_qlink *tagmap_first(const tcpx_tagmap *m, uint64_t tag);
/* Take l out of its queue; nothing when it is in none. */
void tagmap_unlink(tcpx_tagmap *m, tcpx_qlink *l);
/* Empty the table in one pass: fn(l, arg) for every entry (taken out of
 * its queue first; fn may free it), then tagmap_free. */
void tagmap_clear(tcpx_tagmap *m, void (*fn)(tcpx_qlink *l, void *arg), void *arg);
/* Free the buckets and queues (the entries are the caller's). */
void tagmap_free(tcpx_tagmap *m);

typedef struct tcpx_idlink {
    uint64_t id;
    struct tcpx_idlink *next;
} tcpx_idlink;

typedef struct tcpx_idmap {
    tcpx_idlink **b;
    size_t nb, n;
} tcpx_idmap;

/* Add l under l->id. TCPX_ERR_NOMEM when the first buckets cannot be made. */
tcpx_status idmap_put(tcpx_idmap *m, tcpx_idlink *l);
/* Remove and return an entry of id, or NULL. */
tcpx_idlink *idmap_take(tcpx_idmap *m, uint64_t id);
/* Remove l (nothing when absent). */
void idmap_remove(tcpx_idmap *m, tcpx_idlink *l);
void idmap_free(tcpx_idmap *m);

#define TCPX_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
