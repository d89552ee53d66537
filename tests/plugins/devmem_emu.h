/* devmem_emu.h - the devmem emulator: a test-only ncclNet v7 plugin that
 * follows the receive contract of GPUDirect-TCPX over loopback TCP.
 *
 * GPUDirect-TCPX receives payload through devmem TCP straight into pages of
 * a GPU bounce buffer and describes every receive by a fragment list in
 * host memory mapped to the device; the receiver gathers the fragments with
 * an unpack kernel and hands the receive back with irecvConsumed, in posting
 * order, which recycles the pages. The emulator reproduces that contract so
 * that the device-unpack path can be exercised on any GPU machine (CUDA
 * mode) and its protocol checked without one (host mode):
 *
 *   - accept fills an UNPACK device handle {meta, bounce_buf, head}: in CUDA
 *     mode the 24-byte struct is device memory, meta is mapped pinned host
 *     memory (the struct holds its device address) and bounce_buf a
 *     process-wide cudaMalloc pool; in host mode all three are host memory;
 *   - the k-th irecv of a recv comm owns queue slot k % 16 until it is
 *     consumed; its payload is cut into pieces (mostly whole 4 KiB pages,
 *     about one in 8 shorter) placed in random free pages at random in-page
 *     offsets, listed in shuffled order, cnt written last; about one
 *     message in 4 has up to 128 leading bytes written straight into the
 *     posted buffer instead (the receiver must gather into that buffer);
 *   - irecvConsumed poisons the pages with 0xA5 before recycling them, so a
 *     gather that runs after an early consume reads garbage;
 *   - misuse (late, early or out-of-order irecvConsumed, a receive into host
 *     memory, an unaligned CUDA registration, a message larger than the
 *     receive) returns an error, logs a WARN and counts a violation, which
 *     devmem_emu_violations() reports.
 *
 * No threads: all progress happens inside the calls. Callers may use
 * different comms from different threads (each comm has a lock; the pool
 * and the seed source have one of their own).
 *
 * Environment: DEVMEM_EMU_HOST=1 forces host mode; DEVMEM_EMU_POOL_MB
 * (default 256, 8..4095) sizes the bounce pool; DEVMEM_EMU_SEED seeds the
 * placement decisions (default: time-based; logged at init);
 * DEVMEM_EMU_NO_SIZES=1 makes test() leave sizes unreported, as
 * GPUDirect-TCPX does.
 */
#ifndef DEVMEM_EMU_H
#define DEVMEM_EMU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/unpack.h"
#include "net/nccl_net_abi.h"

#define EMU_EXPORT __attribute__((visibility("default")))

#define EMU_PAGE TCPX_UNPACK_PAGE_SIZE                     /* 4096 */
#define EMU_SLOTS TCPX_UNPACK_SLOTS                        /* 16 */
#define EMU_MAX_FRAGS TCPX_UNPACK_MAX_PAGES                /* 2048 per message */
#define EMU_MAX_MSG ((size_t)EMU_MAX_FRAGS * EMU_PAGE)     /* 8 MiB: 2048 whole pages */
#define EMU_MAX_SENDS 16                                   /* sends in flight per comm */
#define EMU_LINEAR_MAX 128                                 /* leading bytes put in the posted buffer */
#define EMU_POISON 0xA5

#define EMU_HANDLE_MAGIC 0x31554d454d564544ull             /* "DEVMEMU1" */
#define EMU_WIRE_MAGIC 0x4d444d45u                         /* "EMDM" */

/* The listen handle (<= 128 bytes). `connecting` is the connecting side's
 * progress: 0 in the handle listen wrote, then its dial state (NCCL passes
 * the same handle buffer on every connect retry). */
typedef struct emu_handle {
    uint64_t magic;
    uint64_t nonce;
    uint32_t port;                 /* host byte order */
    uint32_t reserved;
    uint64_t connecting;
} emu_handle;

/* What a connecting side writes first: {magic, nonce}. */
typedef struct emu_preamble {
    uint64_t magic;
    uint64_t nonce;
} emu_preamble;

