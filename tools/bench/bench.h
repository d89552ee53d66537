/* bench.h - tcpx-bench, the performance test of tcpx-p2p.
 *
 * One command starts a receiver and a sender as two processes on loopback
 * (fork + a socketpair for bootstrap), measures the raw TCP throughput of
 * `channels` streams between them as the ceiling, then for each size moves
 * random data through the public tcpx API with K messages in flight, checks
 * an iteration stamp in every message and every byte of a final untimed
 * round, and prints a table of GB/s, µs per message and CPU use.
 *
 *   bench_args.c     command line
 *   bench_util.c     bootstrap framing, time, CPU, seekable random data, errors
 *   bench_lat.c      per-message latency samples, percentiles
 *   bench_json.c     --json FILE: every row of every table
 *   bench_mem.c      memory kinds: host, cuda
 *   bench_ceiling.c  raw TCP ceiling
 *   bench_xfer.c     the per-size loops of two-sided sends (--op send)
 *   bench_onesided.c the per-size loops of one-sided lists (--op write|read)
 *   bench_main.c     processes, sessions, the report
 */
#ifndef TCPX_BENCH_H
#define TCPX_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "tcpx_p2p.h"

#define BENCH_MAX_SIZES 64
#define BENCH_MAX_MEMS 4
#define BENCH_IO_TIMEOUT_MS 120000   /* bound on every bootstrap read and transfer wait */

/* ------------------------------------------------------------- options */

enum bench_op { BENCH_OP_SEND = 0, BENCH_OP_WRITE, BENCH_OP_READ };

typedef struct bench_opts {
    size_t sizes[BENCH_MAX_SIZES];
    int nsizes;
    int channels;
    long iters;            /* timed messages per size; 0 = auto (fill `seconds`) */
    int inflight;          /* messages in flight (slots) */
    size_t chunk;          /* 0 = library default */
    double seconds;        /* timed duration per size when iters is auto */
    double ceiling_seconds;
    int ceiling;           /* measure raw TCP */
    int csv;
    const char *mems[BENCH_MAX_MEMS];   /* memory kinds, one table each (bench_mem.c) */
    int nmems;
    int send_gpu, recv_gpu;   /* CUDA devices of the two sides; recv -1 = auto (1 if present, else 0) */
    uint64_t seed;
    int seed_given;
    size_t max_slot_bytes; /* cap on inflight * size per process */
    size_t ceiling_ws;     /* ceiling working set; 0 = as the benchmark's buffers */
    int op;                /* enum bench_op */
    int blocks;            /* write/read: blocks per message (a list), each of the row's size */
    const char *json;      /* --json FILE, or NULL */
    int crc;               /* CRC-32C of every message of host memory (default; --no-crc: stamps only) */
    long flip_at;          /* --flip-bit-at N: the sender flips one bit in the middle of timed message N
                              (host memory, send and write; proves the check), -1 = never */
} bench_opts;

/* Parse argv into o. Prints usage and returns -1 on a bad argument, 1 after
 * --help, 0 otherwise. */
int bench_parse_args(int argc, char **argv, bench_opts *o);

/* "4K" "64K" "1M" "1.5M" "3G" "123" -> bytes; 0 on error. */
size_t bench_parse_size(const char *s);

/* Human size: 4K, 64K, 1M, 1.5M ... into buf. */
const char *bench_fmt_size(size_t n, char *buf, size_t cap);

/* ------------------------------------------------------------- util */

extern const char *bench_role;   /* "send" / "recv", for messages */

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Die with the tcpx status and tcpx_last_error() when st != TCPX_OK. */
void bench_check(tcpx_status st, const char *what);

double bench_now(void);     /* monotonic seconds */
double bench_cpu(void);     /* user + system seconds of this process (all threads) */

/* Bootstrap framing over the socketpair: u32 length + bytes. Every read is
 * bounded by BENCH_IO_TIMEOUT_MS; EOF or timeout is fatal. */
