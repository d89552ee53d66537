/*
 * gpu_errors - GPU memory that a session must refuse, and GPU ids that do
 * not exist. One process (no peer needed); every refusal must come with a
 * sentence in tcpx_last_error().
 *
 *   1. a host-only session (gpu_id -1) refuses TCPX_MEM_CUDA registration
 *      with TCPX_ERR_UNSUPPORTED (device memory, and host memory alike), and
 *      still registers host memory;
 *   2. a session on GPU 0 refuses as TCPX_MEM_CUDA: malloc'd host memory,
 *      pinned host memory, NULL, size 0 (TCPX_ERR_INVALID), and ranges that
 *      run past the end of the cudaMalloc allocation (TCPX_ERR_INVALID); it
 *      accepts the whole allocation, a sub-range at an odd address, and host
 *      memory beside them (tcpx_mem_info says kind and device);
 *   3. with two or more GPUs: memory of GPU 1 is refused by the session on
 *      GPU 0 (TCPX_ERR_INVALID) and accepted by a session on GPU 1;
 *   4. tcpx_session_create with gpu_id = device count (and 1024) fails with
 *      TCPX_ERR_INVALID or TCPX_ERR_UNSUPPORTED and a sentence, returning no
 *      session; a GPU session created afterwards works;
 *   5. TCPX_GPU in the environment overrides cfg.gpu_id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gt_common.h"

#define ALLOC (2 * GT_MiB)   /* a multiple of the allocation granularity */

static void expect_reg(tcpx_session *s, void *ptr, size_t size, tcpx_mem_kind kind, tcpx_status want,
                       const char *what)
{
    tcpx_mem_id id = 0;
    tcpx_status st = tcpx_mem_register(s, ptr, size, kind, &id);
    if (st != want)
        HX_FAIL("%s: tcpx_mem_register(%p, %zu, %s) returned %s, expected %s: %s", what, ptr, size,
                gt_kind_name(kind), tcpx_strerror(st), tcpx_strerror(want), tcpx_last_error());
    if (want == TCPX_OK) {
        HX_CHECK(id != 0, "%s: registration returned id 0", what);
        tcpx_mem_info_t info;
        HX_OK(tcpx_mem_info(s, id, &info));
        int dev = kind == TCPX_MEM_CUDA ? tcpx_session_config(s)->gpu_id : -1;
        HX_CHECK(info.ptr == ptr && info.size == size && info.kind == kind && info.device == dev,
                 "%s: tcpx_mem_info = {%p, %zu, kind %d, device %d}, expected {%p, %zu, kind %d, device %d}", what,
                 info.ptr, info.size, (int)info.kind, info.device, ptr, size, (int)kind, dev);
        HX_OK(tcpx_mem_deregister(s, id));
        HX_EXPECT(tcpx_mem_deregister(s, id), TCPX_ERR_NOT_FOUND);
        hx_log("accepted: %s", what);
    } else {
        HX_CHECK(tcpx_last_error()[0] != '\0', "%s: %s without a sentence in tcpx_last_error()", what,
                 tcpx_strerror(st));
        hx_log("refused as expected: %s: %s: %s", what, tcpx_strerror(st), tcpx_last_error());
    }
}

static tcpx_session *session_on(int gpu, const char *name)
{
    gt_sess_opts o = {.name = name, .gpu = gpu, .channels = 2};
    return gt_session(&o);
}

static void expect_create_fails(int gpu_id)
{
    tcpx_config cfg;
    tcpx_config_init(&cfg);
    cfg.gpu_id = gpu_id;
    snprintf(cfg.transport, sizeof cfg.transport, "socket");
    snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
    snprintf(cfg.name, sizeof cfg.name, "bad-gpu");
    tcpx_session *s = (tcpx_session *)(uintptr_t)1;   /* must be overwritten */
    tcpx_status st = tcpx_session_create(&cfg, &s);
    if (st == TCPX_OK) {
        tcpx_session_destroy(s);
        HX_FAIL("tcpx_session_create with gpu_id %d (no such device) returned TCPX_OK", gpu_id);
    }
    HX_CHECK(st == TCPX_ERR_INVALID || st == TCPX_ERR_UNSUPPORTED,
             "tcpx_session_create with gpu_id %d returned %s, expected TCPX_ERR_INVALID or TCPX_ERR_UNSUPPORTED: %s",
             gpu_id, tcpx_strerror(st), tcpx_last_error());
    HX_CHECK(tcpx_last_error()[0] != '\0', "tcpx_session_create with gpu_id %d failed without a sentence", gpu_id);
    HX_CHECK(s == NULL, "tcpx_session_create with gpu_id %d failed but left *out = %p", gpu_id, (void *)s);
    hx_log("refused as expected: session on GPU %d: %s: %s", gpu_id, tcpx_strerror(st), tcpx_last_error());
}

