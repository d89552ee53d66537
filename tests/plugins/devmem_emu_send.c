/* devmem_emu_send.c - send comms.
 *
 * isend copies the payload out at once (device memory with a D2H copy in
 * CUDA mode) into a heap buffer behind the 16-byte wire header; the bytes
 * go to the socket, in posting order, whenever isend or test is called. At
 * most EMU_MAX_SENDS sends are in flight per comm: isend returns a NULL
 * request beyond that. A send is done when all its bytes are written; test
 * reporting it done frees it. A socket error (the peer closed) fails every
 * send in flight and every later call on the comm.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devmem_emu.h"

tcpx_ncclResult_t emu_scomm_new(int fd, emu_scomm **out)
{
    emu_scomm *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) {
        EMU_WARN("NET/DevmemEmu: send comm: out of memory");
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->fd = fd;
    for (int i = 0; i < EMU_MAX_SENDS; i++) {
        c->reqs[i].kind = EMU_KIND_SEND;
        c->reqs[i].comm = c;
    }
    *out = c;
    return TCPX_NCCL_SUCCESS;
}

/* Write what the socket takes, oldest send first. Caller holds c->mu. */
static void progress(emu_scomm *c)
{
    while (!c->err && c->nwritten < c->nposted) {
        emu_sreq *r = &c->reqs[c->nwritten % EMU_MAX_SENDS];
        while (r->off < r->len) {
            ssize_t w = send(c->fd, r->buf + r->off, r->len - r->off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                r->off += (size_t)w;
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            c->err = errno == EPIPE || errno == ECONNRESET ? TCPX_NCCL_REMOTE_ERROR : TCPX_NCCL_SYSTEM_ERROR;
            EMU_WARN("NET/DevmemEmu: send failed after %zu of %zu bytes: %s", r->off, r->len,
                     w == 0 ? "connection closed" : strerror(errno));
            return;
        }
        free(r->buf);
        r->buf = NULL;
        r->state = EMU_S_WRITTEN;
        c->nwritten++;
    }
}

tcpx_ncclResult_t emu_isend(void *send_comm, void *data, int size, int tag, void *mhandle, void **request)
{
    emu_scomm *c = send_comm;
    const emu_mr *mr = emu_mr_get(mhandle);
    *request = NULL;
    if (!c || size < 0 || (size > 0 && !data)) {
        EMU_WARN("NET/DevmemEmu: isend with %s", !c ? "no comm" : "a bad buffer or size");
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    if (!mr) {
        EMU_WARN("NET/DevmemEmu: isend of %d bytes without a registration from regMr", size);
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    uintptr_t p = (uintptr_t)data;
    if (size > 0 && (p < mr->base || p - mr->base > mr->size || (size_t)size > mr->size - (p - mr->base))) {
        EMU_WARN("NET/DevmemEmu: isend of %d bytes at %p outside its registration [%#lx, +%zu)", size, data,
                 (unsigned long)mr->base, mr->size);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&c->mu);
    tcpx_ncclResult_t rc = c->err;
    emu_sreq *r = &c->reqs[c->nposted % EMU_MAX_SENDS];
    if (rc || r->state != EMU_S_FREE) goto out; /* broken comm, or full: call again */
    uint8_t *buf = malloc(sizeof(emu_wire_hdr) + (size_t)size);
    if (!buf) {
        EMU_WARN("NET/DevmemEmu: isend: out of memory for %d bytes", size);
        rc = TCPX_NCCL_SYSTEM_ERROR;
        goto out;
    }
    emu_wire_hdr h = {.magic = EMU_WIRE_MAGIC, .size = (uint64_t)size};
    memcpy(buf, &h, sizeof h);
    if (mr->type == TCPX_NCCL_PTR_CUDA)
        rc = emu_mem_ops->get(buf + sizeof h, data, (size_t)size);
    else if (size)
        memcpy(buf + sizeof h, data, (size_t)size);
    if (rc) {
        free(buf);
        goto out;
    }
    *r = (emu_sreq){.kind = EMU_KIND_SEND, .state = EMU_S_POSTED, .comm = c, .buf = buf,
                    .len = sizeof h + (size_t)size, .off = 0, .size = size};
    c->nposted++;
    *request = r;
    progress(c);
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

tcpx_ncclResult_t emu_test_send(emu_sreq *r, int *done, int *size)
{
    emu_scomm *c = r->comm;
    pthread_mutex_lock(&c->mu);
    tcpx_ncclResult_t rc = TCPX_NCCL_SUCCESS;
    if (r->state == EMU_S_FREE) {
        EMU_WARN("NET/DevmemEmu: test of a send that is not in flight (already reported done?)");
        rc = TCPX_NCCL_INTERNAL_ERROR;
    } else {
        progress(c);
        if (r->state == EMU_S_WRITTEN) {
            *done = 1;
            if (size) *size = r->size;
            r->state = EMU_S_FREE;
        } else {
            rc = c->err;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

tcpx_ncclResult_t emu_close_send(void *send_comm)
{
    emu_scomm *c = send_comm;
    if (!c) return TCPX_NCCL_SUCCESS;
    for (int i = 0; i < EMU_MAX_SENDS; i++) free(c->reqs[i].buf);
    close(c->fd);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return TCPX_NCCL_SUCCESS;
}
