/* devmem_emu_recv.c - recv comms: irecv, test, irecvConsumed, close.
 *
 * Receives complete strictly in posting order: whichever receive is tested,
 * the comm's socket is read for the oldest incomplete one (header, then the
 * payload into a staging buffer), and once all its bytes are in,
 * devmem_emu_place.c puts them into bounce pages and the slot's fragment
 * list. The k-th irecv of a comm owns queue slot k % 16 (and reqs[k % 16])
 * from irecv until irecvConsumed; posting into a slot still held is the
 * "late irecvConsumed" violation.
 *
 * A header with a wrong magic, a message larger than the posted receive or
 * than 2048 pages, or the peer closing the socket fails the receive and
 * breaks the comm: every later call on it returns the error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devmem_emu.h"

#define EMU_STAGING_MIN ((size_t)64 << 10)

static void rcomm_free(emu_rcomm *c, int pool_held)
{
    const emu_mem *m = emu_mem_ops;
    m->pinned_free(c->staging);
    if (c->dhandle) m->dev_free(c->dhandle);
    if (c->meta) m->mapped_free(c->meta);
    if (pool_held) emu_pool_release();
    pthread_mutex_destroy(&c->mu);
    free(c);
}

tcpx_ncclResult_t emu_rcomm_new(int fd, emu_rcomm **out)
{
    const emu_mem *m = emu_mem_ops;
    emu_rcomm *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) {
        EMU_WARN("NET/DevmemEmu: recv comm: out of memory");
        return TCPX_NCCL_SYSTEM_ERROR;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->fd = fd;
    c->rng = emu_seed_next();
    for (int i = 0; i < EMU_SLOTS; i++) {
        c->reqs[i].kind = EMU_KIND_RECV;
        c->reqs[i].comm = c;
        c->reqs[i].pages = c->pages[i];
    }
    tcpx_ncclResult_t rc = emu_pool_acquire(&c->bounce, &c->bounce_bytes);
    if (rc) {
        rcomm_free(c, 0);
        return rc;
    }
    void *host = NULL, *dev = NULL;
    if (!(rc = m->mapped_alloc(sizeof *c->meta, &host, &dev))) {
        c->meta = host;
        c->meta_dev = dev;
        memset(c->meta, 0, sizeof *c->meta);
        rc = m->dev_alloc(sizeof *c->dhandle, &dev);
    }
    if (!rc) {
        c->dhandle = dev;
        tcpx_unpack_handle h = {.meta = c->meta_dev, .bounce_buf = c->bounce, .head = UINT64_MAX};
        rc = m->put(c->dhandle, &h, sizeof h);
        tcpx_ncclResult_t wrc = m->wait();
        if (!rc) rc = wrc;
    }
    if (rc) {
        rcomm_free(c, 1);
        return rc;
    }
    *out = c;
    return TCPX_NCCL_SUCCESS;
}

static void fail_oldest(emu_rcomm *c, emu_rreq *r, tcpx_ncclResult_t rc)
{
    r->state = EMU_R_FAILED;
    r->err = rc;
    c->err = rc;
}

/* Read into dst until *got == want: 1 complete, 0 not yet, -1 failed (the
 * comm's error set, the oldest receive failed). */
static int read_some(emu_rcomm *c, emu_rreq *r, uint8_t *dst, size_t want, size_t *got)
{
    while (*got < want) {
        ssize_t n = recv(c->fd, dst + *got, want - *got, MSG_DONTWAIT);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
        EMU_WARN("NET/DevmemEmu: receive %llu: %s", (unsigned long long)r->seq,
                 n == 0 ? "the peer closed the connection" : strerror(errno));
        fail_oldest(c, r, n == 0 ? TCPX_NCCL_REMOTE_ERROR : TCPX_NCCL_SYSTEM_ERROR);
        return -1;
    }
    return 1;
}