void boot_send(int fd, const void *p, uint32_t len);
uint32_t boot_recv(int fd, void *p, uint32_t cap);
void boot_send_u64(int fd, uint64_t v);
uint64_t boot_recv_u64(int fd);
void boot_send_f64(int fd, double v);
double boot_recv_f64(int fd);

/* Seekable random data: the byte at offset o of stream `seed` is a pure
 * function of (seed, o), so any 8-aligned piece can be generated alone. */
void bench_random_fill(uint64_t seed, size_t offset, void *dst, size_t n);
/* crc continued over bytes [offset, offset+n) of stream `seed` (crc 0:
 * their CRC-32C alone). */
uint32_t bench_random_crc(uint32_t crc, uint64_t seed, size_t offset, size_t n);
uint64_t bench_mix(uint64_t a, uint64_t b);

/* ------------------------------------------------------------- memory */

typedef struct bench_mem bench_mem;

typedef struct bench_mem_ops {
    const char *name;        /* "host", "cuda" */
    tcpx_mem_kind kind;      /* what tcpx_mem_register is told */
    int (*alloc)(bench_mem *m, size_t size);
    void (*free)(bench_mem *m);
    /* copy between host memory and [off, off+n) of m; 0 on success */
    int (*write)(bench_mem *m, size_t off, const void *src, size_t n);
    int (*read)(const bench_mem *m, size_t off, void *dst, size_t n);
    /* Kinds whose bytes the host cannot read in place (NULL for host): one
     * check of a stamped message at [off, off+n): le64(stamp) in its first
     * and last h bytes, byte j of the random stream `seed` elsewhere. 0 when
     * checked; *first_bad the first differing byte or UINT64_MAX. */
    int (*check_stamped)(const bench_mem *m, size_t off, size_t n, uint64_t seed, size_t h, uint64_t stamp,
                         uint64_t *first_bad);
} bench_mem_ops;

struct bench_mem {
    const bench_mem_ops *ops;
    int gpu;                 /* CUDA device, for kinds that need one */
    void *handle;            /* the kind's own state (an open tcpx_gpu) */
    void *stream;            /* cuda: the stream check_stamped runs on */
    void *base;
    size_t size;
};

/* The memory kind called `name`, or NULL. bench_mem_kinds() lists them. */
const bench_mem_ops *bench_mem_find(const char *name);
const char *bench_mem_kinds(void);

/* Fill [off, off+n) with random stream `seed` (stream offset 0 at off). */
void bench_mem_fill_random(bench_mem *m, size_t off, size_t n, uint64_t seed);
/* Compare [off, off+n) with random stream `seed`. Returns the number of
 * differing bytes; prints the first few (offset, expected, actual). */
size_t bench_mem_verify_random(const bench_mem *m, size_t off, size_t n, uint64_t seed, const char *what);
/* Continue the CRC-32C in *crc over [off, off+n) (start with 0): 0, or 1
 * where the kind is not read that way (GPU memory: its messages are
 * checked by their stamps). */
int bench_mem_crc(const bench_mem *m, size_t off, size_t n, uint32_t *crc);
/* Flip bit 4 of the byte at off (--flip-bit-at; flipping again restores). */
void bench_mem_flip_bit(bench_mem *m, size_t off);

/* ------------------------------------------------------------- ceiling */

/* Raw TCP between the two processes, `streams` connections, one thread per
 * stream on each side, walking through `working_set` bytes of buffers
 * (BENCH_CEILING_HOT: one megabyte per stream, the cache-hot figure). The
 * receiver listens on 127.0.0.1; buffers and connections are set up before
 * the sender starts writing for `seconds`; the receiver times the bytes from
 * the first to the last and both sides return that GB/s. */
