/* gt_common.c - see gt_common.h. */
#define _GNU_SOURCE
#include "gt_common.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef TCPX_GT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

void gt_skip(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("SKIP: %s\n", msg);
    fflush(stdout);
    fflush(stderr);
    exit(GT_SKIP);
}

uint64_t gt_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double gt_gbps(size_t bytes, uint64_t us)
{
    return (double)bytes / (double)(us ? us : 1) / 1e3;
}

void gt_barrier(int fd, const char *tag)
{
    hx_send_str(fd, tag);
    hx_expect_str(fd, tag, 120000);
}

/* ------------------------------------------------------------------ probe */

typedef struct probe_msg {
    int ok;          /* 1: devices found */
    int bad_env;     /* 1: a TCPX_TEST_GPU_* device does not exist (err says which) */
    int count;
    int gpu_a, gpu_b;
    uint64_t free_a, total_a, free_b, total_b;
    char desc_a[200], desc_b[200];
    char err[600];
} probe_msg;

static int env_device(const char *var)
{
    const char *v = getenv(var);
    if (!v || !*v) return -1;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < 0 || x > 1023) HX_FAIL("%s=\"%s\": expected a CUDA device number", var, v);
    return (int)x;
}

static void mem_of(int dev, uint64_t *free_b, uint64_t *total_b)
{
    *free_b = *total_b = 0;
#ifdef TCPX_GT_HAVE_CUDA
    size_t f = 0, t = 0;
    if (cudaSetDevice(dev) == cudaSuccess && cudaMemGetInfo(&f, &t) == cudaSuccess) {
        *free_b = f;
        *total_b = t;
    } else {
        (void)cudaGetLastError();
    }
#else
    (void)dev;
#endif
}

