/* plugin.c - an external ncclNet plugin adapted to net.h.
 *
 * plugin_versions.c loads the library and picks and initializes its newest
 * supported ncclNetPlugin_vN table; the shims in plugin_v*.c call that table
 * with version-neutral arguments; this file is the tcpx_net on top.
 *
 * Requests: each comm has max_requests small slots; a request handed to
 * the caller is a slot holding the plugin's own request pointer, which goes
 * back to the plugin's test and irecvConsumed unchanged (the adapter never
 * frees or reuses a plugin request). The slot remembers the posted size,
 * because some plugins never report sizes from test() (GPUDirect-TCPX does
 * not; NCCL passes NULL there): for those, test() reports the posted size. A
 * full set of slots makes isend/irecv return a NULL request ("call again").
 * A finished send's slot is free at once; a finished receive's slot, and the
 * plugin's request, stay valid until irecv_consumed(), which must follow for
 * every finished receive, in posting order (device-offload plugins recycle
 * bounce pages there and need it for host receives too).
 *
 * Device handle: accept() hands the plugin an ncclNetDeviceHandle to fill
 * when the device offers UNPACK offload (as NCCL does for receives); the
 * recv comm keeps it, and device_handle() returns its `handle`
 * (struct unpackNetDeviceHandle *). Send comms never ask for one.
 *
 * Plugins have no abort: connect_abort frees only our state; a plugin comm
 * half-built by an abandoned connect is the plugin's to keep.
 */
#define _GNU_SOURCE
#include "net/plugin.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/log.h"

#define PL_MAX_MESSAGE ((size_t)1 << 30) /* test() reports int sizes; NCCL's MAX_NET_SIZE */

typedef struct pl_net {
    tcpx_net base;
    tcpx_plugin_lib *lib;
    const tcpx_plugin_shim *shim;
    const void *t;
    void *ctx;                     /* v11+ init context */
    int ndev;
} pl_net;

typedef struct pl_comm pl_comm;

typedef struct pl_req {
    pl_comm *comm;
    struct pl_req *next_free;
    void *preq;                    /* the plugin's request */
    size_t size;                   /* posted size */
    int state;                     /* REQ_FREE / REQ_POSTED / REQ_DONE (receive awaiting consumed) */
} pl_req;

enum { REQ_FREE = 0, REQ_POSTED, REQ_DONE };

struct pl_comm {
    void *pcomm;                   /* the plugin's comm */
    int is_recv;
    tcpx_ncclNetDeviceHandle_v7_t dh;
    int has_dh;
    pl_req *free;
    pl_req reqs[];
};

typedef struct pl_lsn {
    void *plisten;
    int want_dh;                   /* the device offers UNPACK offload */
    pl_comm *pending;              /* recv comm being accepted; its dh is the plugin's out parameter */
} pl_lsn;

typedef struct pl_cstate {
    uint8_t handle[TCPX_NCCL_NET_HANDLE_MAXSIZE]; /* plugins keep connect progress in the handle */
} pl_cstate;

/* ---- errors ---- */

static int call_failed(pl_net *n, const char *call, int rc)
{
    return tcpx_set_error(TCPX_ERR_TRANSPORT, "plugin %s %s returned %d (%s)", n->base.name, call, rc,
                          tcpx_plugin_result_name(rc));
}

/* ---- comms and requests ---- */

static pl_comm *comm_new(pl_net *n, int is_recv)
{
    int nreq = n->shim->max_requests;
    pl_comm *c = calloc(1, sizeof *c + (size_t)nreq * sizeof(pl_req));
    if (!c) return NULL;
    c->is_recv = is_recv;
    for (int i = nreq - 1; i >= 0; i--) {
        c->reqs[i].comm = c;
        c->reqs[i].next_free = c->free;
        c->free = &c->reqs[i];
    }
    return c;
}

static void req_put(pl_req *r)
{
    r->state = REQ_FREE;
    r->preq = NULL;
    r->next_free = r->comm->free;
    r->comm->free = r;
}

