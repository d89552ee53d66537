// tcpx_status_map.h - tcpx_status -> nixl_status_t, in one place.
#ifndef TCPX_NIXL_STATUS_MAP_H
#define TCPX_NIXL_STATUS_MAP_H

#include "nixl_types.h"
#include "tcpx_p2p.h"

// A dead, disconnected, unreachable or silent peer: NIXL_ERR_REMOTE_DISCONNECT;
// a refused remote access or a bad argument: NIXL_ERR_INVALID_PARAM; an
// unknown peer or registration: NIXL_ERR_NOT_FOUND; no such feature here:
// NIXL_ERR_NOT_SUPPORTED; the rest: NIXL_ERR_BACKEND.
nixl_status_t tcpx_to_nixl(tcpx_status st);

#endif