static void probe_child(int wfd, int want_a, int want_b)
{
    probe_msg m;
    memset(&m, 0, sizeof m);
    int n = 0;
    tcpx_status st = tcpx_gpu_device_count(&n);
    if (st != TCPX_OK) {
        snprintf(m.err, sizeof m.err, "%s", tcpx_last_error()[0] ? tcpx_last_error() : tcpx_strerror(st));
    } else {
        m.ok = 1;
        m.count = n;
        m.gpu_a = want_a >= 0 ? want_a : 0;
        m.gpu_b = want_b >= 0 ? want_b : (n >= 2 ? 1 : 0);
        if (m.gpu_a >= n || m.gpu_b >= n) {
            m.bad_env = 1;
            snprintf(m.err, sizeof m.err,
                     "TCPX_TEST_GPU_A/TCPX_TEST_GPU_B ask for CUDA devices %d and %d, but %d device%s visible",
                     m.gpu_a, m.gpu_b, n, n == 1 ? " is" : "s are");
        } else {
            if (tcpx_gpu_describe(m.gpu_a, m.desc_a, sizeof m.desc_a) != TCPX_OK)
                snprintf(m.desc_a, sizeof m.desc_a, "(describe failed: %s)", tcpx_last_error());
            if (tcpx_gpu_describe(m.gpu_b, m.desc_b, sizeof m.desc_b) != TCPX_OK)
                snprintf(m.desc_b, sizeof m.desc_b, "(describe failed: %s)", tcpx_last_error());
            mem_of(m.gpu_a, &m.free_a, &m.total_a);
            mem_of(m.gpu_b, &m.free_b, &m.total_b);
        }
    }
    const uint8_t *p = (const uint8_t *)&m;
    size_t left = sizeof m;
    while (left) {
        ssize_t w = write(wfd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(5);
        p += w;
        left -= (size_t)w;
    }
    _exit(0);
}

void gt_probe_or_skip(gt_probe *out)
{
    memset(out, 0, sizeof *out);
    int want_a = env_device("TCPX_TEST_GPU_A"), want_b = env_device("TCPX_TEST_GPU_B");
    int fds[2];
    HX_CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    HX_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGALRM, SIG_DFL);
        alarm(120);
        probe_child(fds[1], want_a, want_b);
    }
    close(fds[1]);
    probe_msg m;
    uint8_t *p = (uint8_t *)&m;
    size_t got = 0;
    uint64_t deadline = hx_now_ms() + (uint64_t)HX_MS(120000);
    while (got < sizeof m) {
        uint64_t now = hx_now_ms();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            HX_FAIL("the CUDA probe process did not answer within %d ms", HX_MS(120000));
        }
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        int r = poll(&pf, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = read(fds[0], p + got, sizeof m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got < sizeof m) {
        if (WIFSIGNALED(status))
            HX_FAIL("the CUDA probe process died of signal %d (%s) before answering", WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        HX_FAIL("the CUDA probe process exited with status %d before answering",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    m.err[sizeof m.err - 1] = '\0';
    m.desc_a[sizeof m.desc_a - 1] = '\0';
    m.desc_b[sizeof m.desc_b - 1] = '\0';
    if (!m.ok) gt_skip("no CUDA device: %s", m.err);
    if (m.bad_env) HX_FAIL("%s", m.err);
    out->count = m.count;
    out->gpu_a = m.gpu_a;
    out->gpu_b = m.gpu_b;
    out->free_a = (size_t)m.free_a;
    out->total_a = (size_t)m.total_a;
    out->free_b = (size_t)m.free_b;
    out->total_b = (size_t)m.total_b;
    snprintf(out->desc_a, sizeof out->desc_a, "%s", m.desc_a);
    snprintf(out->desc_b, sizeof out->desc_b, "%s", m.desc_b);
    hx_log("%d CUDA device%s; side A on GPU %d (%s; %.1f of %.1f GiB free), side B on GPU %d (%s; %.1f of %.1f "
           "GiB free)",
           m.count, m.count == 1 ? "" : "s", m.gpu_a, m.desc_a, (double)m.free_a / (double)GT_GiB,
           (double)m.total_a / (double)GT_GiB, m.gpu_b, m.desc_b, (double)m.free_b / (double)GT_GiB,
           (double)m.total_b / (double)GT_GiB);
}

size_t gt_probe_min_free(const gt_probe *p)
{
    return p->free_a < p->free_b ? p->free_a : p->free_b;
}

/* ------------------------------------------------------ per-process GPU */

void gt_gpu_open(gt_gpu *c, int dev)
{
    memset(c, 0, sizeof *c);
    c->dev = -1;
    HX_OK(tcpx_gpu_open(dev, &c->g));
    HX_OK(tcpx_gpu_stream_create(c->g, &c->st));
    c->dev = dev;
}

void gt_gpu_close(gt_gpu *c)
{
    if (c->dev < 0) return;
    tcpx_gpu_stream_destroy(c->st);
    tcpx_gpu_close(c->g);
    c->st = NULL;
    c->g = NULL;
    c->dev = -1;
}

/* ---------------------------------------------------------------- regions */

const char *gt_kind_name(tcpx_mem_kind k)
{
    return k == TCPX_MEM_CUDA ? "GPU" : "host";
}

void gt_region_init(tcpx_session *s, gt_gpu *c, gt_region *r, tcpx_mem_kind kind, size_t size, uint64_t seed,
                    const char *name)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->size = size;
    snprintf(r->name, sizeof r->name, "%s", name);
    HX_CHECK(size > 0, "region %s of 0 bytes", name);
    if (kind == TCPX_MEM_CUDA) {
        HX_CHECK(c && c->dev >= 0, "region %s: GPU memory without an open device", name);
        r->gpu = c;
        void *p = NULL;
        size_t skew = 1000 + (size_t)(seed % 16); /* transports must cope with unaligned regions */
        tcpx_status st = tcpx_gpu_malloc(c->g, size + skew, &p);
        if (st != TCPX_OK)
            HX_FAIL("tcpx_gpu_malloc(%zu bytes on GPU %d) for region %s returned %s: %s", size + skew, c->dev, name,
                    tcpx_strerror(st), tcpx_last_error());
        r->alloc = p;
        r->ptr = (uint8_t *)p + skew;
    } else {
        r->map = (size + 4095) & ~(size_t)4095;
        void *p = mmap(NULL, r->map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        HX_CHECK(p != MAP_FAILED, "mmap %zu bytes for region %s: %s", size, name, strerror(errno));
        r->ptr = p;
    }
    gt_fill(r, 0, size, seed);
    tcpx_status st = tcpx_mem_register(s, r->ptr, size, kind, &r->id);
    if (st != TCPX_OK)
        HX_FAIL("tcpx_mem_register(region %s, %zu bytes of %s memory) returned %s: %s", name, size,
                gt_kind_name(kind), tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(r->id != 0, "tcpx_mem_register returned id 0 for region %s", name);
    tcpx_mem_info_t info;
    HX_OK(tcpx_mem_info(s, r->id, &info));
    HX_CHECK(info.ptr == r->ptr && info.size == size && info.kind == kind && info.id == r->id,
             "tcpx_mem_info(region %s) = {%p, %zu, kind %d, id %" PRIu64 "}, registered {%p, %zu, kind %d, id %" PRIu64
             "}",
             name, info.ptr, info.size, (int)info.kind, info.id, (void *)r->ptr, size, (int)kind, r->id);
    int want_dev = kind == TCPX_MEM_CUDA ? c->dev : -1;
    HX_CHECK(info.device == want_dev, "tcpx_mem_info(region %s).device = %d, expected %d", name, info.device,
             want_dev);
}

void gt_region_fini(tcpx_session *s, gt_region *r)
{
    if (!r->ptr) return;
    if (s && r->id) {
        tcpx_status st = tcpx_mem_deregister(s, r->id);
        if (st != TCPX_OK)
            HX_FAIL("tcpx_mem_deregister(region %s) returned %s: %s", r->name, tcpx_strerror(st), tcpx_last_error());
    }
    if (r->kind == TCPX_MEM_CUDA) tcpx_gpu_free(r->gpu->g, r->alloc);
    else munmap(r->ptr, r->map);
    r->ptr = NULL;
    r->id = 0;
}

void gt_fill(gt_region *r, size_t off, size_t n, uint64_t seed)
{
    if (n == 0) return;
    HX_CHECK(off <= r->size && n <= r->size - off, "gt_fill past the end of region %s", r->name);
    if (r->kind == TCPX_MEM_HOST) {
        tcpx_fill_random_host(r->ptr + off, n, seed);
        return;
    }
    tcpx_status st = tcpx_gpu_fill_random(r->gpu->st, r->ptr + off, n, seed);
    if (st == TCPX_OK) st = tcpx_gpu_stream_sync(r->gpu->st);
    if (st != TCPX_OK)
        HX_FAIL("filling %zu bytes at offset %zu of GPU region %s: %s: %s", n, off, r->name, tcpx_strerror(st),
                tcpx_last_error());
}

uint64_t gt_first_bad(gt_region *r, size_t off, size_t n, uint64_t seed)
{
    if (n == 0) return UINT64_MAX;
    HX_CHECK(off <= r->size && n <= r->size - off, "gt_first_bad past the end of region %s", r->name);
    if (r->kind == TCPX_MEM_HOST) return tcpx_compare_random_host(r->ptr + off, n, seed);
    uint64_t bad = UINT64_MAX;
    tcpx_status st = tcpx_gpu_compare_random(r->gpu->st, r->ptr + off, n, seed, &bad);
    if (st != TCPX_OK)
        HX_FAIL("comparing %zu bytes at offset %zu of GPU region %s: %s: %s", n, off, r->name, tcpx_strerror(st),
                tcpx_last_error());
    return bad;
}

static uint8_t expected_byte(uint64_t seed, uint64_t j)
{
    uint64_t w = tcpx_random_word(tcpx_random_key(seed), j / 8);
    return (uint8_t)(w >> (8 * (j % 8)));
}

void gt_check_at(const char *file, int line, const char *what, gt_region *r, size_t off, size_t n, uint64_t seed)
{
    uint64_t bad = gt_first_bad(r, off, n, seed);
    if (bad == UINT64_MAX) return;
    uint8_t got[16];
    size_t k = n - (size_t)bad < sizeof got ? n - (size_t)bad : sizeof got;
    if (r->kind == TCPX_MEM_HOST) {
        memcpy(got, r->ptr + off + bad, k);
    } else {
        tcpx_status st = tcpx_gpu_memcpy(r->gpu->g, got, r->ptr + off + bad, k);
        if (st != TCPX_OK) k = 0;
    }
    char g[64] = "", e[64] = "";
    for (size_t i = 0; i < k; i++) {
        snprintf(g + 3 * i, sizeof g - 3 * i, "%02x ", got[i]);
        snprintf(e + 3 * i, sizeof e - 3 * i, "%02x ", expected_byte(seed, bad + i));
    }
    hx_fail_at(file, line,
               "%s: byte %" PRIu64 " of %zu (offset %zu of %s region %s) differs: got [%s] expected [%s]", what, bad,
               n, off + (size_t)bad, gt_kind_name(r->kind), r->name, g, e);
}

size_t gt_odd_offset(hx_rng *rng, size_t cap, size_t size)
{
    HX_CHECK(cap >= size + 2, "gt_odd_offset: %zu bytes do not fit at an odd offset of %zu", size, cap);
    size_t count = (cap - size + 1) / 2;   /* odd values 1, 3, ... <= cap - size */
    return 2 * (size_t)hx_rng_below(rng, count) + 1;
}

void gt_target_prepare(gt_target *t, gt_region *r, size_t off, size_t size, uint64_t gseed)
{
    HX_CHECK(off <= r->size && size <= r->size - off, "target [%zu, +%zu) out of region %s", off, size, r->name);
    t->r = r;
    t->off = off;
    t->size = size;
    if (r->kind == TCPX_MEM_CUDA || r->size <= 32 * GT_MiB) {
        t->lo = 0;
        t->hi = r->size;
    } else {
        const size_t W = GT_MiB;
        t->lo = off > W ? off - W : 0;
        t->hi = r->size - (off + size) > W ? off + size + W : r->size;
    }
    t->g1 = hx_mix(gseed, 1);
    t->g2 = hx_mix(gseed, 2);
    t->poison = hx_mix(gseed, 3);
    gt_fill(r, t->lo, off - t->lo, t->g1);
    gt_fill(r, off, size, t->poison);
    gt_fill(r, off + size, t->hi - off - size, t->g2);
}

void gt_target_check(gt_target *t, uint64_t seed, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s: received bytes [%zu, +%zu)", what, t->off, t->size);
    GT_CHECK_DATA(msg, t->r, t->off, t->size, seed);
    snprintf(msg, sizeof msg, "%s: guard bytes [%zu, %zu) before the target", what, t->lo, t->off);
    GT_CHECK_DATA(msg, t->r, t->lo, t->off - t->lo, t->g1);
    snprintf(msg, sizeof msg, "%s: guard bytes [%zu, %zu) after the target", what, t->off + t->size, t->hi);
    GT_CHECK_DATA(msg, t->r, t->off + t->size, t->hi - t->off - t->size, t->g2);
}

/* ---------------------------------------------------------------- layouts */

void gt_layout_init(gt_layout *L, uint64_t gseed)
{
    memset(L, 0, sizeof *L);
    L->gseed = gseed;
}

int gt_layout_add_region(gt_layout *L, gt_region *r)
{
    HX_CHECK(L->nregs < 4, "layout: too many regions");
    L->regs[L->nregs] = r;
    L->cursor[L->nregs] = 0;
    return L->nregs++;
}

static void add_gap(gt_layout *L, gt_region *r, size_t off, size_t len)
{
    if (L->ngaps == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 64;
        L->gaps = realloc(L->gaps, L->cap * sizeof *L->gaps);
        HX_CHECK(L->gaps, "out of memory");
    }
    gt_gap *g = &L->gaps[L->ngaps];
    g->r = r;
    g->off = off;
    g->len = len;
    g->seed = hx_mix(L->gseed, 0x6A90000 + L->ngaps);
    L->ngaps++;
}

size_t gt_layout_place(gt_layout *L, hx_rng *rng, int ri, size_t size)
{
    HX_CHECK(ri >= 0 && ri < L->nregs, "layout: bad region index %d", ri);
    gt_region *r = L->regs[ri];
    size_t cur = L->cursor[ri];
    size_t off = cur + 1 + (size_t)hx_rng_below(rng, 4096);
    if (off % 2 == 0) off++;
    HX_CHECK(off + size <= r->size, "layout: region %s (%zu bytes) is too small for a message of %zu at %zu",
             r->name, r->size, size, off);
    add_gap(L, r, cur, off - cur);
    L->cursor[ri] = off + size;
    return off;
}

void gt_layout_finish(gt_layout *L)
{
    for (int i = 0; i < L->nregs; i++)
        if (L->cursor[i] < L->regs[i]->size) add_gap(L, L->regs[i], L->cursor[i], L->regs[i]->size - L->cursor[i]);
}

void gt_layout_fill_gaps(gt_layout *L)
{
    for (size_t i = 0; i < L->ngaps; i++) gt_fill(L->gaps[i].r, L->gaps[i].off, L->gaps[i].len, L->gaps[i].seed);
}

void gt_layout_check_gaps(gt_layout *L, const char *what)
{
    char msg[300];
    for (size_t i = 0; i < L->ngaps; i++) {
        gt_gap *g = &L->gaps[i];
        snprintf(msg, sizeof msg, "%s: guard gap [%zu, +%zu) between messages", what, g->off, g->len);
        GT_CHECK_DATA(msg, g->r, g->off, g->len, g->seed);
    }
}

void gt_layout_free(gt_layout *L)
{
    free(L->gaps);
    memset(L, 0, sizeof *L);
}

/* ---------------------------------------------------------------- sessions */

tcpx_session *gt_session(const gt_sess_opts *o)
{
    tcpx_config cfg;
    tcpx_config_init(&cfg);
    cfg.gpu_id = o->gpu;
    cfg.channels = o->channels ? o->channels : 4;
    /* HX_TRANSPORT runs the test over an ncclNet plugin (the devmem emulator). */
    const char *transport = getenv("HX_TRANSPORT");
    int plugin = transport && *transport;
    snprintf(cfg.transport, sizeof cfg.transport, "%s", plugin ? transport : "socket");
    snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
    snprintf(cfg.name, sizeof cfg.name, "%s", o->name);
    if (o->chunk) cfg.chunk_bytes = o->chunk;
    if (o->slots) {
        /* the environment wins over the code: this run is about the slot count */
        unsetenv("TCPX_STAGING_SLOTS");
        cfg.staging_slots = o->slots;
    }
    cfg.connect_timeout_ms = HX_MS(o->connect_timeout_ms ? o->connect_timeout_ms : 30000);
    cfg.peer_timeout_ms = o->peer_timeout_ms ? o->peer_timeout_ms : 20000;
    if (o->no_progress_thread) cfg.progress_thread = 0;
    tcpx_session *s = NULL;
    tcpx_status st = tcpx_session_create(&cfg, &s);
    if (st != TCPX_OK)
        HX_FAIL("tcpx_session_create(name %s, gpu_id %d, channels %d, chunk %zu, staging_slots %d) returned %s: %s",
                o->name, cfg.gpu_id, cfg.channels, cfg.chunk_bytes, cfg.staging_slots, tcpx_strerror(st),
                tcpx_last_error());
    HX_CHECK(s, "tcpx_session_create returned OK but no session");
    const tcpx_config *e = tcpx_session_config(s);
    HX_CHECK(e, "tcpx_session_config returned NULL");
    HX_CHECK(e->gpu_id == o->gpu, "session %s has gpu_id %d, asked for %d", o->name, e->gpu_id, o->gpu);
    HX_CHECK(e->channels == cfg.channels, "session %s has %d channels, asked for %d", o->name, e->channels,
             cfg.channels);
    HX_CHECK(!o->chunk || e->chunk_bytes == o->chunk, "session %s has chunk_bytes %zu, asked for %zu", o->name,
             e->chunk_bytes, o->chunk);
    HX_CHECK(!o->slots || e->staging_slots == o->slots, "session %s has staging_slots %d, asked for %d", o->name,
             e->staging_slots, o->slots);
    HX_CHECK(plugin == (strcmp(tcpx_session_transport(s), "socket") != 0),
             "session %s uses transport \"%s\", expected %s", o->name, tcpx_session_transport(s),
             plugin ? transport : "\"socket\"");
    return s;
}

void gt_session_destroy(tcpx_session *s, int bound_ms)
{
    uint64_t t0 = hx_now_ms();
    tcpx_session_destroy(s);
    uint64_t ms = hx_now_ms() - t0;
    HX_CHECK(ms <= (uint64_t)HX_MS(bound_ms), "tcpx_session_destroy took %" PRIu64 " ms (bound %d ms)", ms,
             HX_MS(bound_ms));
}
