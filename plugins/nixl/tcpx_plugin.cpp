// tcpx_plugin.cpp - the plugin entry points NIXL looks up in
// libplugin_TCPX.so (NIXL_PLUGIN_API_VERSION 1).
#include "backend/backend_plugin.h"
#include "tcpx_engine.h"

namespace {

nixl_b_params_t options()
{
    nixl_b_params_t p;
    for (const char *const *k = kTcpxParams; *k; k++) p[*k] = "";
    return p;
}

} // namespace

extern "C" NIXL_PLUGIN_EXPORT nixlBackendPlugin *nixl_plugin_init()
{
    return nixlBackendPluginCreator<nixlTcpxEngine>::create(NIXL_PLUGIN_API_VERSION, "TCPX", "0.1.0", options(),
                                                            {DRAM_SEG, VRAM_SEG});
}

extern "C" NIXL_PLUGIN_EXPORT void nixl_plugin_fini() {}
