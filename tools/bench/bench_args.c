/* bench_args.c - tcpx-bench command line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [options]\n"
            "Starts a receiver and a sender process on loopback, moves random data of each size\n"
            "through tcpx (transport \"socket\", 127.0.0.1), verifies it, and prints GB/s, us/msg\n"
            "and CPU use beside the raw TCP throughput of the same number of streams.\n"
            "\n"
            "  --sizes LIST       message sizes, K/M/G suffixes (powers of 1024)  [4K,64K,1M,16M,64M]\n"
            "                     (with --blocks N: the size of each block)\n"
            "  --op OP            send (two-sided), write or read (one-sided lists) [send]\n"
            "  --blocks N         write/read: each message is a list of N blocks at scattered\n"
            "                     offsets on both sides, 1..%d                     [1]\n"
            "  --channels N       data streams per direction, 1..%d               [4]\n"
            "  --iters N|auto     timed messages per size; auto fills --time      [auto]\n"
            "  --inflight K       messages in flight (one buffer slot each)        [4]\n"
            "  --chunk BYTES      chunk size the library splits messages into     [library default]\n"
            "  --time SECONDS     timed duration per size with --iters auto        [2]\n"
            "  --ceiling-time S   duration of the raw TCP measurement              [2]\n"
            "  --no-ceiling       skip the raw TCP measurement\n"
            "  --ceiling-ws BYTES buffer memory the raw TCP streams walk through\n"
            "                     [inflight x largest size, capped by --max-mem]\n"
            "  --mem KIND[,KIND]  memory of the buffers, a table per kind: %s    [host]\n"
            "  --gpu              same as --mem cuda,host (GPU table, host table beside it)\n"
            "  --send-gpu N       sender's CUDA device                             [0]\n"
            "  --recv-gpu N       receiver's CUDA device                   [1 if present, else 0]\n"
            "  --seed N           random data seed                                 [time]\n"
            "  --max-mem BYTES    cap on inflight x size per process (K shrinks)   [1G]\n"
            "  --no-crc           check each message's stamps only (default: also the CRC-32C\n"
            "                     of all its bytes, host memory)\n"
            "  --flip-bit-at N    test the checker: flip one bit in the middle of message N\n"
            "                     (host memory, --op send|write); the run must fail\n"
            "  --csv              machine-readable output\n"
            "  --json FILE        also write every row (and the ceiling) to FILE as JSON;\n"
            "                     tools/bench/plot.py turns it into a PNG plot\n"
            "  -h, --help         this text\n"
            "\n"
            "TCPX_* environment variables override the session config as usual.\n"
            "Exit status: 0 only if every transfer succeeded and every check passed.\n",
            argv0, TCPX_LIST_MAX_BLOCKS, TCPX_MAX_CHANNELS, bench_mem_kinds());
}

size_t bench_parse_size(const char *s)
{
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0) || !isfinite(v)) return 0;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B' || *end == 'b') { /* accept KiB / KB */
        if (*end == 'i') end++;
        if (*end == 'B' || *end == 'b') end++;
    }
    if (*end) return 0;
    double bytes = v * mult;
    if (bytes < 1 || bytes > (double)(1ull << 40) || bytes != floor(bytes)) return 0;
    return (size_t)bytes;
}

const char *bench_fmt_size(size_t n, char *buf, size_t cap)
{
    /* The largest unit that shows n exactly with at most two decimals:
     * 4K, 64M, 1.5M, 1.25G; otherwise plain bytes. */
    static const char *suffix[] = {"T", "G", "M", "K"};
    for (int i = 0; i < 4; i++) {
        unsigned long long unit = 1ull << (10 * (4 - i));
        if (n >= unit && ((unsigned long long)n * 100) % unit == 0) {
            snprintf(buf, cap, "%g%s", (double)n / (double)unit, suffix[i]);
            return buf;
        }
    }
    snprintf(buf, cap, "%zu", n);
    return buf;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 3600) return -1;
    *out = v;
    return 0;
}

static int parse_sizes(const char *list, bench_opts *o)
{
    char tmp[1024];
    if (strlen(list) >= sizeof tmp) return -1;
    strcpy(tmp, list);
    o->nsizes = 0;
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t v = bench_parse_size(tok);
        if (!v || o->nsizes == BENCH_MAX_SIZES) return -1;
        o->sizes[o->nsizes++] = v;
    }
    return o->nsizes ? 0 : -1;
}

/* "host,cuda": one table per kind, in that order. The strings are static. */
static int parse_mems(const char *list, bench_opts *o)
{
    int n = 0;
    const char *names[BENCH_MAX_MEMS];
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        const bench_mem_ops *m = NULL;
        char name[32];
        if (len && len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            m = bench_mem_find(name);
        }
        if (!m || n == BENCH_MAX_MEMS) return -1;
        names[n++] = m->name;
        p += len + (p[len] == ',');
    }
    if (!n) return -1;
    memcpy(o->mems, names, sizeof names);
    o->nmems = n;
    return 0;
}