/* A complete header: check it and make room for the payload. */
static int take_header(emu_rcomm *c, emu_rreq *r)
{
    uint64_t size = c->hdr.size;
    if (c->hdr.magic != EMU_WIRE_MAGIC) {
        EMU_WARN("NET/DevmemEmu: receive %llu: bad message header (magic %#x)", (unsigned long long)r->seq,
                 c->hdr.magic);
        fail_oldest(c, r, TCPX_NCCL_REMOTE_ERROR);
        return -1;
    }
    if (size > r->cap) {
        EMU_WARN("NET/DevmemEmu: receive %llu: message of %llu bytes is larger than the %zu-byte receive posted",
                 (unsigned long long)r->seq, (unsigned long long)size, r->cap);
        emu_violation();
        fail_oldest(c, r, TCPX_NCCL_INTERNAL_ERROR);
        return -1;
    }
    if (size > EMU_MAX_MSG) {
        EMU_WARN("NET/DevmemEmu: receive %llu: message of %llu bytes cannot fit the %d pages of a fragment list "
                 "(at most %zu bytes)",
                 (unsigned long long)r->seq, (unsigned long long)size, EMU_MAX_FRAGS, EMU_MAX_MSG);
        fail_oldest(c, r, TCPX_NCCL_INTERNAL_ERROR);
        return -1;
    }
    if (size > c->staging_cap) {
        size_t cap = EMU_STAGING_MIN;
        while (cap < size) cap *= 2;
        emu_mem_ops->pinned_free(c->staging);
        c->staging = NULL;
        c->staging_cap = 0;
        void *p = NULL;
        tcpx_ncclResult_t rc = emu_mem_ops->pinned_alloc(cap, &p);
        if (rc) {
            fail_oldest(c, r, rc);
            return -1;
        }
        c->staging = p;
        c->staging_cap = cap;
    }
    c->body_got = 0;
    return 1;
}

/* Advance the oldest incomplete receives as far as the socket and the pool
 * allow. Caller holds c->mu. */
static void progress(emu_rcomm *c)
{
    while (!c->err && c->ncompleted < c->nposted) {
        emu_rreq *r = &c->reqs[c->ncompleted % EMU_SLOTS];
        if (c->hdr_got < sizeof c->hdr) {
            if (read_some(c, r, (uint8_t *)&c->hdr, sizeof c->hdr, &c->hdr_got) <= 0) return;
            if (take_header(c, r) < 0) return;
        }
        if (read_some(c, r, c->staging, (size_t)c->hdr.size, &c->body_got) <= 0) return;
        int placed = 0;
        tcpx_ncclResult_t rc = emu_place(c, r, &placed);
        if (rc) {
            fail_oldest(c, r, rc);
            return;
        }
        if (!placed) return; /* backpressure: retried on the next call */
        r->state = EMU_R_DONE;
        c->ncompleted++;
        c->hdr_got = c->body_got = 0;
    }
}

