/* session.c - session lifecycle and the public connection calls. */
#define _GNU_SOURCE /* strcasestr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "net/plugin.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

/* "auto": a GPUDirect-TCPX plugin if one loads and has devices, else the
 * socket transport. The TCPX plugin is installed as libnccl-net.so (its
 * table is named "GPUDirectTCPX"); any other plugin found under that name
 * is left alone. A TCPX plugin receives into GPU bounce pages only, so a
 * session without a GPU stays on the socket transport. */
static int auto_plugin(const tcpx_net_opts *o, int have_gpu, tcpx_net **out)
{
    static const char *const candidates[] = {"libnccl-net-gpudirecttcpx.so", "libnccl-net.so"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        tcpx_net *n = NULL;
        if (tcpx_net_plugin_create(candidates[i], o, &n)) {
            TCPX_DEBUG("auto: %s: %s", candidates[i], tcpx_last_error());
            continue;
        }
        tcpx_net_props props;
        int unpack = !n->get_properties(n, 0, &props) && props.offload == TCPX_NET_OFFLOAD_UNPACK;
        if (strcasestr(n->name, "tcpx") && (have_gpu || !unpack)) {
            *out = n;
            return 1;
        }
        TCPX_INFO("auto: ncclNet plugin \"%s\" (%s) not used: %s", n->name, candidates[i],
                  strcasestr(n->name, "tcpx") ? "its receives land in GPU memory and this session has no GPU "
                                                "(gpu_id -1)"
                                              : "not GPUDirect-TCPX");
        n->destroy(n);
    }
    return 0;
}

static tcpx_status open_transport(tcpx_session *s)
{
    const char *t = s->cfg.transport;
    tcpx_net_opts o = {
        .socks_per_comm = s->cfg.socks_per_comm,
        .peer_timeout_ms = s->cfg.peer_timeout_ms,
        .bind_addr = s->cfg.bind_addr,
        .notify = sess_wake,
        .notify_arg = s,
    };
    int rc = 0;
    if (!strcmp(t, "socket") || (!strcmp(t, "auto") && !auto_plugin(&o, s->gpu != NULL, &s->net))) {
        rc = tcpx_net_socket_create(&o, &s->net);
        s->notify_supported = 1;
    } else if (strcmp(t, "auto")) {
        rc = tcpx_net_plugin_create(t, &o, &s->net); /* plugins never notify: waits poll */
    }
    if (rc) return (tcpx_status)rc;
    int ndev = 0;
    if ((rc = s->net->devices(s->net, &ndev)) || ndev < 1)
        return rc ? (tcpx_status)rc : tcpx_set_error(TCPX_ERR_TRANSPORT, "transport %s has no device", s->net->name);
    tcpx_status st = pick_net_device(s, ndev);
    if (st) return st;
    if ((rc = s->net->get_properties(s->net, s->net_dev, &s->props))) return (tcpx_status)rc;
    /* Receives of an UNPACK transport land in GPU bounce pages and are
     * gathered by a kernel (rx_unpack.c): that needs the session's GPU. */
    s->unpack = s->props.offload == TCPX_NET_OFFLOAD_UNPACK;
    if (s->unpack && !s->gpu)
        return tcpx_set_error(TCPX_ERR_UNSUPPORTED,
                              "transport %s receives into GPU bounce buffers (device unpack): create the session "
                              "with gpu_id >= 0 (TCPX_GPU), or use TCPX_TRANSPORT=socket",
                              s->net->name);
    /* A receive's fragment list holds at most TCPX_UNPACK_MAX_PAGES pages:
     * NCCL's 4 MiB slices with 2x slack. Chunks stay within a slice. */
    if (s->unpack && s->cfg.chunk_bytes > TCPX_UNPACK_MAX_CHUNK) s->cfg.chunk_bytes = TCPX_UNPACK_MAX_CHUNK;
    s->plugin_on_gpu = s->gpu && strcmp(s->net->name, "socket");
    TCPX_INFO("session %s: transport %s (asked for \"%s\"), device %d (%s), %d channels, chunk %zu%s", s->cfg.name,
              s->net->name, t, s->net_dev, s->props.name, s->cfg.channels, s->cfg.chunk_bytes,
              s->unpack ? ", device unpack" : "");
    return TCPX_OK;
}