int bench_parse_args(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    parse_sizes("4K,64K,1M,16M,64M", o);
    o->channels = 4;
    o->iters = 0;
    o->inflight = 4;
    o->seconds = 2;
    o->ceiling_seconds = 2;
    o->ceiling = 1;
    o->mems[0] = "host";
    o->nmems = 1;
    o->send_gpu = 0;
    o->recv_gpu = -1;
    o->max_slot_bytes = 1ull << 30;
    o->op = BENCH_OP_SEND;
    o->blocks = 1;
    o->crc = 1;
    o->flip_at = -1;

    enum { O_SIZES = 256, O_CHANNELS, O_ITERS, O_INFLIGHT, O_CHUNK, O_TIME, O_CTIME, O_NOCEIL, O_MEM, O_SEED,
           O_MAXMEM, O_CSV, O_GPU, O_SENDGPU, O_RECVGPU, O_CEILWS, O_OP, O_BLOCKS, O_JSON, O_NOCRC, O_FLIP };
    static const struct option longopts[] = {
        {"sizes", required_argument, 0, O_SIZES},       {"channels", required_argument, 0, O_CHANNELS},
        {"iters", required_argument, 0, O_ITERS},       {"inflight", required_argument, 0, O_INFLIGHT},
        {"chunk", required_argument, 0, O_CHUNK},       {"time", required_argument, 0, O_TIME},
        {"ceiling-time", required_argument, 0, O_CTIME}, {"no-ceiling", no_argument, 0, O_NOCEIL},
        {"mem", required_argument, 0, O_MEM},           {"seed", required_argument, 0, O_SEED},
        {"max-mem", required_argument, 0, O_MAXMEM},    {"csv", no_argument, 0, O_CSV},
        {"gpu", no_argument, 0, O_GPU},                 {"send-gpu", required_argument, 0, O_SENDGPU},
        {"recv-gpu", required_argument, 0, O_RECVGPU},  {"ceiling-ws", required_argument, 0, O_CEILWS},
        {"op", required_argument, 0, O_OP},             {"blocks", required_argument, 0, O_BLOCKS},
        {"json", required_argument, 0, O_JSON},         {"no-crc", no_argument, 0, O_NOCRC},
        {"flip-bit-at", required_argument, 0, O_FLIP},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *argv0 = argv[0];
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_SIZES:
            if (parse_sizes(optarg, o)) bad = "--sizes wants a comma-separated list like 4K,64K,1M";
            break;
        case O_CHANNELS:
            if (parse_long(optarg, 1, TCPX_MAX_CHANNELS, &v)) bad = "--channels wants 1..64";
            else o->channels = (int)v;
            break;
        case O_ITERS:
            if (!strcmp(optarg, "auto")) o->iters = 0;
            else if (parse_long(optarg, 1, 1000000000L, &v)) bad = "--iters wants a positive count or auto";
            else o->iters = v;
            break;
        case O_INFLIGHT:
            if (parse_long(optarg, 1, 1024, &v)) bad = "--inflight wants 1..1024";
            else o->inflight = (int)v;
            break;
        case O_CHUNK:
            if (!(o->chunk = bench_parse_size(optarg))) bad = "--chunk wants a size like 512K";
            break;
        case O_TIME:
            if (parse_seconds(optarg, &o->seconds)) bad = "--time wants seconds (0 < s <= 3600)";
            break;
        case O_CTIME:
            if (parse_seconds(optarg, &o->ceiling_seconds)) bad = "--ceiling-time wants seconds";
            break;
        case O_NOCEIL: o->ceiling = 0; break;
        case O_MEM:
            if (parse_mems(optarg, o)) bad = "--mem: unknown memory kind";
            break;
        case O_GPU: parse_mems("cuda,host", o); break;
        case O_CEILWS:
            if (!(o->ceiling_ws = bench_parse_size(optarg))) bad = "--ceiling-ws wants a size like 1M";
            break;
        case O_SENDGPU:
            if (parse_long(optarg, 0, 1023, &v)) bad = "--send-gpu wants a device number";
            else o->send_gpu = (int)v;
            break;
        case O_RECVGPU:
            if (parse_long(optarg, 0, 1023, &v)) bad = "--recv-gpu wants a device number";
            else o->recv_gpu = (int)v;
            break;
        case O_SEED:
            if (parse_long(optarg, 0, 0x7FFFFFFFFFFFFFFFL, &v)) bad = "--seed wants a non-negative integer";
            else {
                o->seed = (uint64_t)v;
                o->seed_given = 1;
            }
            break;
        case O_MAXMEM:
            if (!(o->max_slot_bytes = bench_parse_size(optarg))) bad = "--max-mem wants a size like 512M";
            break;
        case O_CSV: o->csv = 1; break;
        case O_JSON: o->json = optarg; break;
        case O_NOCRC: o->crc = 0; break;
        case O_FLIP:
            if (parse_long(optarg, 0, 1L << 40, &v)) bad = "--flip-bit-at wants a message number";
            else o->flip_at = v;
            break;
        case O_OP:
            if (!strcmp(optarg, "send")) o->op = BENCH_OP_SEND;
            else if (!strcmp(optarg, "write")) o->op = BENCH_OP_WRITE;
            else if (!strcmp(optarg, "read")) o->op = BENCH_OP_READ;
            else bad = "--op wants send, write or read";
            break;
        case O_BLOCKS:
            if (parse_long(optarg, 1, TCPX_LIST_MAX_BLOCKS, &v)) bad = "--blocks wants 1..1048576";
            else o->blocks = (int)v;
            break;
        case 'h': usage(stdout, argv0); return 1;
        default: bad = "unknown option or missing value"; break;
        }
        if (bad) {
            fprintf(stderr, "tcpx-bench: %s (%s)\n\n", bad, argv[optind - 1] ? argv[optind - 1] : "?");
            usage(stderr, argv0);
            return -1;
        }
    }
    if (o->blocks > 1 && o->op == BENCH_OP_SEND) {
        fprintf(stderr, "tcpx-bench: --blocks needs --op write or read\n\n");
        usage(stderr, argv0);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "tcpx-bench: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr, argv0);
        return -1;
    }
    return 0;
}