static int post(pl_net *n, pl_comm *c, int is_recv, void *data, size_t size, int tag, void *mh, void **request)
{
    if (!request) return tcpx_set_error(TCPX_ERR_INVALID, "%s: NULL request pointer", is_recv ? "irecv" : "isend");
    *request = NULL;
    if (!c || c->is_recv != is_recv)
        return tcpx_set_error(TCPX_ERR_INVALID, "%s on something that is not a %s comm", is_recv ? "irecv" : "isend",
                              is_recv ? "recv" : "send");
    if (size > PL_MAX_MESSAGE)
        return tcpx_set_error(TCPX_ERR_INVALID, "message of %zu bytes exceeds the plugin limit of %zu", size,
                              PL_MAX_MESSAGE);
    pl_req *r = c->free;
    if (!r) return TCPX_OK; /* max_requests in flight: call again */
    void *preq = NULL;      /* never NCCL's "optional completion" marker */
    int rc = is_recv ? n->shim->irecv(n->t, c->pcomm, data, size, tag, mh, &preq)
                     : n->shim->isend(n->t, c->pcomm, data, size, tag, mh, &preq);
    if (rc) return call_failed(n, is_recv ? "irecv" : "isend", rc);
    if (!preq) return TCPX_OK;
    c->free = r->next_free;
    r->next_free = NULL;
    r->preq = preq;
    r->size = size;
    r->state = REQ_POSTED;
    *request = r;
    return TCPX_OK;
}

static int pl_isend(tcpx_net *net, void *comm, void *data, size_t size, int tag, void *mh, void **request)
{
    return post((pl_net *)net, comm, 0, data, size, tag, mh, request);
}

static int pl_irecv(tcpx_net *net, void *comm, void *data, size_t size, int tag, void *mh, void **request)
{
    return post((pl_net *)net, comm, 1, data, size, tag, mh, request);
}

static int pl_test(tcpx_net *net, void *request, int *done, size_t *size)
{
    pl_net *n = (pl_net *)net;
    pl_req *r = request;
    if (done) *done = 0;
    if (!r || r->state != REQ_POSTED) return tcpx_set_error(TCPX_ERR_INVALID, "test of a request not in flight");
    int d = 0, got = -1;
    int rc = n->shim->test(n->t, r->preq, &d, &got);
    if (rc) {
        req_put(r);
        return call_failed(n, "test", rc);
    }
    if (!d) return TCPX_OK;
    if (size) *size = got >= 0 ? (size_t)got : r->size;
    if (done) *done = 1;
    if (r->comm->is_recv)
        r->state = REQ_DONE;
    else
        req_put(r);
    return TCPX_OK;
}

static int pl_irecv_consumed(tcpx_net *net, void *recv_comm, void *request)
{
    pl_net *n = (pl_net *)net;
    pl_comm *c = recv_comm;
    pl_req *r = request;
    if (!c || !r || r->comm != c || r->state != REQ_DONE)
        return tcpx_set_error(TCPX_ERR_INVALID,
                              "irecv_consumed of a request that is not a finished receive of this comm");
    int rc = n->shim->has_irecv_consumed(n->t) ? n->shim->irecv_consumed(n->t, c->pcomm, r->preq) : 0;
    if (rc) return call_failed(n, "irecvConsumed", rc); /* the plugin still holds the request */
    req_put(r);
    return TCPX_OK;
}

static void *pl_device_handle(tcpx_net *net, void *recv_comm)
{
    pl_comm *c = recv_comm;
    if (!c || !c->is_recv || !c->has_dh || c->dh.netDeviceType != TCPX_NCCL_NET_DEVICE_UNPACK) return NULL;
    return c->dh.handle;
}