#define BENCH_CEILING_HOT 0
double bench_ceiling_recv(int boot, int streams, size_t working_set);
double bench_ceiling_send(int boot, int streams, double seconds, size_t working_set);
/* The ceiling's working set: the benchmark's largest buffers (inflight x
 * largest size, capped by --max-mem). */
size_t bench_ceiling_working_set(const bench_opts *o);

/* ------------------------------------------------------------- latency */

/* Post-to-completion time of each timed message (recorded only while
 * `on`), per slot; at most BENCH_LAT_MAX samples. */
#define BENCH_LAT_MAX (1L << 21)
typedef struct bench_lat {
    double *t_post;        /* per slot */
    double *v;             /* seconds */
    long n, cap;
    int on;
} bench_lat;

void bench_lat_init(bench_lat *l, int slots);
void bench_lat_posted(bench_lat *l, int slot);
void bench_lat_done(bench_lat *l, int slot);
/* Percentile q (0..100) in µs of the samples taken; 0 without samples. */
double bench_lat_pct(bench_lat *l, double q);
void bench_lat_free(bench_lat *l);

/* ------------------------------------------------------------- transfers */

typedef struct bench_result {
    size_t size;
    int slots;
    long msgs;             /* timed messages */
    double seconds;        /* sender wall time of the timed loop */
    double gbps;           /* 1 GB = 1e9 bytes */
    double us_per_msg;
    double cpu_send, cpu_recv;   /* % of one core over the timed loop */
    double p50_us, p99_us;       /* post to completion of a timed message (the round trip at --inflight 1) */
    long verified_msgs;    /* messages checked byte for byte */
    long stamped_msgs;     /* messages whose stamps were checked */
    long crc_msgs;         /* of those, messages whose every byte was checked by CRC-32C */
    uint64_t errors;       /* mismatches found by the receiver */
} bench_result;

typedef struct bench_ctx {
    const bench_opts *o;
    const bench_mem_ops *mem;
    int gpu;               /* this side's CUDA device */
    tcpx_session *s;
    const char *peer;      /* the other side's name in this session */
    int boot;
} bench_ctx;

/* The sender's warm-up: batches of doubling size (each announced to the
 * receiver, 0 ends them) until one takes long enough to time, then the
 * timed count (announced too): --iters, or what fills --time, a multiple of
 * slots. run(loop, first, n) moves messages first..first+n-1 (stamped);
 * *w advances past the warm-up. */
typedef void (*bench_run_fn)(void *loop, long first, long n);
long bench_warmup(bench_ctx *c, int slots, long first_batch, bench_run_fn run, void *loop, long *w);

/* One size, each side. The sender decides the iteration count and tells the
 * receiver; the receiver reports its CPU use and errors back. */
void bench_size_send(bench_ctx *c, size_t size, bench_result *r);
void bench_size_recv(bench_ctx *c, size_t size);
/* The same for --op write|read: the sender initiates, the receiver is the
 * target. */
void bench_os_send(bench_ctx *c, size_t size, bench_result *r);
void bench_os_recv(bench_ctx *c, size_t size);

/* ------------------------------------------------------------- json */

/* --json FILE: {"seed", "channels", "ceiling_gbps", "ceiling_hot_gbps", "ceiling_streams",
 * "ceiling_working_set", "rows": [{"mem", "op", "blocks", "size",
 * "inflight", "msgs", "seconds", "gbps", "us_per_msg", "p50_us", "p99_us",
 * "pct_ceiling", "cpu_send", "cpu_recv", "errors"}...]}. */
typedef struct bench_json bench_json;
bench_json *bench_json_open(const char *path);   /* dies on failure */
void bench_json_row(bench_json *j, const char *mem, const char *op, int blocks, const bench_result *r,
                    double ceiling);
/* Writes the trailer and closes; a ceiling of 0 = not measured. */
void bench_json_close(bench_json *j, uint64_t seed, int channels, double ceiling, double hot, int streams,
                      size_t ws);

#endif