int main(void)
{
    hx_init("gpu_errors", 110);
    int n = 0;
    tcpx_status st = tcpx_gpu_device_count(&n);
    if (st != TCPX_OK) gt_skip("no CUDA device: %s", tcpx_last_error());
    hx_log("%d CUDA device%s", n, n == 1 ? "" : "s");

    gt_gpu g0;
    gt_gpu_open(&g0, 0);
    uint8_t *d = NULL;
    HX_OK(tcpx_gpu_malloc(g0.g, ALLOC, (void **)&d));
    HX_OK(tcpx_gpu_memset(g0.g, d, 0x5a, ALLOC));
    size_t hsize = GT_MiB;
    uint8_t *h = malloc(hsize);
    HX_CHECK(h, "out of memory");
    memset(h, 0xa5, hsize);
    void *pinned = NULL;
    HX_OK(tcpx_gpu_host_alloc(g0.g, GT_MiB, &pinned));

    /* 1. host-only session */
    tcpx_session *hs = session_on(-1, "host-only");
    expect_reg(hs, d, ALLOC, TCPX_MEM_CUDA, TCPX_ERR_UNSUPPORTED, "host-only session, GPU memory as CUDA");
    expect_reg(hs, h, hsize, TCPX_MEM_CUDA, TCPX_ERR_UNSUPPORTED, "host-only session, host memory as CUDA");
    expect_reg(hs, h, hsize, TCPX_MEM_HOST, TCPX_OK, "host-only session, host memory as host");
    gt_session_destroy(hs, 10000);

    /* 2. session on GPU 0 */
    tcpx_session *s = session_on(0, "gpu0");
    expect_reg(s, h, hsize, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, malloc'd host memory as CUDA");
    expect_reg(s, pinned, GT_MiB, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, pinned host memory as CUDA");
    expect_reg(s, NULL, ALLOC, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, NULL as CUDA");
    expect_reg(s, d, 0, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, size 0");
    expect_reg(s, d, ALLOC + 1, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, one byte past the allocation");
    expect_reg(s, d + 1, ALLOC, TCPX_MEM_CUDA, TCPX_ERR_INVALID,
               "GPU session, odd start running one byte past the allocation");
    expect_reg(s, d + ALLOC - 1, 2, TCPX_MEM_CUDA, TCPX_ERR_INVALID,
               "GPU session, last byte of the allocation plus one");
    expect_reg(s, d, 2 * ALLOC, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "GPU session, twice the allocation");
    expect_reg(s, d, ALLOC, TCPX_MEM_CUDA, TCPX_OK, "GPU session, the whole allocation");
    expect_reg(s, d + 1, ALLOC - 1, TCPX_MEM_CUDA, TCPX_OK, "GPU session, odd sub-range up to the end");
    expect_reg(s, d + ALLOC - 1, 1, TCPX_MEM_CUDA, TCPX_OK, "GPU session, the last byte");
    expect_reg(s, h, hsize, TCPX_MEM_HOST, TCPX_OK, "GPU session, host memory as host");
    {
        /* host and CUDA registrations side by side */
        tcpx_mem_id a = 0, b = 0;
        HX_OK(tcpx_mem_register(s, d, ALLOC, TCPX_MEM_CUDA, &a));
        HX_OK(tcpx_mem_register(s, h, hsize, TCPX_MEM_HOST, &b));
        HX_CHECK(a && b && a != b, "two registrations got ids %" PRIu64 " and %" PRIu64, a, b);
        tcpx_memdesc md;
        HX_OK(tcpx_memdesc_get(s, a, &md));
        HX_CHECK(md.kind == TCPX_MEM_CUDA && md.size == ALLOC && md.addr == (uint64_t)(uintptr_t)d && md.id == a,
                 "memdesc of the CUDA registration: kind %d size %" PRIu64 " addr 0x%" PRIx64, (int)md.kind, md.size,
                 md.addr);
        HX_OK(tcpx_mem_deregister(s, b));
        HX_OK(tcpx_mem_deregister(s, a));
    }

    /* 3. memory of another device */
    if (n >= 2) {
        gt_gpu g1;
        gt_gpu_open(&g1, 1);
        uint8_t *d1 = NULL;
        HX_OK(tcpx_gpu_malloc(g1.g, ALLOC, (void **)&d1));
        expect_reg(s, d1, ALLOC, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "session on GPU 0, memory of GPU 1");
        tcpx_session *s1 = session_on(1, "gpu1");
        expect_reg(s1, d1, ALLOC, TCPX_MEM_CUDA, TCPX_OK, "session on GPU 1, memory of GPU 1");
        expect_reg(s1, d, ALLOC, TCPX_MEM_CUDA, TCPX_ERR_INVALID, "session on GPU 1, memory of GPU 0");
        gt_session_destroy(s1, 10000);
        tcpx_gpu_free(g1.g, d1);
        gt_gpu_close(&g1);
    } else {
        hx_log("one CUDA device: the other-device case is not run");
    }
    gt_session_destroy(s, 10000);

    /* 4. GPU ids that do not exist */
    expect_create_fails(n);
    expect_create_fails(1024);
    tcpx_session *again = session_on(0, "gpu0-again");
    expect_reg(again, d, ALLOC, TCPX_MEM_CUDA, TCPX_OK, "a GPU session created after the failures");
    gt_session_destroy(again, 10000);

    /* 5. TCPX_GPU overrides cfg.gpu_id */
    {
        tcpx_config cfg;
        tcpx_config_init(&cfg);
        snprintf(cfg.transport, sizeof cfg.transport, "socket");
        snprintf(cfg.bind_addr, sizeof cfg.bind_addr, "127.0.0.1");
        snprintf(cfg.name, sizeof cfg.name, "env-gpu");
        cfg.gpu_id = -1;
        HX_CHECK(setenv("TCPX_GPU", "0", 1) == 0, "setenv");
        tcpx_session *es = NULL;
        st = tcpx_session_create(&cfg, &es);
        unsetenv("TCPX_GPU");
        if (st != TCPX_OK) HX_FAIL("session with TCPX_GPU=0 returned %s: %s", tcpx_strerror(st), tcpx_last_error());
        HX_CHECK(tcpx_session_config(es)->gpu_id == 0, "TCPX_GPU=0 gave gpu_id %d", tcpx_session_config(es)->gpu_id);
        expect_reg(es, d, ALLOC, TCPX_MEM_CUDA, TCPX_OK, "session made GPU by TCPX_GPU=0");
        gt_session_destroy(es, 10000);

        char v[16];
        snprintf(v, sizeof v, "%d", n);
        HX_CHECK(setenv("TCPX_GPU", v, 1) == 0, "setenv");
        cfg.gpu_id = 0;
        es = NULL;
        st = tcpx_session_create(&cfg, &es);
        unsetenv("TCPX_GPU");
        if (st == TCPX_OK) {
            tcpx_session_destroy(es);
            HX_FAIL("TCPX_GPU=%d (no such device) was ignored: the session was created", n);
        }
        HX_CHECK(st == TCPX_ERR_INVALID || st == TCPX_ERR_UNSUPPORTED, "TCPX_GPU=%d: %s: %s", n, tcpx_strerror(st),
                 tcpx_last_error());
        hx_log("refused as expected: TCPX_GPU=%d: %s: %s", n, tcpx_strerror(st), tcpx_last_error());
    }

    tcpx_gpu_host_free(g0.g, pinned);
    tcpx_gpu_free(g0.g, d);
    free(h);
    gt_gpu_close(&g0);
    hx_log("PASS");
    return 0;
}