static tcpx_status check_config(const tcpx_config *c)
{
    if (c->gpu_id < -1) return tcpx_set_error(TCPX_ERR_INVALID, "gpu_id %d: use -1 for host only", c->gpu_id);
    if (c->channels < 1 || c->channels > TCPX_MAX_CHANNELS)
        return tcpx_set_error(TCPX_ERR_INVALID, "channels %d out of range 1..%d", c->channels, TCPX_MAX_CHANNELS);
    if (c->chunk_bytes < 4096 || c->chunk_bytes > (1u << 30))
        return tcpx_set_error(TCPX_ERR_INVALID, "chunk_bytes %zu out of range 4 KiB..1 GiB", c->chunk_bytes);
    if (c->window < 1 || c->socks_per_comm < 1 || c->socks_per_comm > 16 || c->staging_slots < 1)
        return tcpx_set_error(TCPX_ERR_INVALID, "window %d / socks_per_comm %d / staging_slots %d out of range",
                              c->window, c->socks_per_comm, c->staging_slots);
    if (c->net_device < -1)
        return tcpx_set_error(TCPX_ERR_INVALID, "net_device %d: use -1 for the device nearest the GPU", c->net_device);
    if (c->connect_timeout_ms < 1 || c->peer_timeout_ms < 1)
        return tcpx_set_error(TCPX_ERR_INVALID, "timeouts must be positive");
    if (!memchr(c->name, '\0', sizeof c->name) || !c->name[0])
        return tcpx_set_error(TCPX_ERR_INVALID, "session name empty or not terminated");
    if (!memchr(c->transport, '\0', sizeof c->transport) || !memchr(c->bind_addr, '\0', sizeof c->bind_addr))
        return tcpx_set_error(TCPX_ERR_INVALID, "transport or bind_addr not terminated");
    return TCPX_OK;
}

tcpx_status tcpx_session_create(const tcpx_config *cfg, tcpx_session **out)
{
    if (!out) return tcpx_set_error(TCPX_ERR_INVALID, "out is NULL");
    *out = NULL;
    tcpx_session *s = calloc(1, sizeof *s);
    if (!s) return tcpx_set_error(TCPX_ERR_NOMEM, "session allocation failed");
    if (cfg) s->cfg = *cfg;
    else tcpx_config_init(&s->cfg);
    tcpx_status st = tcpx_config_apply_env(&s->cfg);
    if (!st) st = check_config(&s->cfg);
    if (st) {
        free(s);
        return st;
    }
    if (s->cfg.log_level > tcpx_log_get_level()) tcpx_log_set_level(s->cfg.log_level);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    s->token = tcpx_random_u64();
    s->next_mem_id = 1;
    s->next_op_id = 1;
    if (s->cfg.gpu_id >= 0) st = tcpx_gpu_open(s->cfg.gpu_id, &s->gpu);
    if (!st) st = open_transport(s);
    if (st) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", tcpx_last_error());
        tcpx_session_destroy(s);
        return tcpx_set_error(st, "%s", keep);
    }
    s->stage_gpu = !(s->props.ptr_support & TCPX_NET_PTR_CUDA);
    /* The transport's per-comm request limit bounds both windows (NCCL's
     * ABIs allow as few as 8 requests in flight), and so does the unpack
     * queue of a device-unpack transport (a slot per receive until it is
     * consumed). */
    int limit = s->props.max_requests;
    if (s->unpack && (limit <= 0 || limit > TCPX_UNPACK_SLOTS)) limit = TCPX_UNPACK_SLOTS;
    s->window = s->cfg.window;
    s->ctrl_recvs = TCPX_CTRL_RECVS;
    if (limit > 0 && s->window > limit) s->window = limit;
    if (limit > 0 && s->ctrl_recvs > limit) s->ctrl_recvs = limit;
    if (s->cfg.progress_thread && sess_bg_start(s)) {
        tcpx_session_destroy(s);
        return tcpx_set_error(TCPX_ERR_SYSTEM, "cannot start the progress thread");
    }
    *out = s;
    return TCPX_OK;
}

void tcpx_session_destroy(tcpx_session *s)
{
    if (!s) return;
    sess_bg_stop(s);
    sess_lock(s);
    while (s->peers) {
        tcpx_peer *p = s->peers;
        p->local_close = 1;
        peer_fail(p, TCPX_ERR_PEER, "session destroyed");
        peer_unlink(s, p);
    }
    inbound_free_all(s);
    if (s->net) {
        for (int i = 0; i <= TCPX_MAX_CHANNELS; i++)
            if (s->listen_comm[i]) s->net->close_listen(s->net, s->listen_comm[i]);
    }
    mem_free_all(s);
    if (s->net) s->net->destroy(s->net);
    tcpx_gpu_close(s->gpu);
    free(s->blob);
    free(s->retired.ops);
    sess_unlock(s);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wake_mu);
    pthread_cond_destroy(&s->wake_cv);
    free(s);
}

