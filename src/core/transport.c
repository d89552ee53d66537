/* transport.c - which transport a session drives and which of its devices
 * (NIC): "socket", a named ncclNet plugin, or "auto"; and the NIC whose PCI
 * path is nearest the session's GPU.
 *
 * A GPUDirect-TCPX VM has several data NICs, each on the PCIe switch of two
 * GPUs; receives land in GPU memory through the NIC, so a session should use
 * the NIC that shares the most of its PCI path with the session's GPU (as
 * NCCL's topology search does). TCPX_NET_DEVICE / cfg.net_device overrides.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
#include "gpu/unpack.h"
#include "net/plugin.h"
#include "util/error.h"
#include "util/log.h"

int pci_path_shared(const char *a, const char *b)
{
    int depth = 0;
    for (size_t i = 0;; i++) {
        int end_a = a[i] == '/' || a[i] == '\0', end_b = b[i] == '/' || b[i] == '\0';
        if (end_a && end_b) {
            if (i > 0) depth++;
            if (a[i] == '\0' || b[i] == '\0') return depth;
            continue;
        }
        if (a[i] != b[i]) return depth;
    }
}

tcpx_status pick_net_device(tcpx_session *s, int ndev)
{
    int want = s->cfg.net_device;
    if (want >= ndev)
        return tcpx_set_error(TCPX_ERR_INVALID, "net_device %d: transport %s has %d device(s)", want, s->net->name,
                              ndev);
    if (want >= 0 || ndev == 1 || !s->gpu) {
        s->net_dev = want >= 0 ? want : 0;
        return TCPX_OK;
    }
    char gpu_path[512];
    if (tcpx_gpu_pci_path(s->gpu, gpu_path, sizeof gpu_path)) {
        TCPX_INFO("session %s: %s; using net device 0", s->cfg.name, tcpx_last_error());
        s->net_dev = 0;
        return TCPX_OK;
    }
    int best = 0, best_depth = -1;
    for (int d = 0; d < ndev; d++) {
        tcpx_net_props p;
        if (s->net->get_properties(s->net, d, &p)) return tcpx_set_error(TCPX_ERR_TRANSPORT, "%s", tcpx_last_error());
        int depth = p.pci_path[0] ? pci_path_shared(gpu_path, p.pci_path) : 0;
        TCPX_DEBUG("session %s: net device %d (%s, %s): %d PCI path components shared with the GPU", s->cfg.name, d,
                   p.name, p.pci_path[0] ? p.pci_path : "no PCI path", depth);
        if (depth > best_depth) {
            best = d;
            best_depth = depth;
        }
    }
    s->net_dev = best;
    TCPX_INFO("session %s: GPU %s is nearest net device %d of %d", s->cfg.name, gpu_path, best, ndev);
    return TCPX_OK;
}

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

tcpx_status open_transport(tcpx_session *s)
{
    const char *t = s->cfg.transport;
    tcpx_net_opts o = {
        .socks_per_comm = s->cfg.socks_per_comm,
        .io_threads = s->cfg.io_threads,
        .callers_move = s->cfg.callers_move < 0 ? 0 : s->cfg.callers_move ? 1 : 2,
        .peer_timeout_ms = s->cfg.peer_timeout_ms,
        .bind_addr = s->cfg.bind_addr,
        .notify = sess_wake,
        .idle = sess_io_idle,
        .serve = sess_io_serve,
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
