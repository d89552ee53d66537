/* config.c - defaults and TCPX_* environment overrides. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcpx_p2p.h"
#include "util/error.h"

void tcpx_config_init(tcpx_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->gpu_id = -1;
    cfg->channels = 4;
    snprintf(cfg->transport, sizeof cfg->transport, "auto");
    char host[TCPX_NAME_MAX - 12] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(cfg->name, sizeof cfg->name, "%s:%d", host, (int)getpid());
    cfg->chunk_bytes = 1u << 20;
    cfg->window = 8;
    cfg->staging_slots = 4;
    cfg->socks_per_comm = 1;
    cfg->spin_us = 200;
    cfg->progress_spin_us = -1;
    cfg->callers_move = -1;
    cfg->connect_timeout_ms = 30000;
    cfg->peer_timeout_ms = 30000;
    cfg->log_level = 2;
    cfg->progress_thread = 1;
    cfg->net_device = -1;
    cfg->unexpected_max = 65536;
    cfg->unexpected_max_bytes = 64u << 20;
}

static tcpx_status env_long(const char *var, long lo, long hi, long *out)
{
    const char *v = getenv(var);
    if (!v || !*v) return TCPX_IN_PROGRESS; /* not set */
    char *end;
    errno = 0;
    long x = strtol(v, &end, 0);
    if (errno || *end || x < lo || x > hi)
        return tcpx_set_error(TCPX_ERR_INVALID, "%s=\"%s\": expected an integer in %ld..%ld", var, v, lo, hi);
    *out = x;
    return TCPX_OK;
}

static tcpx_status env_str(const char *var, char *dst, size_t cap)
{
    const char *v = getenv(var);
    if (!v) return TCPX_OK;
    if (strlen(v) >= cap) return tcpx_set_error(TCPX_ERR_INVALID, "%s is longer than %zu characters", var, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return TCPX_OK;
}

#define ENV_INT(var, field, lo, hi)                                  \
    do {                                                             \
        long x_;                                                     \
        tcpx_status st_ = env_long(var, lo, hi, &x_);                \
        if (st_ == TCPX_OK) cfg->field = (__typeof__(cfg->field))x_; \
        else if (st_ < 0) return st_;                                \
    } while (0)

tcpx_status tcpx_config_apply_env(tcpx_config *cfg)
{
    if (!cfg) return tcpx_set_error(TCPX_ERR_INVALID, "config is NULL");
    ENV_INT("TCPX_GPU", gpu_id, -2, 1024);
    ENV_INT("TCPX_CHANNELS", channels, 1, TCPX_MAX_CHANNELS);
    ENV_INT("TCPX_CHUNK_BYTES", chunk_bytes, 4096, 1L << 30);
    ENV_INT("TCPX_WINDOW", window, 1, 1024);
    ENV_INT("TCPX_STAGING_SLOTS", staging_slots, 1, 256);
    ENV_INT("TCPX_SOCKS_PER_COMM", socks_per_comm, 1, 16);
    ENV_INT("TCPX_IO_THREADS", io_threads, 0, 64);
    ENV_INT("TCPX_CALLERS_MOVE", callers_move, -1, 1);
    ENV_INT("TCPX_SPIN_US", spin_us, 0, 1000000);
    ENV_INT("TCPX_PROGRESS_SPIN_US", progress_spin_us, -1, 1000000);
    ENV_INT("TCPX_CONNECT_TIMEOUT_MS", connect_timeout_ms, 1, INT_MAX);
    ENV_INT("TCPX_PEER_TIMEOUT_MS", peer_timeout_ms, 1, INT_MAX);
    ENV_INT("TCPX_LOG_LEVEL", log_level, 0, 4);
    ENV_INT("TCPX_PROGRESS_THREAD", progress_thread, 0, 1);
    ENV_INT("TCPX_NET_DEVICE", net_device, -1, 1024);
    ENV_INT("TCPX_ACCEPT_ANY", accept_any, 0, 1);
    ENV_INT("TCPX_DATA_DIGEST", data_digest, 0, 1);
    ENV_INT("TCPX_UNEXPECTED_MAX", unexpected_max, 1, INT_MAX);
    ENV_INT("TCPX_UNEXPECTED_MAX_BYTES", unexpected_max_bytes, 8192, LONG_MAX);
    tcpx_status st;
    if ((st = env_str("TCPX_TRANSPORT", cfg->transport, sizeof cfg->transport))) return st;
    if ((st = env_str("TCPX_BIND_ADDR", cfg->bind_addr, sizeof cfg->bind_addr))) return st;
    if ((st = env_str("TCPX_NAME", cfg->name, sizeof cfg->name))) return st;
    return TCPX_OK;
}
