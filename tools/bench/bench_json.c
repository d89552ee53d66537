/* bench_json.c - --json FILE: every row of every table, and the ceiling. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

struct bench_json {
    FILE *f;
    int rows;
};

bench_json *bench_json_open(const char *path)
{
    bench_json *j = calloc(1, sizeof *j);
    if (!j || !(j->f = fopen(path, "w"))) bench_die("--json: cannot write %s", path);
    fprintf(j->f, "{\n  \"rows\": [");
    return j;
}

void bench_json_row(bench_json *j, const char *mem, const char *op, int blocks, const bench_result *r,
                    double ceiling)
{
    fprintf(j->f,
            "%s\n    {\"mem\": \"%s\", \"op\": \"%s\", \"blocks\": %d, \"size\": %zu, \"inflight\": %d, "
            "\"msgs\": %ld, \"seconds\": %.6f, \"gbps\": %.6f, \"us_per_msg\": %.3f, \"p50_us\": %.3f, "
            "\"p99_us\": %.3f, \"pct_ceiling\": ",
            j->rows++ ? "," : "", mem, op, blocks, r->size, r->slots, r->msgs, r->seconds, r->gbps, r->us_per_msg,
            r->p50_us, r->p99_us);
    if (ceiling > 0) fprintf(j->f, "%.3f", r->gbps / ceiling * 100);
    else fprintf(j->f, "null");
    fprintf(j->f, ", \"cpu_send\": %.1f, \"cpu_recv\": %.1f, \"errors\": %llu}", r->cpu_send, r->cpu_recv,
            (unsigned long long)r->errors);
    fflush(j->f);
}

static void num_or_null(FILE *f, double v)
{
    if (v > 0) fprintf(f, "%.6f", v);
    else fprintf(f, "null");
}

void bench_json_close(bench_json *j, uint64_t seed, int channels, double ceiling, double hot, int streams, size_t ws)
{
    fprintf(j->f, "\n  ],\n  \"seed\": %llu,\n  \"channels\": %d,\n  \"ceiling_gbps\": ",
            (unsigned long long)seed, channels);
    num_or_null(j->f, ceiling);
    fprintf(j->f, ",\n  \"ceiling_hot_gbps\": ");
    num_or_null(j->f, hot);
    fprintf(j->f, ",\n  \"ceiling_streams\": %d,\n  \"ceiling_working_set\": %zu\n}\n", streams, ws);
    if (fclose(j->f)) bench_die("--json: write failed");
    free(j);
}
