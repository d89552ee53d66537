/* match.c - tag queues and id tables for two-sided matching (match.h). */
#include <stdlib.h>

#include "core/match.h"
#include "util/error.h"

#define FIRST_BUCKETS 64

static size_t slot_of(uint64_t key, size_t nb)
{
    /* splitmix64's finaliser: tags and ids that differ in any bit spread */
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebull;
    key ^= key >> 31;
    return (size_t)key & (nb - 1);
}

/* ------------------------------------------------------------ tag queues */

void tagq_push(tcpx_tagq *q, tcpx_qlink *l)
{
    l->q = q;
    l->next = NULL;
    l->prev = q->tail;
    if (q->tail) q->tail->next = l;
    else q->head = l;
    q->tail = l;
}

void tagq_unlink(tcpx_qlink *l)
{
    tcpx_tagq *q = l->q;
    if (!q) return;
    if (l->prev) l->prev->next = l->next;
    else q->head = l->next;
    if (l->next) l->next->prev = l->prev;
    else q->tail = l->prev;
    l->prev = l->next = NULL;
    l->q = NULL;
}

static tcpx_tagq *queue_find(const tcpx_tagmap *m, uint64_t tag)
{
    if (!m->nb) return NULL;
    for (tcpx_tagq *q = m->b[slot_of(tag, m->nb)]; q; q = q->next)
        if (q->tag == tag) return q;
    return NULL;
}

/* Twice the buckets when there are more tags than buckets; staying as we
 * are when memory is short only makes chains longer. */
static void tagmap_grow(tcpx_tagmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : FIRST_BUCKETS;
    tcpx_tagq **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < m->nb; i++)
        while (m->b[i]) {
            tcpx_tagq *q = m->b[i];
            m->b[i] = q->next;
            size_t k = slot_of(q->tag, nb);
            q->next = b[k];
            b[k] = q;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

tcpx_status tagmap_push(tcpx_tagmap *m, uint64_t tag, tcpx_qlink *l)
{
    l->prev = l->next = NULL;
    l->q = NULL;
    tcpx_tagq *q = queue_find(m, tag);
    if (!q) {
        if (m->nq >= m->nb) tagmap_grow(m);
        if (!m->nb) return tcpx_set_error(TCPX_ERR_NOMEM, "cannot grow a matching table");
        q = calloc(1, sizeof *q);
        if (!q) return tcpx_set_error(TCPX_ERR_NOMEM, "cannot queue tag %llu", (unsigned long long)tag);
        q->tag = tag;
        size_t k = slot_of(tag, m->nb);
        q->next = m->b[k];
        m->b[k] = q;
        m->nq++;
    }
    tagq_push(q, l);
    m->n++;
    return TCPX_OK;
}

tcpx_qlink *tagmap_first(const tcpx_tagmap *m, uint64_t tag)
{
    tcpx_tagq *q = queue_find(m, tag);
    return q ? q->head : NULL;
}

void tagmap_unlink(tcpx_tagmap *m, tcpx_qlink *l)
{
    tcpx_tagq *q = l->q;
    if (!q) return;
    tagq_unlink(l);
    m->n--;
    if (q->head) return;
    /* the tag's last entry: its queue goes */
    for (tcpx_tagq **link = &m->b[slot_of(q->tag, m->nb)]; *link; link = &(*link)->next)
        if (*link == q) {
            *link = q->next;
            break;
        }
    m->nq--;
    free(q);
}

void tagmap_clear(tcpx_tagmap *m, void (*fn)(tcpx_qlink *l, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nb; i++)
        for (tcpx_tagq *q = m->b[i]; q; q = q->next)
            while (q->head) {
                tcpx_qlink *l = q->head;
                tagq_unlink(l);
                m->n--;
                fn(l, arg);
            }
    tagmap_free(m);
}

void tagmap_free(tcpx_tagmap *m)
{
    for (size_t i = 0; i < m->nb; i++)
        while (m->b[i]) {
            tcpx_tagq *q = m->b[i];
            m->b[i] = q->next;
            for (tcpx_qlink *l = q->head; l; l = l->next) l->q = NULL;
            free(q);
        }
    free(m->b);
    m->b = NULL;
    m->nb = m->nq = m->n = 0;
}

/* ------------------------------------------------------------ ids */

static void idmap_grow(tcpx_idmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : FIRST_BUCKETS;
    tcpx_idlink **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < m->nb; i++)
        while (m->b[i]) {
            tcpx_idlink *l = m->b[i];
            m->b[i] = l->next;
            size_t k = slot_of(l->id, nb);
            l->next = b[k];
            b[k] = l;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

tcpx_status idmap_put(tcpx_idmap *m, tcpx_idlink *l)
{
    if (m->n >= m->nb) idmap_grow(m);
    if (!m->nb) return tcpx_set_error(TCPX_ERR_NOMEM, "cannot grow an id table");
    size_t k = slot_of(l->id, m->nb);
    l->next = m->b[k];
    m->b[k] = l;
    m->n++;
    return TCPX_OK;
}

tcpx_idlink *idmap_take(tcpx_idmap *m, uint64_t id)
{
    if (!m->nb) return NULL;
    for (tcpx_idlink **link = &m->b[slot_of(id, m->nb)]; *link; link = &(*link)->next)
        if ((*link)->id == id) {
            tcpx_idlink *l = *link;
            *link = l->next;
            l->next = NULL;
            m->n--;
            return l;
        }
    return NULL;
}

void idmap_remove(tcpx_idmap *m, tcpx_idlink *l)
{
    if (!m->nb) return;
    for (tcpx_idlink **link = &m->b[slot_of(l->id, m->nb)]; *link; link = &(*link)->next)
        if (*link == l) {
            *link = l->next;
            l->next = NULL;
            m->n--;
            return;
        }
}

void idmap_free(tcpx_idmap *m)
{
    free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}