const tcpx_config *tcpx_session_config(const tcpx_session *s) { return s ? &s->cfg : NULL; }

const char *tcpx_session_transport(const tcpx_session *s) { return s && s->net ? s->net->name : "none"; }

tcpx_status tcpx_session_listen(tcpx_session *s, const void **blob, size_t *len)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "session is NULL");
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    if (!st) {
        if (blob) *blob = s->blob;
        if (len) *len = s->blob_len;
    }
    sess_unlock(s);
    return st;
}

static int valid_name(const char *name)
{
    return name && name[0] && strlen(name) < TCPX_NAME_MAX;
}

tcpx_status tcpx_session_load_remote(tcpx_session *s, const char *peer, const void *blob, size_t len)
{
    if (!s || !valid_name(peer) || !blob)
        return tcpx_set_error(TCPX_ERR_INVALID, "load_remote: NULL session/blob or bad peer name");
    tcpx_conninfo ci;
    tcpx_status st = tcpx_conninfo_decode(blob, len, &ci);
    if (st) return st;
    sess_lock(s);
    if (strcmp(ci.transport, s->net->name)) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_INVALID, "peer %s uses transport \"%s\", this session \"%s\"", peer,
                              ci.transport, s->net->name);
    }
    tcpx_peer *p = peer_find(s, peer);
    if (p && (p->state == PEER_READY || p->state == PEER_CONNECTING)) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_INVALID, "peer %s is connected; disconnect it first", peer);
    }
    if (p) peer_unlink(s, p); /* a failed or closed earlier connection */
    p = peer_new(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    p->remote = ci;
    p->has_remote = 1;
    sess_unlock(s);
    return TCPX_OK;
}

/* Drive the dial and the assembly of the incoming half until the peer is
 * ready, releasing the lock between rounds; bounded by the deadline. */
static tcpx_status wait_connected(tcpx_session *s, tcpx_peer *p, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        inbound_progress(s, 1);
        if (p->dial) {
            int done = 0;
            tcpx_status st = dial_progress(s, p, &done);
            if (st) return st;
        }
        if (!p->dial) {
            /* outgoing half is up; the incoming half assembles from inbound comms */
            tcpx_status st = peer_activate(p);
            if (st != TCPX_IN_PROGRESS) return st;
        }
        if (tcpx_past(deadline))
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "%s %s: not established within %d ms", what, p->name,
                                  s->cfg.connect_timeout_ms);
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
        if (p->state != PEER_CONNECTING)
            return p->err ? p->err : tcpx_set_error(TCPX_ERR_PEER, "%s %s: aborted", what, p->name);
    }
}

static tcpx_status finish_connect(tcpx_session *s, tcpx_peer *p, tcpx_status st)
{
    if (st) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", tcpx_last_error());
        peer_fail(p, st, "%s", keep);
        tcpx_set_error(st, "%s", keep);
        TCPX_WARN("connection with %s failed: %s", p->name, keep);
    } else {
        TCPX_INFO("connected with %s: %d channels out, %d in", p->name, p->ntx, p->nrx);
    }
    return st;
}

