/* devmem_emu.c - the devmem emulator's ncclNet v7 table: init, device
 * properties, memory registration, test() and the violation counter. The
 * contract it emulates is described in devmem_emu.h; connections are in
 * devmem_emu_conn.c, sends in devmem_emu_send.c, receives in
 * devmem_emu_recv.c and devmem_emu_place.c, memory in devmem_emu_mem.c and
 * devmem_emu_pool.c.
 *
 * Exports: ncclNetPlugin_v7 and devmem_emu_violations().
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devmem_emu.h"

tcpx_ncclDebugLogger_t emu_logger;
static atomic_int g_violations;
static pthread_mutex_t g_init_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_inited;
int emu_report_sizes = 1;

void emu_violation(void) { atomic_fetch_add(&g_violations, 1); }

/* How many contract violations this process has committed so far. */
EMU_EXPORT int devmem_emu_violations(void) { return atomic_load(&g_violations); }

static tcpx_ncclResult_t e_init(tcpx_ncclDebugLogger_t log)
{
    char why[160];
    pthread_mutex_lock(&g_init_mu);
    emu_logger = log;
    if (!g_inited) {
        emu_seed_init();
        emu_mem_select(why, sizeof why);
        const char *ns = getenv("DEVMEM_EMU_NO_SIZES");
        emu_report_sizes = !(ns && *ns && strcmp(ns, "0"));
        g_inited = 1;
        EMU_INFO("NET/DevmemEmu: %s mode (%s), seed %llu (DEVMEM_EMU_SEED reproduces it), receive sizes %s",
                 emu_mem_ops->name, why, (unsigned long long)emu_seed(),
                 emu_report_sizes ? "reported" : "not reported (DEVMEM_EMU_NO_SIZES, as GPUDirect-TCPX)");
    }
    pthread_mutex_unlock(&g_init_mu);
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t e_devices(int *ndev)
{
    *ndev = 1;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t e_props(int dev, tcpx_ncclNetProperties_v7_t *p)
{
    if (dev != 0) {
        EMU_WARN("NET/DevmemEmu: no device %d (there is only device 0)", dev);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    memset(p, 0, sizeof *p);
    p->name = "emu0";
    p->pciPath = NULL;
    p->guid = 0x454d5530ull;
    p->ptrSupport = TCPX_NCCL_PTR_HOST | TCPX_NCCL_PTR_CUDA;
    p->speed = 100000;
    p->port = 0;
    p->latency = 0;
    p->maxComms = 1024;
    p->maxRecvs = 1;
    p->netDeviceType = TCPX_NCCL_NET_DEVICE_UNPACK;
    p->netDeviceVersion = TCPX_NCCL_NET_DEVICE_UNPACK_VERSION;
    return TCPX_NCCL_SUCCESS;
}

const emu_mr *emu_mr_get(const void *mh)
{
    const emu_mr *mr = mh;
    return mr && mr->magic == EMU_MR_MAGIC ? mr : NULL;
}

static tcpx_ncclResult_t e_reg_mr(void *comm, void *data, int size, int type, void **mhandle)
{
    *mhandle = NULL;
    if (size < 0 || (type != TCPX_NCCL_PTR_HOST && type != TCPX_NCCL_PTR_CUDA)) {
        EMU_WARN("NET/DevmemEmu: regMr of %d bytes of memory type %d refused: HOST or CUDA memory, size >= 0", size,
                 type);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    if (type == TCPX_NCCL_PTR_CUDA) {
        int dev = emu_mem_ops->is_device(data);
        if (dev < 0) return TCPX_NCCL_UNHANDLED_CUDA_ERROR;
        if (!dev) {
            EMU_WARN("NET/DevmemEmu: regMr: %p is registered as CUDA memory but is not device memory", data);
            return TCPX_NCCL_INTERNAL_ERROR;
        }
        /* GPUDirect-TCPX maps registrations in whole pages and refuses
         * others; host mode takes anything (its "device" buffers are heap). */
        if (emu_mem_ops->cuda && (uintptr_t)data % EMU_PAGE) {
            EMU_WARN("NET/DevmemEmu: regMr: CUDA buffer %p is not %d-byte aligned; the real plugin refuses "
                     "unaligned CUDA registrations",
                     data, EMU_PAGE);
            emu_violation();
            return TCPX_NCCL_INTERNAL_ERROR;
        }
    }
    emu_mr *mr = malloc(sizeof *mr);
    if (!mr) {
        EMU_WARN("NET/DevmemEmu: regMr: out of memory");
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    *mr = (emu_mr){.magic = EMU_MR_MAGIC, .type = type, .base = (uintptr_t)data, .size = (size_t)size};
    *mhandle = mr;
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t e_dereg_mr(void *comm, void *mhandle)
{
    emu_mr *mr = mhandle;
    if (!mr) return TCPX_NCCL_SUCCESS;
    if (mr->magic != EMU_MR_MAGIC) {
        EMU_WARN("NET/DevmemEmu: deregMr of a handle that regMr did not make");
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    mr->magic = 0;
    free(mr);
    return TCPX_NCCL_SUCCESS;
}

static tcpx_ncclResult_t e_test(void *request, int *done, int *size)
{
    *done = 0;
    uint32_t kind = request ? *(const uint32_t *)request : 0;
    if (kind == EMU_KIND_SEND) return emu_test_send(request, done, size);
    if (kind == EMU_KIND_RECV) return emu_test_recv(request, done, size);
    EMU_WARN("NET/DevmemEmu: test of %p, which is not a request", request);
    return TCPX_NCCL_INVALID_ARGUMENT;
}

EMU_EXPORT const tcpx_ncclNet_v7_t ncclNetPlugin_v7 = {
    .name = "DevmemEmu",
    .init = e_init,
    .devices = e_devices,
    .getProperties = e_props,
    .listen = emu_listen,
    .connect = emu_connect,
    .accept = emu_accept,
    .regMr = e_reg_mr,
    .regMrDmaBuf = NULL,
    .deregMr = e_dereg_mr,
    .isend = emu_isend,
    .irecv = emu_irecv,
    .iflush = NULL,
    .test = e_test,
    .closeSend = emu_close_send,
    .closeRecv = emu_close_recv,
    .closeListen = emu_close_listen,
    .getDeviceMr = NULL,
    .irecvConsumed = emu_irecv_consumed,
};
