/* bench_lat.c - per-message latency samples and their percentiles. */
#include <stdlib.h>

#include "bench.h"

void bench_lat_init(bench_lat *l, int slots)
{
    l->t_post = calloc((size_t)slots, sizeof *l->t_post);
    l->cap = 4096;
    l->v = malloc((size_t)l->cap * sizeof *l->v);
    l->n = 0;
    l->on = 0;
    if (!l->t_post || !l->v) bench_die("out of memory");
}

void bench_lat_posted(bench_lat *l, int slot)
{
    if (l->on) l->t_post[slot] = bench_now();
}

void bench_lat_done(bench_lat *l, int slot)
{
    if (!l->on) return;
    double d = bench_now() - l->t_post[slot];
    if (l->n == l->cap) {
        if (l->cap >= BENCH_LAT_MAX) return; /* enough samples */
        double *v = realloc(l->v, (size_t)l->cap * 2 * sizeof *v);
        if (!v) return;
        l->v = v;
        l->cap *= 2;
    }
    l->v[l->n++] = d;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_lat_pct(bench_lat *l, double q)
{
    if (!l->n) return 0;
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp); /* sorted once: later calls are quick */
    long i = (long)(q / 100.0 * (double)(l->n - 1) + 0.5);
    if (i < 0) i = 0;
    if (i >= l->n) i = l->n - 1;
    return l->v[i] * 1e6;
}

void bench_lat_free(bench_lat *l)
{
    free(l->t_post);
    free(l->v);
    l->t_post = l->v = NULL;
}
