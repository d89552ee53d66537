/* fake_net.c - broken ncclNet plugins for test_net_plugin's error cases.
 * Built once per FAKE_* mode (tests/plugins/CMakeLists.txt):
 *   FAKE_NOSYM     no ncclNetPlugin symbol at all
 *   FAKE_V5ONLY    only ncclNetPlugin_v5, a version the loader does not take
 *   FAKE_INITFAIL  a v8 table whose init returns ncclSystemError
 *   FAKE_NODEV     a v9 table that reports zero devices
 *   FAKE_MISSING   a v8 table without isend
 */
#include <stddef.h>

#include "net/nccl_net_abi.h"

#define EXPORT __attribute__((visibility("default")))

#if defined(FAKE_NOSYM)

EXPORT int fake_net_nothing_here(void) { return 0; }

#elif defined(FAKE_V5ONLY)

/* The layout does not matter: the loader must not read it. */
EXPORT const struct {
    const char *name;
    void *fns[20];
} ncclNetPlugin_v5 = {"FakeV5", {0}};

#else

static tcpx_ncclResult_t nope(void) { return TCPX_NCCL_INTERNAL_ERROR; }
#define NOPE(type) ((type)(void (*)(void))nope)

#if defined(FAKE_INITFAIL)
static tcpx_ncclResult_t f_init(tcpx_ncclDebugLogger_t log) { return TCPX_NCCL_SYSTEM_ERROR; }
#else
static tcpx_ncclResult_t f_init(tcpx_ncclDebugLogger_t log) { return TCPX_NCCL_SUCCESS; }
#endif

static tcpx_ncclResult_t f_devices(int *ndev)
{
    *ndev = 0;
    return TCPX_NCCL_SUCCESS;
}

#if defined(FAKE_NODEV)

EXPORT const tcpx_ncclNet_v9_t ncclNetPlugin_v9 = {
    .name = "FakeNoDev",
    .init = f_init,
    .devices = f_devices,
    .getProperties = NOPE(tcpx_ncclResult_t(*)(int, tcpx_ncclNetProperties_v9_t *)),
    .listen = NOPE(tcpx_ncclResult_t(*)(int, void *, void **)),
    .connect = NOPE(tcpx_ncclResult_t(*)(int, void *, void **, tcpx_ncclNetDeviceHandle_v7_t **)),
    .accept = NOPE(tcpx_ncclResult_t(*)(void *, void **, tcpx_ncclNetDeviceHandle_v7_t **)),
    .regMr = NOPE(tcpx_ncclResult_t(*)(void *, void *, size_t, int, void **)),
    .deregMr = NOPE(tcpx_ncclResult_t(*)(void *, void *)),
    .isend = NOPE(tcpx_ncclResult_t(*)(void *, void *, size_t, int, void *, void **)),
    .irecv = NOPE(tcpx_ncclResult_t(*)(void *, int, void **, size_t *, int *, void **, void **)),
    .test = NOPE(tcpx_ncclResult_t(*)(void *, int *, int *)),
    .closeSend = NOPE(tcpx_ncclResult_t(*)(void *)),
    .closeRecv = NOPE(tcpx_ncclResult_t(*)(void *)),
    .closeListen = NOPE(tcpx_ncclResult_t(*)(void *)),
};

#else /* FAKE_INITFAIL, FAKE_MISSING: v8 */

EXPORT const tcpx_ncclNet_v8_t ncclNetPlugin_v8 = {
#if defined(FAKE_INITFAIL)
    .name = "FakeInitFail",
#else
    .name = "FakeMissing",
#endif
    .init = f_init,
    .devices = f_devices,
    .getProperties = NOPE(tcpx_ncclResult_t(*)(int, tcpx_ncclNetProperties_v8_t *)),
    .listen = NOPE(tcpx_ncclResult_t(*)(int, void *, void **)),
    .connect = NOPE(tcpx_ncclResult_t(*)(int, void *, void **, tcpx_ncclNetDeviceHandle_v7_t **)),
    .accept = NOPE(tcpx_ncclResult_t(*)(void *, void **, tcpx_ncclNetDeviceHandle_v7_t **)),
    .regMr = NOPE(tcpx_ncclResult_t(*)(void *, void *, size_t, int, void **)),
    .deregMr = NOPE(tcpx_ncclResult_t(*)(void *, void *)),
#if defined(FAKE_MISSING)
    .isend = NULL,
#else
    .isend = NOPE(tcpx_ncclResult_t(*)(void *, void *, int, int, void *, void **)),
#endif
    .irecv = NOPE(tcpx_ncclResult_t(*)(void *, int, void **, int *, int *, void **, void **)),
    .test = NOPE(tcpx_ncclResult_t(*)(void *, int *, int *)),
    .closeSend = NOPE(tcpx_ncclResult_t(*)(void *)),
    .closeRecv = NOPE(tcpx_ncclResult_t(*)(void *)),
    .closeListen = NOPE(tcpx_ncclResult_t(*)(void *)),
};

#endif
#endif