static int pl_reg_mr(tcpx_net *net, void *comm, void *data, size_t size, int type, void **mhandle)
{
    pl_net *n = (pl_net *)net;
    pl_comm *c = comm;
    if (!c || !mhandle) return tcpx_set_error(TCPX_ERR_INVALID, "reg_mr: NULL argument");
    *mhandle = NULL;
    if (n->shim->int_reg_sizes && size > INT_MAX)
        return tcpx_set_error(TCPX_ERR_INVALID, "plugin %s (ABI v%d) registers at most %d bytes at once, not %zu",
                              n->base.name, n->shim->version, INT_MAX, size);
    int rc = n->shim->reg_mr(n->t, c->pcomm, data, size, type, mhandle);
    return rc ? call_failed(n, "regMr", rc) : TCPX_OK;
}

static int pl_dereg_mr(tcpx_net *net, void *comm, void *mhandle)
{
    pl_net *n = (pl_net *)net;
    pl_comm *c = comm;
    if (!c) return tcpx_set_error(TCPX_ERR_INVALID, "dereg_mr: NULL comm");
    int rc = n->shim->dereg_mr(n->t, c->pcomm, mhandle);
    return rc ? call_failed(n, "deregMr", rc) : TCPX_OK;
}

/* ---- connection setup ---- */

static int check_dev(pl_net *n, int dev)
{
    if (dev < 0 || dev >= n->ndev)
        return tcpx_set_error(TCPX_ERR_INVALID, "plugin %s has no device %d (it has %d)", n->base.name, dev, n->ndev);
    return TCPX_OK;
}

static int pl_devices(tcpx_net *net, int *ndev)
{
    if (!ndev) return tcpx_set_error(TCPX_ERR_INVALID, "devices: NULL argument");
    *ndev = ((pl_net *)net)->ndev;
    return TCPX_OK;
}

static int pl_get_properties(tcpx_net *net, int dev, tcpx_net_props *p)
{
    pl_net *n = (pl_net *)net;
    if (!p) return tcpx_set_error(TCPX_ERR_INVALID, "get_properties: NULL argument");
    int rc = check_dev(n, dev);
    if (rc) return rc;
    tcpx_plugin_props pp = {0};
    if ((rc = n->shim->props(n->t, dev, &pp))) return call_failed(n, "getProperties", rc);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", pp.name ? pp.name : "unnamed");
    snprintf(p->pci_path, sizeof p->pci_path, "%s", pp.pci_path ? pp.pci_path : "");
    p->ptr_support = pp.ptr_support & (TCPX_NET_PTR_HOST | TCPX_NET_PTR_CUDA);
    p->speed_mbps = pp.speed > 0 ? pp.speed : 0;
    p->max_comms = pp.max_comms;
    p->max_requests = n->shim->max_requests;
    p->max_recvs = pp.max_recvs > 0 ? pp.max_recvs : 1;
    p->max_message = pp.max_p2p_bytes && pp.max_p2p_bytes < PL_MAX_MESSAGE ? pp.max_p2p_bytes : PL_MAX_MESSAGE;
    if (pp.dev_type == TCPX_NCCL_NET_DEVICE_HOST) {
        p->offload = TCPX_NET_OFFLOAD_NONE;
    } else if (pp.dev_type == TCPX_NCCL_NET_DEVICE_UNPACK && pp.dev_version == TCPX_NCCL_NET_DEVICE_UNPACK_VERSION) {
        p->offload = TCPX_NET_OFFLOAD_UNPACK;
    } else {
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED,
                              "plugin %s device %d offers network device type %d version %d; this build drives "
                              "host devices and UNPACK version %d only",
                              n->base.name, dev, pp.dev_type, pp.dev_version, TCPX_NCCL_NET_DEVICE_UNPACK_VERSION);
    }
    return TCPX_OK;
}

static int pl_listen(tcpx_net *net, int dev, void *handle, void **listen_comm)
{
    pl_net *n = (pl_net *)net;
    if (!handle || !listen_comm) return tcpx_set_error(TCPX_ERR_INVALID, "listen: NULL argument");
    *listen_comm = NULL;
    tcpx_net_props props;
    int rc = pl_get_properties(net, dev, &props);
    if (rc) return rc;
    pl_lsn *l = calloc(1, sizeof *l);
    if (!l) return tcpx_set_error(TCPX_ERR_NOMEM, "listen state allocation failed");
    l->want_dh = props.offload == TCPX_NET_OFFLOAD_UNPACK;
    if ((rc = n->shim->listen(n->t, n->ctx, dev, handle, &l->plisten))) {
        free(l);
        return call_failed(n, "listen", rc);
    }
    *listen_comm = l;
    return TCPX_OK;
}

