/* netdev.c - which transport device (NIC) a session uses.
 *
 * A GPUDirect-TCPX VM has several data NICs, each on the PCIe switch of two
 * GPUs; receives land in GPU memory through the NIC, so a session should use
 * the NIC that shares the most of its PCI path with the session's GPU (as
 * NCCL's topology search does). TCPX_NET_DEVICE / cfg.net_device overrides.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "gpu/gpu.h"
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
