/* test_match.c - the matching tables (src/core/match.c) against a plain
 * model: random pushes, takes of a tag's oldest entry and removals from the
 * middle, over few tags (long queues) and many (the table grows), with the
 * oldest entry of every tag, the counts and the id lookups checked after
 * each step; then 65,536 distinct tags taken in reverse order. Random from
 * a printed seed (TCPX_TEST_SEED reproduces). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/match.h"
#include "check.h"

typedef struct item {
    uint64_t tag, serial;      /* serial: push order */
    int in;                    /* in the tables (the model) */
    tcpx_qlink ql;
    tcpx_idlink il;
} item;

#define NITEMS 4000

/* The model's oldest entry of tag: the smallest serial among those in. */
static item *model_first(item *v, size_t n, uint64_t tag)
{
    item *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i].in && v[i].tag == tag && (!best || v[i].serial < best->serial)) best = &v[i];
    return best;
}

static size_t g_cleared;

static void clear_one(tcpx_qlink *l, void *arg)
{
    item *x = TCPX_CONTAINER(l, item, ql);
    CHECK(x->in && l->q == NULL, "clear: an entry that is in, out of its queue");
    idmap_remove(arg, &x->il);
    x->in = 0;
    g_cleared++;
}

static void run_model(unsigned ntags, size_t steps)
{
    item *v = calloc(NITEMS, sizeof *v);
    tcpx_tagmap m = {0};
    tcpx_idmap ids = {0};
    uint64_t serial = 0;
    size_t in = 0;
    for (size_t step = 0; step < steps && !failures; step++) {
        item *it = &v[rnd() % NITEMS];
        uint64_t r = rnd() % 3;
        if (!it->in) {
            it->tag = ntags ? rnd() % ntags : rnd();
            it->serial = serial++;
            it->il.id = it->serial * 7 + 1;
            CHECK(tagmap_push(&m, it->tag, &it->ql) == TCPX_OK, "push");
            CHECK(idmap_put(&ids, &it->il) == TCPX_OK, "put");
            it->in = 1;
            in++;
        } else if (r == 0) { /* take the oldest of its tag */
            tcpx_qlink *l = tagmap_first(&m, it->tag);
            item *want = model_first(v, NITEMS, it->tag);
            CHECK(l && TCPX_CONTAINER(l, item, ql) == want, "oldest of tag %" PRIu64, it->tag);
            if (!want) continue;
            tagmap_unlink(&m, &want->ql);
            CHECK(idmap_take(&ids, want->il.id) == &want->il, "id of the oldest");
            want->in = 0;
            in--;
        } else if (r == 1) { /* from the middle, by id */
            CHECK(idmap_take(&ids, it->il.id) == &it->il, "take by id");
            tagmap_unlink(&m, &it->ql);
            tagmap_unlink(&m, &it->ql); /* twice: nothing */
            it->in = 0;
            in--;
        } else { /* from the middle, by link */
            idmap_remove(&ids, &it->il);
            tagmap_unlink(&m, &it->ql);
            it->in = 0;
            in--;
        }
        CHECK(m.n == in && ids.n == in, "counts %zu %zu, model %zu", m.n, ids.n, in);
        if (step % 97 == 0) {
            uint64_t tag = ntags ? rnd() % ntags : it->tag;
            tcpx_qlink *l = tagmap_first(&m, tag);
            CHECK((l ? TCPX_CONTAINER(l, item, ql) : NULL) == model_first(v, NITEMS, tag), "probe tag %" PRIu64,
                  tag);
            CHECK(idmap_take(&ids, UINT64_MAX - 2) == NULL, "absent id");
        }
    }
    /* empty it in one pass: every entry that is in, once */
    g_cleared = 0;
    tagmap_clear(&m, clear_one, &ids);
    CHECK(g_cleared == in, "cleared %zu of %zu", g_cleared, in);
    for (size_t i = 0; i < NITEMS; i++) CHECK(!v[i].in, "item %zu left", i);
    CHECK(m.n == 0 && m.nq == 0 && m.nb == 0 && ids.n == 0, "empty: table %zu/%zu, ids %zu", m.n, m.nq, ids.n);
    tagmap_free(&m);
    idmap_free(&ids);
    free(v);
}

/* 65,536 distinct tags pushed in order, taken newest tag first. */
static void run_reverse(void)
{
    enum { N = 65536 };
    item *v = calloc(N, sizeof *v);
    tcpx_tagmap m = {0};
    for (size_t i = 0; i < N; i++) {
        v[i].tag = 1000 + i;
        CHECK(tagmap_push(&m, v[i].tag, &v[i].ql) == TCPX_OK, "push %zu", i);
    }
    CHECK(m.nq == N && m.nb >= N, "%zu queues in %zu buckets", m.nq, m.nb);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = N; i-- > 0;) {
        tcpx_qlink *l = tagmap_first(&m, 1000 + i);
        CHECK(l == &v[i].ql, "tag %zu", 1000 + i);
        if (l) tagmap_unlink(&m, l);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test_match: %d tags taken in reverse order in %.1f ms\n", N,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    CHECK(m.n == 0 && m.nq == 0, "left %zu", m.n);
    /* again, emptied in one pass (a peer failing while it holds them) */
    tcpx_idmap ids = {0};
    for (size_t i = 0; i < N; i++) {
        v[i].in = 1;
        v[i].il.id = i;
        CHECK(tagmap_push(&m, v[i].tag, &v[i].ql) == TCPX_OK && idmap_put(&ids, &v[i].il) == TCPX_OK, "push %zu", i);
    }
    g_cleared = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tagmap_clear(&m, clear_one, &ids);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test_match: %d tags cleared in %.1f ms\n", N,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    CHECK(g_cleared == N && ids.n == 0, "cleared %zu, ids left %zu", g_cleared, ids.n);
    idmap_free(&ids);
    free(v);
}

int main(void)
{
    uint64_t seed = check_seed("test_match");
    run_model(3, 40000);    /* long queues */
    run_model(200, 40000);
    run_model(0, 40000);    /* every tag its own queue: the table grows */
    run_reverse();
    return check_done("test_match", seed);
}
