// tcpx_status_map.cpp - see tcpx_status_map.h.
#include "tcpx_status_map.h"

nixl_status_t tcpx_to_nixl(tcpx_status st)
{
    switch (st) {
    case TCPX_OK: return NIXL_SUCCESS;
    case TCPX_IN_PROGRESS: return NIXL_IN_PROG;
    case TCPX_ERR_PEER:
    case TCPX_ERR_TIMEOUT:
    case TCPX_ERR_AUTH: return NIXL_ERR_REMOTE_DISCONNECT;
    case TCPX_ERR_ACCESS:
    case TCPX_ERR_INVALID: return NIXL_ERR_INVALID_PARAM;
    case TCPX_ERR_NOT_FOUND: return NIXL_ERR_NOT_FOUND;
    case TCPX_ERR_UNSUPPORTED: return NIXL_ERR_NOT_SUPPORTED;
    case TCPX_ERR_NOMEM:
    case TCPX_ERR_PROTOCOL:
    case TCPX_ERR_CUDA:
    case TCPX_ERR_TRANSPORT:
    case TCPX_ERR_SYSTEM: return NIXL_ERR_BACKEND;
    }
    return NIXL_ERR_BACKEND;
}