static int pl_accept(tcpx_net *net, void *listen_comm, void **recv_comm)
{
    pl_net *n = (pl_net *)net;
    pl_lsn *l = listen_comm;
    if (!l || !recv_comm) return tcpx_set_error(TCPX_ERR_INVALID, "accept: NULL argument");
    *recv_comm = NULL;
    if (!l->pending) {
        if (!(l->pending = comm_new(n, 1))) return tcpx_set_error(TCPX_ERR_NOMEM, "recv comm allocation failed");
        if (l->want_dh) {
            l->pending->dh.netDeviceType = TCPX_NCCL_NET_DEVICE_UNPACK;
            l->pending->dh.netDeviceVersion = TCPX_NCCL_NET_DEVICE_UNPACK_VERSION;
        }
    }
    pl_comm *c = l->pending;
    tcpx_ncclNetDeviceHandle_v7_t *dh = l->want_dh ? &c->dh : NULL;
    void *pcomm = NULL;
    int rc = n->shim->accept(n->t, l->plisten, &pcomm, &dh);
    if (rc) return call_failed(n, "accept", rc);
    if (!pcomm) return TCPX_OK;
    if (dh && dh != &c->dh) c->dh = *dh; /* the plugin pointed us at its own handle */
    c->has_dh = dh && c->dh.handle;
    c->pcomm = pcomm;
    l->pending = NULL;
    *recv_comm = c;
    return TCPX_OK;
}

static int pl_connect(tcpx_net *net, int dev, const void *handle, void **state, void **send_comm)
{
    pl_net *n = (pl_net *)net;
    if (!handle || !state || !send_comm) return tcpx_set_error(TCPX_ERR_INVALID, "connect: NULL argument");
    *send_comm = NULL;
    int rc = check_dev(n, dev);
    if (rc) return rc;
    pl_cstate *st = *state;
    if (!st) {
        if (!(st = malloc(sizeof *st))) return tcpx_set_error(TCPX_ERR_NOMEM, "connect state allocation failed");
        memcpy(st->handle, handle, sizeof st->handle);
        *state = st;
    }
    tcpx_ncclNetDeviceHandle_v7_t *dh = NULL; /* no offload on the send side */
    void *pcomm = NULL;
    if ((rc = n->shim->connect_send(n->t, n->ctx, dev, st->handle, &pcomm, &dh))) {
        free(st);
        *state = NULL;
        return call_failed(n, "connect", rc);
    }
    if (!pcomm) return TCPX_OK;
    free(st);
    *state = NULL;
    pl_comm *c = comm_new(n, 0);
    if (!c) {
        n->shim->close_send(n->t, pcomm);
        return tcpx_set_error(TCPX_ERR_NOMEM, "send comm allocation failed");
    }
    c->pcomm = pcomm;
    *send_comm = c;
    return TCPX_OK;
}

static void pl_connect_abort(tcpx_net *net, void *state) { free(state); }

static int pl_close_comm(pl_net *n, pl_comm *c, int is_recv)
{
    if (!c) return TCPX_OK;
    int rc = is_recv ? n->shim->close_recv(n->t, c->pcomm) : n->shim->close_send(n->t, c->pcomm);
    free(c);
    return rc ? call_failed(n, is_recv ? "closeRecv" : "closeSend", rc) : TCPX_OK;
}

static int pl_close_send(tcpx_net *net, void *send_comm) { return pl_close_comm((pl_net *)net, send_comm, 0); }
static int pl_close_recv(tcpx_net *net, void *recv_comm) { return pl_close_comm((pl_net *)net, recv_comm, 1); }

