/* tcpx-info - what this build of tcpx-p2p will use on this machine: library
 * version, the session config after the TCPX_* environment (every field),
 * the transport that "auto" (or TCPX_TRANSPORT) gives a session of that
 * config, and the GPUs. Exit 0 when that session could be created, 1
 * otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpx_p2p.h"
#include "gpu/gpu.h"

/* CUDA devices and driver. */
static void print_gpu_info(void)
{
    if (!tcpx_gpu_built()) {
        printf("CUDA: not built\n");
        return;
    }
    int n = 0, drv = 0, rt = 0;
    tcpx_gpu_versions(&drv, &rt);
    printf("CUDA: built (runtime %d.%d, driver %d.%d)\n", rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10);
    if (tcpx_gpu_device_count(&n)) {
        printf("  no usable GPU: %s\n", tcpx_last_error());
        return;
    }
    for (int d = 0; d < n; d++) {
        char line[256];
        if (tcpx_gpu_describe(d, line, sizeof line)) snprintf(line, sizeof line, "? (%s)", tcpx_last_error());
        printf("  GPU %d: %s\n", d, line);
    }
}

static void print_config(const char *title, const tcpx_config *c)
{
    printf("%s\n", title);
    printf("  gpu_id              %d\n", c->gpu_id);
    printf("  channels            %d\n", c->channels);
    printf("  transport           \"%s\"\n", c->transport);
    printf("  bind_addr           \"%s\"%s\n", c->bind_addr, c->bind_addr[0] ? "" : " (first up non-loopback, else 127.0.0.1)");
    printf("  name                \"%s\"\n", c->name);
    printf("  chunk_bytes         %zu\n", c->chunk_bytes);
    printf("  window              %d\n", c->window);
    printf("  staging_slots       %d\n", c->staging_slots);
    printf("  progress_thread     %d\n", c->progress_thread);
    printf("  socks_per_comm      %d\n", c->socks_per_comm);
    printf("  connect_timeout_ms  %d\n", c->connect_timeout_ms);
    printf("  peer_timeout_ms     %d\n", c->peer_timeout_ms);
    printf("  unexpected_max      %d\n", c->unexpected_max);
    printf("  unexpected_max_bytes %zu\n", c->unexpected_max_bytes);
    printf("  log_level           %d\n", c->log_level);
    printf("  net_device          %d%s\n", c->net_device, c->net_device < 0 ? " (nearest the GPU)" : "");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: %s\n  prints the tcpx-p2p version, the config after TCPX_* variables, the transport\n"
                        "  \"auto\" picks and the GPUs found; takes no arguments\n", argv[0]);
        return strcmp(argv[1], "-h") && strcmp(argv[1], "--help") ? 2 : 0;
    }
    printf("tcpx-p2p %d.%d.%d\n", TCPX_VERSION_MAJOR, TCPX_VERSION_MINOR, TCPX_VERSION_PATCH);

    tcpx_config cfg;
    tcpx_config_init(&cfg);
    tcpx_status st = tcpx_config_apply_env(&cfg);
    if (st != TCPX_OK) {
        printf("config: TCPX_* environment rejected: %s: %s\n", tcpx_strerror(st), tcpx_last_error());
        return 1;
    }
    print_config("config (defaults + TCPX_* environment):", &cfg);

    /* What "auto" resolves to for a session of this configuration: a
     * device-unpack transport (GPUDirect-TCPX) is only chosen for sessions
     * with a GPU, so TCPX_GPU matters. */
    tcpx_session *s = NULL;
    st = tcpx_session_create(&cfg, &s);
    int rc = 0;
    const char *who = cfg.gpu_id >= 0 ? "GPU session" : "host-only session (set TCPX_GPU for a GPU session)";
    if (st == TCPX_OK) {
        printf("transport: \"%s\" -> %s, for a %s\n", cfg.transport, tcpx_session_transport(s), who);
        tcpx_session_destroy(s);
    } else {
        printf("transport: \"%s\" -> cannot create a %s: %s: %s\n", cfg.transport, who, tcpx_strerror(st),
               tcpx_last_error());
        rc = 1;
    }
    print_gpu_info();
    return rc;
}