tcpx_status tcpx_session_connect(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "connect: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!st && (!p || !p->has_remote))
        st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "connect: no connection info loaded for peer %s", peer);
    else if (!st && p->state != PEER_IDLE)
        st = tcpx_set_error(TCPX_ERR_INVALID, "connect: peer %s is not idle (load its info again to reconnect)", peer);
    if (st) {
        sess_unlock(s);
        return st;
    }
    p->state = PEER_CONNECTING;
    p->nonce = tcpx_random_u64();
    p->refs++; /* keep p alive across unlocked waits */
    st = dial_start(s, p, TCPX_HELLO_INITIATE);
    if (!st) st = wait_connected(s, p, deadline, "connect to");
    st = finish_connect(s, p, st);
    peer_unref(p);
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_accept(tcpx_session *s, const char *peer)
{
    if (!s || !valid_name(peer)) return tcpx_set_error(TCPX_ERR_INVALID, "accept: NULL session or bad peer name");
    uint64_t deadline = tcpx_deadline_ms(s->cfg.connect_timeout_ms);
    sess_lock(s);
    tcpx_status st = sess_listen_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!st && p && (p->state == PEER_READY || p->state == PEER_CONNECTING))
        st = tcpx_set_error(TCPX_ERR_INVALID, "accept: peer name %s is already connected", peer);
    if (st) {
        sess_unlock(s);
        return st;
    }
    /* Wait for an INITIATE hello from that name. */
    tcpx_inbound *hello = NULL;
    for (;;) {
        uint64_t seen = sess_wake_seq(s);
        inbound_progress(s, 1);
        for (tcpx_inbound *in = s->inbound; in; in = in->next)
            if (in->identified && in->lidx == 0 && in->msg.u.hello.role == TCPX_HELLO_INITIATE &&
                !strcmp(in->msg.u.hello.name, peer)) {
                hello = in;
                break;
            }
        if (hello) break;
        if (tcpx_past(deadline)) {
            sess_unlock(s);
            return tcpx_set_error(TCPX_ERR_TIMEOUT, "accept: peer %s did not connect within %d ms", peer,
                                  s->cfg.connect_timeout_ms);
        }
        /* accepts do not notify: look again within a millisecond */
        sess_nap_locked(s, seen, tcpx_deadline_ms(1) < deadline ? tcpx_deadline_ms(1) : deadline);
    }
    tcpx_conninfo ci;
    st = tcpx_conninfo_decode(hello->blob, hello->msg.payload_len, &ci);
    uint64_t nonce = hello->msg.u.hello.nonce;
    if (!st && strcmp(ci.transport, s->net->name))
        st = tcpx_set_error(TCPX_ERR_PROTOCOL, "accept: peer %s uses transport \"%s\"", peer, ci.transport);
    if (st) {
        tcpx_inbound *bad = inbound_take(s, 1, nonce, 0);
        if (bad) {
            s->net->close_recv(s->net, bad->comm);
            free(bad->buf);
            free(bad->blob);
            free(bad);
        }
        sess_unlock(s);
        return st;
    }
    if (p) peer_unlink(s, p);
    p = peer_new(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOMEM, "peer allocation failed");
    }
    p->remote = ci;
    p->has_remote = 1;
    p->nonce = nonce;
    p->state = PEER_CONNECTING;
    p->refs++;
    st = dial_start(s, p, TCPX_HELLO_REPLY);
    if (!st) st = wait_connected(s, p, deadline, "accept from");
    st = finish_connect(s, p, st);
    peer_unref(p);
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_disconnect(tcpx_session *s, const char *peer)
{
    if (!s || !peer) return tcpx_set_error(TCPX_ERR_INVALID, "disconnect: NULL argument");
    sess_lock(s);
    tcpx_peer *p = peer_find(s, peer);
    if (!p) {
        sess_unlock(s);
        return tcpx_set_error(TCPX_ERR_NOT_FOUND, "disconnect: unknown peer %s", peer);
    }
    p->local_close = 1;
    if (p->state == PEER_READY || p->state == PEER_CONNECTING) peer_fail(p, TCPX_ERR_PEER, "disconnected locally");
    p->state = PEER_CLOSED;
    peer_unlink(s, p);
    sess_unlock(s);
    TCPX_INFO("disconnected from %s", peer);
    return TCPX_OK;
}

tcpx_status tcpx_session_peer_status(tcpx_session *s, const char *peer)
{
    if (!s || !peer) return tcpx_set_error(TCPX_ERR_INVALID, "peer_status: NULL argument");
    sess_lock(s);
    sess_progress_locked(s);
    tcpx_peer *p = peer_find(s, peer);
    tcpx_status st;
    if (!p) st = tcpx_set_error(TCPX_ERR_NOT_FOUND, "unknown peer %s", peer);
    else if (p->state == PEER_READY) st = TCPX_OK;
    else if (p->state == PEER_FAILED) st = tcpx_set_error(p->err, "peer %s: %s", peer, p->errmsg);
    else st = tcpx_set_error(TCPX_ERR_PEER, "peer %s is not connected", peer);
    sess_unlock(s);
    return st;
}

tcpx_status tcpx_session_progress(tcpx_session *s)
{
    if (!s) return tcpx_set_error(TCPX_ERR_INVALID, "session is NULL");
    sess_lock(s);
    sess_progress_locked(s);
    sess_unlock(s);
    return TCPX_OK;
}
