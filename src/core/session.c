/* session.c - session lifecycle (create, destroy) and accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

static tcpx_status check_config(const tcpx_config *c)
{
    if (c->gpu_id < -2)
        return tcpx_set_error(TCPX_ERR_INVALID, "gpu_id %d: use -1 for host only, -2 for the first GPU memory registered",
                              c->gpu_id);
    if (c->channels < 1 || c->channels > TCPX_MAX_CHANNELS)
        return tcpx_set_error(TCPX_ERR_INVALID, "channels %d out of range 1..%d", c->channels, TCPX_MAX_CHANNELS);
    if (c->chunk_bytes < 4096 || c->chunk_bytes > (1u << 30))
        return tcpx_set_error(TCPX_ERR_INVALID, "chunk_bytes %zu out of range 4 KiB..1 GiB", c->chunk_bytes);
    if (c->spin_us < 0 || c->spin_us > 1000000)
        return tcpx_set_error(TCPX_ERR_INVALID, "spin_us %d outside 0..1000000", c->spin_us);
    if (c->progress_spin_us < -1 || c->progress_spin_us > 1000000)
        return tcpx_set_error(TCPX_ERR_INVALID, "progress_spin_us %d outside -1..1000000", c->progress_spin_us);
    if (c->io_threads < 0 || c->io_threads > 64)
        return tcpx_set_error(TCPX_ERR_INVALID, "io_threads %d outside 0..64", c->io_threads);
    if (c->callers_move < -1 || c->callers_move > 1)
        return tcpx_set_error(TCPX_ERR_INVALID, "callers_move %d: use -1 (by cores), 0 or 1", c->callers_move);
    if (c->window < 1 || c->socks_per_comm < 1 || c->socks_per_comm > 16 || c->staging_slots < 1)
        return tcpx_set_error(TCPX_ERR_INVALID, "window %d / socks_per_comm %d / staging_slots %d out of range",
                              c->window, c->socks_per_comm, c->staging_slots);
    if (c->net_device < -1)
        return tcpx_set_error(TCPX_ERR_INVALID, "net_device %d: use -1 for the device nearest the GPU", c->net_device);
    if (c->unexpected_max < 1 || c->unexpected_max_bytes < TCPX_INLINE_MAX)
        return tcpx_set_error(TCPX_ERR_INVALID,
                              "unexpected_max %d / unexpected_max_bytes %zu: at least 1 send and %d bytes",
                              c->unexpected_max, c->unexpected_max_bytes, TCPX_INLINE_MAX);
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
    s->wake = sess_wake;
    /* The progress thread's poll while traffic flows (bg_poll) pays where
     * cores are to spare; on two it takes the I/O threads' core. It ends
     * after this long with nothing happening, so it must outlast the gap
     * between a passive target's requests at 4 in flight (H200, READ of
     * 1 MiB over 8 channels: 88 % of WRITE with 100 us, 99-107 % with 300;
     * docs/PERFORMANCE.md). Application waits on small transfers poll the
     * sockets themselves (tcpx_xfer_wait). */
    int spin_us = s->cfg.progress_spin_us >= 0 ? s->cfg.progress_spin_us
                                               : sysconf(_SC_NPROCESSORS_ONLN) >= 4 ? 300 : 0;
    s->spin_ns = (uint64_t)spin_us * 1000;
    s->wait_spin_ns = (uint64_t)s->cfg.spin_us * 1000;
    s->mem_secret = tcpx_random_u64();
    s->next_op_id = 1;
    if (s->cfg.gpu_id >= 0) st = tcpx_gpu_open(s->cfg.gpu_id, &s->gpu);
    if (!st) st = open_transport(s);
    if (!st && s->cfg.data_digest && s->unpack)
        st = tcpx_set_error(TCPX_ERR_INVALID,
                            "data_digest is not supported over a device-unpack transport (%s): its chunks land in "
                            "GPU memory the host never reads",
                            s->net->name);
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
    tcpx_gpu_host_free(s->gpu, s->inline_pinned);
    tcpx_gpu_close(s->gpu);
    free(s->blob);
    free(s->retired.ops);
    notify_free_inbox(s);
    sess_unlock(s);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wake_mu);
    pthread_cond_destroy(&s->wake_cv);
    free(s);
}

const tcpx_config *tcpx_session_config(const tcpx_session *s) { return s ? &s->cfg : NULL; }

const char *tcpx_session_transport(const tcpx_session *s) { return s && s->net ? s->net->name : "none"; }