/* Every message on the wire: this header, then `size` payload bytes. */
typedef struct emu_wire_hdr {
    uint32_t magic;
    uint32_t reserved;
    uint64_t size;
} emu_wire_hdr;

_Static_assert(sizeof(emu_handle) <= TCPX_NCCL_NET_HANDLE_MAXSIZE, "handle fits NCCL_NET_HANDLE_MAXSIZE");
_Static_assert(sizeof(emu_preamble) == 16 && sizeof(emu_wire_hdr) == 16, "wire layouts");

/* ---- logging (through NCCL's logger) and violations ---- */

extern tcpx_ncclDebugLogger_t emu_logger;
#define EMU_LOG(level, ...)                                                              \
    do {                                                                                 \
        if (emu_logger) emu_logger(level, TCPX_NCCL_LOGSYS_NET, __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)
#define EMU_WARN(...) EMU_LOG(TCPX_NCCL_LOG_WARN, __VA_ARGS__)
#define EMU_INFO(...) EMU_LOG(TCPX_NCCL_LOG_INFO, __VA_ARGS__)

/* Count one contract violation (the caller logs the WARN). */
void emu_violation(void);

/* ---- memory backend (devmem_emu_mem.c), chosen once at init ---- */

typedef struct emu_mem {
    const char *name;                                        /* "cuda" or "host" */
    int cuda;                                                /* real device memory */
    int (*bind)(void);               /* the calling thread's device becomes the pool's */
    int (*dev_alloc)(size_t n, void **p);                    /* pool device memory */
    void (*dev_free)(void *p);
    int (*pinned_alloc)(size_t n, void **p);                 /* staging */
    void (*pinned_free)(void *p);
    int (*mapped_alloc)(size_t n, void **host, void **dev);  /* fragment lists */
    void (*mapped_free)(void *host);
    int (*put)(void *dst, const void *src, size_t n);        /* queue host -> device */
    int (*fill)(void *dst, int byte, size_t n);              /* queue device memset */
    int (*wait)(void);                                       /* finish what was queued */
    int (*get)(void *dst, const void *src, size_t n);        /* device -> host, synchronous */
    int (*is_device)(const void *p);                         /* 1 device memory, 0 not, <0 error */
} emu_mem;

extern const emu_mem *emu_mem_ops;
/* Choose CUDA or host memory; `why` gets a few words on the choice. */
void emu_mem_select(char *why, size_t cap);

/* ---- seeds and the bounce pool (devmem_emu_pool.c) ---- */

uint64_t emu_rand(uint64_t *state);          /* splitmix64 step */
void emu_seed_init(void);                    /* DEVMEM_EMU_SEED or time */
/* 0 when DEVMEM_EMU_NO_SIZES is set: test() leaves the size unwritten, as
 * GPUDirect-TCPX does (receivers then see the posted capacity). */
extern int emu_report_sizes;
uint64_t emu_seed(void);
uint64_t emu_seed_next(void);                /* a fresh per-comm stream, thread-safe */

/* One more user of the pool, made (bind + dev_alloc) by the first. */
int emu_pool_acquire(uint8_t **base, size_t *bytes);
void emu_pool_release(void);
/* Take n free pages in random order into pages[]: 1, or 0 when fewer are
 * free (nothing taken). */
int emu_pool_take(uint32_t n, uint32_t *pages, uint64_t *rng);
void emu_pool_give(const uint32_t *pages, uint32_t n);
/* Overwrite whole pages of the pool at `base` with EMU_POISON. */
int emu_pool_poison(uint8_t *base, const uint32_t *pages, uint32_t n);

/* ---- comms ---- */

typedef struct emu_mr {
    uint32_t magic;
    int type;                      /* TCPX_NCCL_PTR_HOST / _CUDA */
    uintptr_t base;
    size_t size;
} emu_mr;
#define EMU_MR_MAGIC 0x524d554du

/* A request starts with its kind, so that test() can tell them apart. */
enum { EMU_KIND_SEND = 0x444e4553, EMU_KIND_RECV = 0x56434552 };

enum { EMU_S_FREE = 0, EMU_S_POSTED, EMU_S_WRITTEN };

typedef struct emu_scomm emu_scomm;
typedef struct emu_sreq {
    uint32_t kind;
    int state;
    emu_scomm *comm;
    uint8_t *buf;                  /* header + payload copy */
    size_t len, off;               /* bytes to write, written */
    int size;                      /* payload bytes */
} emu_sreq;

struct emu_scomm {
    pthread_mutex_t mu;
    int fd;
    int err;                       /* sticky ncclResult once the socket failed */
    uint64_t nposted, nwritten;
    emu_sreq reqs[EMU_MAX_SENDS];  /* send k uses reqs[k % EMU_MAX_SENDS] */
};

enum { EMU_R_FREE = 0, EMU_R_POSTED, EMU_R_DONE, EMU_R_FAILED };

typedef struct emu_rcomm emu_rcomm;
typedef struct emu_rreq {
    uint32_t kind;
    int state;
    int reported;                  /* test() said done */
    int err;                       /* EMU_R_FAILED: its ncclResult */
    emu_rcomm *comm;
    uint64_t seq;                  /* k: this is the comm's k-th irecv */
    uint8_t *data;
    size_t cap;
    size_t size;                   /* message size, once known */
    uint32_t linear;               /* leading bytes put straight into data */
    uint32_t nfrags;               /* pieces planned; pages held once placed */
    int planned;
    uint32_t *pages;               /* the comm's page list of this slot */
} emu_rreq;

struct emu_rcomm {
    pthread_mutex_t mu;
    int fd;
    int err;                       /* sticky ncclResult once the stream broke */
    uint64_t rng;
    uint64_t nposted, ncompleted, nconsumed;
    /* The message of the oldest incomplete receive, as it arrives. */
    emu_wire_hdr hdr;
    size_t hdr_got, body_got;
    uint8_t *staging;
    size_t staging_cap;
    tcpx_unpack_meta *meta;        /* host view */
    tcpx_unpack_meta *meta_dev;    /* the address in the device handle */
    tcpx_unpack_handle *dhandle;   /* the 24 bytes handed out (device memory in CUDA mode) */
    uint8_t *bounce;
    size_t bounce_bytes;
    emu_rreq reqs[EMU_SLOTS];      /* receive k uses reqs[k % 16] = queue slot k % 16 */
    uint32_t pages[EMU_SLOTS][EMU_MAX_FRAGS];
};

/* devmem_emu_conn.c */
tcpx_ncclResult_t emu_listen(int dev, void *handle, void **listen_comm);
tcpx_ncclResult_t emu_connect(int dev, void *handle, void **send_comm, tcpx_ncclNetDeviceHandle_v7_t **dh);
tcpx_ncclResult_t emu_accept(void *listen_comm, void **recv_comm, tcpx_ncclNetDeviceHandle_v7_t **dh);
tcpx_ncclResult_t emu_close_listen(void *listen_comm);

/* devmem_emu_send.c */
tcpx_ncclResult_t emu_scomm_new(int fd, emu_scomm **out);
tcpx_ncclResult_t emu_isend(void *send_comm, void *data, int size, int tag, void *mhandle, void **request);
tcpx_ncclResult_t emu_test_send(emu_sreq *r, int *done, int *size);
tcpx_ncclResult_t emu_close_send(void *send_comm);

/* devmem_emu_recv.c */
tcpx_ncclResult_t emu_rcomm_new(int fd, emu_rcomm **out);
tcpx_ncclResult_t emu_irecv(void *recv_comm, int n, void **data, int *sizes, int *tags, void **mhandles,
                            void **request);
tcpx_ncclResult_t emu_test_recv(emu_rreq *r, int *done, int *size);
tcpx_ncclResult_t emu_irecv_consumed(void *recv_comm, int n, void *request);
tcpx_ncclResult_t emu_close_recv(void *recv_comm);

/* devmem_emu_place.c: put the staged message of r into pages and its
 * slot's fragment list; *placed = 0 while the pool lacks pages. Caller
 * holds c->mu. */
tcpx_ncclResult_t emu_place(emu_rcomm *c, emu_rreq *r, int *placed);

/* A registration handle if `mh` is one of ours, else NULL. */
const emu_mr *emu_mr_get(const void *mh);

#endif /* DEVMEM_EMU_H */
