/*
 * soak.h - the soak test of tcpx-p2p: rounds of random transfers between a
 * pair of processes, with random releases, peer kills and injected faults,
 * every byte of every completed transfer checked.
 *
 * A round's plan is made by the supervisor before it forks the pair, so
 * both processes know every operation: its kind, initiator, sizes, offsets,
 * tag and data seed. Side 0 is "A", side 1 is "B".
 *
 * With --gpu (a CUDA device present) each of a side's two regions is GPU or
 * host memory at random, so a round mixes host<->GPU, GPU<->GPU and
 * host<->host; block data is the reproducible sequence of src/gpu/gpu.h,
 * filled and checked on the device for GPU memory.
 */
#ifndef TCPX_SOAK_H
#define TCPX_SOAK_H

#include <stddef.h>
#include <stdint.h>

#include "gt_common.h"
#include "harness.h"

#define SOAK_MAX_OPS 400
#define SOAK_MAX_BLOCKS 64
#define SOAK_MAX_NOTIF 1024          /* bytes of a notification the soak sends */
#define SOAK_NSTATUS 13              /* -TCPX_ERR_ACCESS + 1 */

enum soak_kind { OP_SEND, OP_WRITE, OP_READ, OP_NOTIFY };
enum soak_round { R_CLEAN, R_KILL, R_FAULT };
enum soak_release { REL_NONE, REL_AT_POST, REL_LATER_POST, REL_AFTER_WAIT };

typedef struct soak_blk {
    size_t src_off, dst_off, size;   /* src: the data's owner's src region; dst: the other's dst region */
} soak_blk;

typedef struct soak_op {
    uint8_t kind, init;              /* init: the side that posts the send / list / notification */
    uint8_t notif;                   /* WRITE/READ: with an attached notification */
    uint8_t early;                   /* SEND: the receive is posted before the sides sync */
    uint8_t rel_mode;                /* enum soak_release */
    uint8_t rel_side;                /* the side that releases its transfer of this op */
    uint32_t rel_arg;                /* REL_LATER_POST: posts after; REL_AFTER_WAIT: ms waited */
    uint64_t tag;
    uint32_t nblk, blk0;             /* blocks in soak_plan.blk (SEND: one) */
    size_t size;                     /* bytes in all blocks */
    uint16_t notif_len;              /* 8..SOAK_MAX_NOTIF */
} soak_op;

typedef struct soak_plan {
    uint64_t seed;
    int round;
    int type;                        /* enum soak_round */
    int victim;                      /* R_KILL: side killed */
    int kill_ms;                     /* R_KILL: delay after the victim started posting */
    int fault_side;                  /* R_FAULT: side armed */
    int fault_kind;                  /* index in soak_fault_names */
    char fault_spec[48];
    int strict;                      /* every op not released must complete OK on both sides */
    int digest;                      /* TCPX_DATA_DIGEST=1 */
    int channels;
    size_t chunk;
    int peer_timeout_ms;
    int nops;
    soak_op op[SOAK_MAX_OPS];
    int nblk;
    soak_blk blk[SOAK_MAX_OPS * SOAK_MAX_BLOCKS];
    size_t src_size[2], dst_size[2];
    tcpx_mem_kind kind[2][2];        /* [side][0: src, 1: dst] */
    int gpu[2];                      /* the side's CUDA device, -1: host memory only */
} soak_plan;

enum { F_PARTIAL, F_EINTR, F_EAGAIN, F_RESET, F_CLOSE, F_STALL, F_FLIP, F_NKINDS };
extern const char *const soak_fault_names[F_NKINDS];

typedef struct soak_opts {
    int fault_ok;                    /* the fault shim is loaded */
    size_t max_region;               /* cap of one region (a process has two) */
    int gpu;                         /* --gpu: regions may be GPU memory */
    int gpu_dev[2];                  /* the devices of A and B */
} soak_opts;

/* Figures of one process for one round, summed by the supervisor. */
typedef struct soak_stats {
    uint64_t posted, ok, released, failed_post;
    uint64_t orphaned;               /* released here after the peer released its side (never matched) */
    uint64_t failed[SOAK_NSTATUS];   /* by -status */
    uint64_t bytes_verified, corrupted;
    uint64_t bytes_verified_gpu;     /* of bytes_verified: those checked in GPU memory */
    uint64_t notifs_sent, notifs_failed, notifs_verified; /* sent: standalone ones */
    uint64_t max_wait_ms, max_release_ms;
} soak_stats;

/* soak_plan.c: the plan of round `round` from the base seed. */
void soak_plan_make(soak_plan *p, uint64_t base_seed, int round, const soak_opts *o);
const char *soak_round_name(const soak_plan *p);
/* "A src GPU dst host, B ..." (empty without GPU memory). */
const char *soak_mem_name(const soak_plan *p);
/* Log every op of the plan (SOAK_DUMP=1). */
void soak_plan_dump(const soak_plan *p);

/* soak_data.c: the bytes of block b (the sequence of its seed, from
 * position 0); a notification's bytes. */
uint64_t soak_blk_seed(const soak_plan *p, uint32_t b);
/* Put block b's bytes at [off, +size) of r (host or GPU). */
void soak_fill_blk(const soak_plan *p, uint32_t b, gt_region *r, size_t off);
void soak_notif_fill(const soak_plan *p, int i, uint8_t *buf);
/* 1 if buf (len bytes, from peer) is op i's notification. */
int soak_notif_check(const soak_plan *p, const uint8_t *buf, size_t len, int *op);
/* Count the bytes of [off, +size) of r that differ from block b's pattern
 * into st (logging the first); returns the count. */
uint64_t soak_check_blk(const soak_plan *p, uint32_t b, gt_region *r, size_t off, const char *what, soak_stats *st);

/* soak_peer.c: one side of a round; fds: to the peer, to the supervisor. */
typedef struct soak_side {
    const soak_plan *plan;
    int me;
    int fd_peer, fd_sup;
    int close_fds[8];
    int nclose;
} soak_side;
int soak_peer_main(void *arg);

#endif
