/*
 * gpu_onesided - one-sided WRITE and READ lists with GPU memory on either
 * side: local host/GPU x remote host/GPU, A initiating, B the passive target.
 *
 * For each of the four combinations: lists of 1, 7, 200 and 1000 blocks of
 * random sizes (1 B .. 1 MiB, zero-size ones among them), then one list of
 * 1024 blocks of 4 KiB, each as a WRITE with a notification (B checks every
 * block when it arrives) and as a READ (A checks every block). Blocks sit at
 * odd offsets with guard gaps between them on both sides; every gap is
 * checked after every list. Runs over the socket transport (GPU staging) and
 * over the devmem emulator (device unpack) with HX_TRANSPORT. Over the socket
 * transport B's session is created with gpu_id -2 (its GPU is that of its
 * first GPU registration).
 *
 *   gpu_onesided [--channels N] [--chunk BYTES]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gt_common.h"

#define T_WAIT 60000
#define REGION (48 * GT_MiB)

static int fds[2];
static int g_channels = 4;
static size_t g_chunk;
static gt_probe g_probe;

typedef struct list {
    size_t n;
    size_t *size, *loff, *roff;
    uint64_t *seed;
} list;

/* Both processes build the same list from the shared seed and lay it out
 * in their own regions (layout L over the region of kind `kind`). */
static void make_list(list *l, uint64_t salt, size_t n, int fixed4k, gt_layout *loc, int li, gt_layout *rem, int ri)
{
    hx_rng r;
    hx_rng_seed(&r, hx_mix(hx_seed, salt));
    l->n = n;
    l->size = calloc(n, sizeof *l->size);
    l->loff = calloc(n, sizeof *l->loff);
    l->roff = calloc(n, sizeof *l->roff);
    l->seed = calloc(n, sizeof *l->seed);
    hx_rng lr, rr;
    hx_rng_seed(&lr, hx_mix(hx_seed, salt + 1));
    hx_rng_seed(&rr, hx_mix(hx_seed, salt + 2));
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)hx_rng_below(&r, 8);
        l->size[i] = fixed4k ? 4096 : k == 0 ? 0 : k == 1 ? 1 + (size_t)hx_rng_below(&r, 15)
                                 : k < 6 ? 1 + (size_t)hx_rng_below(&r, 30000) : 1 + (size_t)hx_rng_below(&r, GT_MiB);
        if (n >= 200 && l->size[i] > 30000) l->size[i] = 30000;
        l->seed[i] = hx_mix(hx_seed, salt * 10007 + i);
        l->loff[i] = gt_layout_place(loc, &lr, li, l->size[i]);
        l->roff[i] = gt_layout_place(rem, &rr, ri, l->size[i]);
    }
}

static void list_free(list *l)
{
    free(l->size);
    free(l->loff);
    free(l->roff);
    free(l->seed);
}

static const tcpx_mem_kind kinds[2] = {TCPX_MEM_HOST, TCPX_MEM_CUDA};