tcpx_ncclResult_t emu_irecv(void *recv_comm, int n, void **data, int *sizes, int *tags, void **mhandles,
                            void **request)
{
    emu_rcomm *c = recv_comm;
    *request = NULL;
    if (!c || n != 1) {
        EMU_WARN("NET/DevmemEmu: irecv of %d buffers; a devmem receive takes exactly 1 (maxRecvs)", n);
        emu_violation();
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    const emu_mr *mr = emu_mr_get(mhandles[0]);
    if (!mr || mr->type != TCPX_NCCL_PTR_CUDA) {
        EMU_WARN("NET/DevmemEmu: devmem receives need CUDA buffers (a receive of %d bytes into %s)", sizes[0],
                 mr ? "a host registration" : "memory without a registration");
        emu_violation();
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    uintptr_t p = (uintptr_t)data[0];
    if (sizes[0] < 0 ||
        (sizes[0] > 0 && (p < mr->base || p - mr->base > mr->size || (size_t)sizes[0] > mr->size - (p - mr->base)))) {
        EMU_WARN("NET/DevmemEmu: irecv of %d bytes at %p outside its registration [%#lx, +%zu)", sizes[0], data[0],
                 (unsigned long)mr->base, mr->size);
        return TCPX_NCCL_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&c->mu);
    tcpx_ncclResult_t rc = c->err;
    int slot = (int)(c->nposted % EMU_SLOTS);
    emu_rreq *r = &c->reqs[slot];
    if (!rc && r->state != EMU_R_FREE) {
        EMU_WARN("NET/DevmemEmu: slot %d still held by an unconsumed receive (irecvConsumed late or missing): "
                 "receive %llu needs the slot of receive %llu",
                 slot, (unsigned long long)c->nposted, (unsigned long long)r->seq);
        emu_violation();
        rc = TCPX_NCCL_INTERNAL_ERROR;
    }
    if (!rc) {
        *r = (emu_rreq){.kind = EMU_KIND_RECV, .state = EMU_R_POSTED, .comm = c, .seq = c->nposted,
                        .data = data[0], .cap = (size_t)sizes[0], .pages = c->pages[slot]};
        c->nposted++;
        *request = r;
        progress(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

tcpx_ncclResult_t emu_test_recv(emu_rreq *r, int *done, int *size)
{
    emu_rcomm *c = r->comm;
    tcpx_ncclResult_t rc = TCPX_NCCL_SUCCESS;
    pthread_mutex_lock(&c->mu);
    if (r->state == EMU_R_FREE) {
        EMU_WARN("NET/DevmemEmu: test of a receive that is not posted (consumed already?)");
        rc = TCPX_NCCL_INTERNAL_ERROR;
    } else {
        progress(c);
        if (r->state == EMU_R_DONE) {
            *done = 1;
            if (size && emu_report_sizes) *size = (int)r->size;
            r->reported = 1;
        } else {
            rc = r->state == EMU_R_FAILED ? r->err : c->err;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Why r cannot be consumed now, or NULL. Caller holds c->mu. */
static const char *consume_refusal(emu_rcomm *c, const emu_rreq *r, char *buf, size_t cap)
{
    uintptr_t p = (uintptr_t)r, base = (uintptr_t)c->reqs;
    if (p < base || p >= base + sizeof c->reqs || (p - base) % sizeof c->reqs[0])
        return "it is not a receive of this comm";
    if (r->state == EMU_R_FREE) return "it is not posted (consumed twice?)";
    if (r->state == EMU_R_FAILED) return "it failed";
    if (r->state != EMU_R_DONE || !r->reported) return "test has not reported it done yet";
    if (r->seq != c->nconsumed) {
        snprintf(buf, cap, "out of order: receive %llu is the oldest not yet consumed", (unsigned long long)c->nconsumed);
        return buf;
    }
    return NULL;
}

tcpx_ncclResult_t emu_irecv_consumed(void *recv_comm, int n, void *request)
{
    emu_rcomm *c = recv_comm;
    emu_rreq *r = request;
    char buf[96];
    if (!c || n != 1) {
        EMU_WARN("NET/DevmemEmu: irecvConsumed of %d requests; it takes exactly 1", n);
        emu_violation();
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    pthread_mutex_lock(&c->mu);
    const char *why = consume_refusal(c, r, buf, sizeof buf);
    if (why) {
        uintptr_t p = (uintptr_t)r, base = (uintptr_t)c->reqs;
        int ours = p >= base && p < base + sizeof c->reqs && (p - base) % sizeof c->reqs[0] == 0;
        EMU_WARN("NET/DevmemEmu: irecvConsumed of receive %lld refused: %s", ours ? (long long)r->seq : -1LL, why);
        emu_violation();
        pthread_mutex_unlock(&c->mu);
        return TCPX_NCCL_INTERNAL_ERROR;
    }
    /* Poison first: a gather still running (or started now) reads 0xA5. */
    tcpx_ncclResult_t rc = emu_pool_poison(c->bounce, r->pages, r->nfrags);
    emu_pool_give(r->pages, r->nfrags);
    ((volatile uint64_t *)c->meta->cnt)[r->seq % EMU_SLOTS] = 0;
    r->state = EMU_R_FREE;
    c->nconsumed++;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

tcpx_ncclResult_t emu_close_recv(void *recv_comm)
{
    emu_rcomm *c = recv_comm;
    if (!c) return TCPX_NCCL_SUCCESS;
    for (int i = 0; i < EMU_SLOTS; i++) {
        emu_rreq *r = &c->reqs[i];
        if (r->state != EMU_R_DONE) continue; /* only placed receives hold pages */
        EMU_INFO("NET/DevmemEmu: closing a recv comm with receive %llu (%zu bytes) not consumed; its %u pages go back",
                 (unsigned long long)r->seq, r->size, r->nfrags);
        emu_pool_give(r->pages, r->nfrags);
    }
    close(c->fd);
    rcomm_free(c, 1);
    return TCPX_NCCL_SUCCESS;
}
