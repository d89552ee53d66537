/*
 * gt_common.h - helpers shared by the GPU integration tests (label `gpu`).
 *
 * Built on the two-process harness of tests/integration (harness.h): the
 * supervisor forks one child per role, and every tcpx session and every CUDA
 * object lives in a child.
 *
 * CUDA and fork(): a process that has initialised CUDA cannot hand a working
 * CUDA to the children it forks. So the supervisor never calls CUDA itself:
 * gt_probe_or_skip() asks a throw-away child whether devices exist (and how
 * much memory they have free) and reports back through a pipe. When the
 * probe finds no device the test prints "SKIP: no CUDA device: <reason>" and
 * exits 77 (ctest SKIP_RETURN_CODE).
 *
 * Test data: the reproducible sequences of src/gpu/gpu.h, generated and
 * compared on the device (tcpx_gpu_fill_random / tcpx_gpu_compare_random) or
 * on the host (tcpx_fill_random_host / tcpx_compare_random_host). Every
 * range that a check covers is filled from position 0 of its own seed, so a
 * check never depends on where the range lies in its buffer.
 */
#ifndef TCPX_GT_COMMON_H
#define TCPX_GT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "harness.h"
#include "tcpx_p2p.h"

#define GT_KiB ((size_t)1 << 10)
#define GT_MiB ((size_t)1 << 20)
#define GT_GiB ((size_t)1 << 30)

#define GT_SKIP 77

/* Print "SKIP: <message>" on stdout and exit 77. */
void gt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ------------------------------------------------------------------ probe */

typedef struct gt_probe {
    int count;                 /* CUDA devices visible */
    int gpu_a, gpu_b;          /* devices of the two sides (env TCPX_TEST_GPU_A / _B) */
    size_t free_a, total_a;    /* memory of gpu_a (0 when it could not be asked) */
    size_t free_b, total_b;    /* memory of gpu_b */
    char desc_a[200], desc_b[200];
} gt_probe;

/* Run the probe in a child process (the caller must not have used CUDA).
 * No device: print the SKIP line and exit 77. A device named by
 * TCPX_TEST_GPU_A / TCPX_TEST_GPU_B that does not exist fails the test.
 * Defaults: A on device 0; B on device 1 when there are two or more, else 0. */
void gt_probe_or_skip(gt_probe *p);

/* Smaller of the free memory of the two devices (counted once when equal). */
size_t gt_probe_min_free(const gt_probe *p);

/* ------------------------------------------------------ per-process GPU */

typedef struct gt_gpu {
    int dev;                   /* -1: none opened */
    tcpx_gpu *g;
    tcpx_gpu_stream *st;       /* fills, compares */
} gt_gpu;

void gt_gpu_open(gt_gpu *c, int dev);
void gt_gpu_close(gt_gpu *c);

/* ---------------------------------------------------------------- regions */

typedef struct gt_region {
    tcpx_mem_kind kind;
    uint8_t *ptr;              /* registered base */
    void *alloc;               /* CUDA: the allocation (ptr lies inside, off any page boundary) */
    size_t size;               /* registered size */
    size_t map;                /* host: mmap length */
    tcpx_mem_id id;
    gt_gpu *gpu;               /* CUDA regions: the device context */
    char name[48];
} gt_region;

/* Allocate size bytes (cudaMalloc on c's device, starting 1000..1015 bytes
 * into the allocation so that registrations are not page-aligned; or mmap), fill them with
 * `seed`, register them with the session (kind HOST or CUDA) and check
 * tcpx_mem_info. */
void gt_region_init(tcpx_session *s, gt_gpu *c, gt_region *r, tcpx_mem_kind kind, size_t size, uint64_t seed,
                    const char *name);
/* Deregister (when s and r->id are set; must succeed) and free. */
void gt_region_fini(tcpx_session *s, gt_region *r);

const char *gt_kind_name(tcpx_mem_kind k);   /* "host" / "GPU" */

/* Fill [off, off+n) of r with the sequence of seed (from its position 0);
 * returns when the bytes are in place. */