static int proc(void *arg)
{
    int is_a = arg != NULL;
    int fd = is_a ? fds[0] : fds[1];
    gt_gpu gpu;
    gt_gpu_open(&gpu, is_a ? g_probe.gpu_a : g_probe.gpu_b);
    /* Over the socket transport B takes the GPU of its first GPU registration
     * (gpu_id -2); a device-unpack transport needs its GPU from the start. */
    const char *tr = getenv("HX_TRANSPORT");
    int lazy = !is_a && !(tr && *tr);
    gt_sess_opts so = {.name = is_a ? "A" : "B", .gpu = lazy ? -2 : gpu.dev, .channels = g_channels, .chunk = g_chunk};
    tcpx_session *s = gt_session(&so);
    gt_region reg[2];
    for (int k = 0; k < 2; k++) gt_region_init(s, &gpu, &reg[k], kinds[k], REGION, 0x77 + (uint64_t)k, k ? "GPU" : "host");
    if (is_a) hx_connect_to(s, "B", fd);
    else hx_accept_from(s, "A", fd);
    tcpx_memdesc remote[2];
    for (int k = 0; k < 2; k++) {
        if (is_a) hx_recv_memdesc(fd, &remote[k]);
        else hx_send_memdesc(s, reg[k].id, fd);
    }
    const size_t counts[] = {1, 7, 200, 1000, 1024};
    uint64_t salt = 1;
    for (int lk = 0; lk < 2; lk++)
        for (int rk = 0; rk < 2; rk++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
                for (int write = 1; write >= 0; write--, salt += 10) {
                    char what[128];
                    snprintf(what, sizeof what, "%s of %zu blocks%s, %s -> %s", write ? "WRITE" : "READ", counts[c],
                             c == 4 ? " of 4 KiB" : "", gt_kind_name(kinds[write ? lk : rk]),
                             gt_kind_name(kinds[write ? rk : lk]));
                    /* my side: local kind lk for A, remote kind rk for B */
                    gt_region *mine = &reg[is_a ? lk : rk];
                    /* Both sides compute both layouts (the same offsets
                     * come out); each keeps its own for the gap checks. */
                    gt_layout L, other;
                    gt_region shadow = *mine;
                    gt_layout_init(&L, hx_mix(hx_seed, salt ^ (is_a ? 0xA : 0xB)));
                    gt_layout_init(&other, 0);
                    gt_layout_add_region(&L, mine);
                    gt_layout_add_region(&other, &shadow);
                    list l;
                    make_list(&l, salt, counts[c], c == 4, is_a ? &L : &other, 0, is_a ? &other : &L, 0);
                    gt_layout_free(&other);
                    gt_layout_finish(&L);
                    gt_layout_fill_gaps(&L);
                    size_t *off = is_a ? l.loff : l.roff;
                    int i_send = write == is_a; /* whose blocks hold the data */
                    for (size_t i = 0; i < l.n; i++)
                        gt_fill(mine, off[i], l.size[i], i_send ? l.seed[i] : hx_mix(l.seed[i], 0xBAD));
                    gt_barrier(fd, "filled");
                    if (is_a) {
                        tcpx_block *b = calloc(l.n, sizeof *b);
                        for (size_t i = 0; i < l.n; i++)
                            b[i] = (tcpx_block){mine->id, l.loff[i], &remote[rk], l.roff[i], l.size[i]};
                        tcpx_xfer *x;
                        HX_OK(tcpx_xfer_create(s, "B", &x));
                        uint64_t note = salt;
                        tcpx_notif_msg nm = {&note, sizeof note};
                        if (write) HX_OK(tcpx_xfer_post_write_list(x, l.n, b, &nm));
                        else HX_OK(tcpx_xfer_post_read_list(x, l.n, b, NULL));
                        HX_WAIT_OK(x, T_WAIT, what);
                        tcpx_xfer_release(x);
                        free(b);
                    } else if (write) {
                        uint64_t note = 0;
                        HX_CHECK(hx_wait_notif(s, "A", &note, sizeof note, T_WAIT) == sizeof note && note == salt,
                                 "%s: notification", what);
                    }
                    gt_barrier(fd, "moved");
                    if (!i_send) { /* the landing side checks every block and gap */
                        for (size_t i = 0; i < l.n; i++) {
                            char m[200];
                            snprintf(m, sizeof m, "%s: block %zu (%zu bytes at %zu)", what, i, l.size[i], off[i]);
                            GT_CHECK_DATA(m, mine, off[i], l.size[i], l.seed[i]);
                        }
                    }
                    gt_layout_check_gaps(&L, what);
                    gt_barrier(fd, "checked");
                    list_free(&l);
                    gt_layout_free(&L);
                    if (is_a && c == 4) hx_log("%s: OK", what);
                }
    for (int k = 0; k < 2; k++) gt_region_fini(s, &reg[k]);
    gt_session_destroy(s, HX_MS(10000));
    gt_gpu_close(&gpu);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--channels") && i + 1 < argc) g_channels = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) g_chunk = strtoul(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: gpu_onesided [--channels N] [--chunk BYTES]\n");
            return 2;
        }
    }
    hx_init("gpu_onesided", 500);
    gt_probe_or_skip(&g_probe);
    hx_pair(fds);
    pid_t a = hx_spawn("A", 480, proc, (void *)1);
    pid_t b = hx_spawn("B", 480, proc, NULL);
    pid_t all[2] = {a, b};
    hx_wait_all(all, 2, 490000);
    hx_log("PASS");
    return 0;
}