static int pl_close_listen(tcpx_net *net, void *listen_comm)
{
    pl_net *n = (pl_net *)net;
    pl_lsn *l = listen_comm;
    if (!l) return TCPX_OK;
    int rc = n->shim->close_listen(n->t, l->plisten);
    free(l->pending);
    free(l);
    return rc ? call_failed(n, "closeListen", rc) : TCPX_OK;
}

static void pl_destroy(tcpx_net *net)
{
    pl_net *n = (pl_net *)net;
    if (!n) return;
    if (n->shim->finalize) {
        int rc = n->shim->finalize(n->t, n->ctx);
        if (rc) TCPX_WARN("plugin %s finalize returned %d (%s)", n->base.name, rc, tcpx_plugin_result_name(rc));
    }
    free(n);
}

/* ---- creation ---- */

int tcpx_net_plugin_create_version(const char *path_or_name, const tcpx_net_opts *opts, int version,
                                   tcpx_net **out)
{
    if (!out) return tcpx_set_error(TCPX_ERR_INVALID, "plugin: NULL out pointer");
    *out = NULL;
    if (!path_or_name || !*path_or_name) return tcpx_set_error(TCPX_ERR_INVALID, "plugin: empty path or name");
    if (version && (version < TCPX_PLUGIN_MIN_VERSION || version > TCPX_PLUGIN_MAX_VERSION))
        return tcpx_set_error(TCPX_ERR_INVALID, "plugin: ABI version %d is outside %d..%d", version,
                              TCPX_PLUGIN_MIN_VERSION, TCPX_PLUGIN_MAX_VERSION);
    tcpx_plugin_lib *lib = NULL;
    void *ctx = NULL;
    int rc = tcpx_plugin_lib_open(path_or_name, version, &lib);
    if (!rc) rc = tcpx_plugin_lib_init(lib, &ctx);
    if (rc) return rc;
    const tcpx_plugin_shim *shim = lib->shim;
    const void *table = lib->table;
    pl_net *n = calloc(1, sizeof *n);
    if (!n) {
        if (shim->finalize) shim->finalize(table, ctx);
        return tcpx_set_error(TCPX_ERR_NOMEM, "plugin transport allocation failed");
    }
    n->lib = lib;
    n->shim = shim;
    n->t = table;
    n->ctx = ctx;
    tcpx_net *b = &n->base;
    b->name = lib->name;
    if ((rc = shim->devices(table, &n->ndev)) || n->ndev <= 0) {
        if (rc)
            call_failed(n, "devices", rc);
        else
            tcpx_set_error(TCPX_ERR_TRANSPORT, "plugin %s (%s) has no network devices (devices() reported %d)",
                           lib->name, lib->file, n->ndev);
        pl_destroy(b);
        return TCPX_ERR_TRANSPORT;
    }
    b->devices = pl_devices;
    b->get_properties = pl_get_properties;
    b->listen = pl_listen;
    b->connect_send = pl_connect;
    b->accept = pl_accept;
    b->reg_mr = pl_reg_mr;
    b->dereg_mr = pl_dereg_mr;
    b->isend = pl_isend;
    b->irecv = pl_irecv;
    b->test = pl_test;
    b->irecv_consumed = pl_irecv_consumed;
    b->device_handle = pl_device_handle;
    b->close_send = pl_close_send;
    b->close_recv = pl_close_recv;
    b->close_listen = pl_close_listen;
    b->connect_abort = pl_connect_abort;
    b->send_closed = NULL;
    b->destroy = pl_destroy;
    TCPX_INFO("plugin %s loaded from %s (%s), %d device(s)", lib->name, lib->file, shim->symbol, n->ndev);
    (void)opts; /* the socket knobs do not apply; plugins read their own environment */
    *out = b;
    return TCPX_OK;
}

int tcpx_net_plugin_create(const char *path_or_name, const tcpx_net_opts *opts, tcpx_net **out)
{
    return tcpx_net_plugin_create_version(path_or_name, opts, 0, out);
}