void gt_fill(gt_region *r, size_t off, size_t n, uint64_t seed);
/* Index of the first byte of [off, off+n) that differs from the sequence of
 * seed, or UINT64_MAX. */
uint64_t gt_first_bad(gt_region *r, size_t off, size_t n, uint64_t seed);
/* Fail (with the position, the expected and the actual bytes) unless
 * [off, off+n) of r holds the sequence of seed. */
#define GT_CHECK_DATA(what, r, off, n, seed) gt_check_at(__FILE__, __LINE__, what, r, off, n, seed)
void gt_check_at(const char *file, int line, const char *what, gt_region *r, size_t off, size_t n, uint64_t seed);

/* A receive target with guards: [lo, off) holds seed g1, [off, off+size)
 * the poison seed, [off+size, hi) seed g2. Device regions and small host
 * regions are guarded in full (lo = 0, hi = size of the region); large host
 * regions in windows of 1 MiB around the target (refilling 256 MiB of host
 * memory for every message would dominate the run). */
typedef struct gt_target {
    gt_region *r;
    size_t off, size, lo, hi;
    uint64_t g1, g2, poison;
} gt_target;

void gt_target_prepare(gt_target *t, gt_region *r, size_t off, size_t size, uint64_t gseed);
/* Check that the target holds `seed` and the guards are intact. */
void gt_target_check(gt_target *t, uint64_t seed, const char *what);

/* Random odd offset for `size` bytes inside a region of `cap` bytes
 * (cap >= size + 2). */
size_t gt_odd_offset(hx_rng *rng, size_t cap, size_t size);

/* ---------------------------------------------------------------- layouts
 * Many messages packed into a few regions, each at an odd offset after a gap
 * of 1..4097 bytes; every gap is a guard of its own seed. */

typedef struct gt_gap {
    gt_region *r;
    size_t off, len;
    uint64_t seed;
} gt_gap;

typedef struct gt_layout {
    gt_region *regs[4];
    size_t cursor[4];
    int nregs;
    gt_gap *gaps;
    size_t ngaps, cap;
    uint64_t gseed;
} gt_layout;

void gt_layout_init(gt_layout *L, uint64_t gseed);
int gt_layout_add_region(gt_layout *L, gt_region *r);          /* returns its index */
size_t gt_layout_place(gt_layout *L, hx_rng *rng, int ri, size_t size);   /* offset */
void gt_layout_finish(gt_layout *L);                            /* the tail gaps */
void gt_layout_fill_gaps(gt_layout *L);
void gt_layout_check_gaps(gt_layout *L, const char *what);
void gt_layout_free(gt_layout *L);

/* ---------------------------------------------------------------- sessions */

typedef struct gt_sess_opts {
    const char *name;
    int gpu;                   /* cfg.gpu_id: -1 host only */
    int channels;              /* 0 = 4 */
    size_t chunk;              /* 0 = library default */
    int slots;                 /* 0 = library default (TCPX_STAGING_SLOTS wins) */
    int peer_timeout_ms;       /* 0 = 20000 */
    int connect_timeout_ms;    /* 0 = 30000; times hx_time_scale() */
    int no_progress_thread;    /* 1: cfg.progress_thread = 0 (only the test's calls progress) */
} gt_sess_opts;

/* Create a socket-transport session on 127.0.0.1; fails the test with
 * tcpx_last_error() when creation fails, and checks that the effective
 * configuration is what was asked for. */
tcpx_session *gt_session(const gt_sess_opts *o);

/* Destroy the session; fail when that takes longer than bound_ms. */
void gt_session_destroy(tcpx_session *s, int bound_ms);

/* ------------------------------------------------------------------ misc */

uint64_t gt_now_us(void);
/* Bytes per microsecond / 1000 = GB/s (10^9 bytes per second). */
double gt_gbps(size_t bytes, uint64_t us);
/* Both sides call: each says "ready" and waits for the other's. */
void gt_barrier(int fd, const char *tag);

#endif
