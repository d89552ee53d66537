#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static _Thread_local char t_last[512];

const char *tcpx_strerror(tcpx_status st)
{
    switch (st) {
    case TCPX_OK: return "TCPX_OK";
    case TCPX_IN_PROGRESS: return "TCPX_IN_PROGRESS";
    case TCPX_ERR_INVALID: return "TCPX_ERR_INVALID";
    case TCPX_ERR_NOMEM: return "TCPX_ERR_NOMEM";
    case TCPX_ERR_NOT_FOUND: return "TCPX_ERR_NOT_FOUND";
    case TCPX_ERR_TIMEOUT: return "TCPX_ERR_TIMEOUT";
    case TCPX_ERR_PEER: return "TCPX_ERR_PEER";
    case TCPX_ERR_PROTOCOL: return "TCPX_ERR_PROTOCOL";
    case TCPX_ERR_UNSUPPORTED: return "TCPX_ERR_UNSUPPORTED";
    case TCPX_ERR_CUDA: return "TCPX_ERR_CUDA";
    case TCPX_ERR_TRANSPORT: return "TCPX_ERR_TRANSPORT";
    case TCPX_ERR_AUTH: return "TCPX_ERR_AUTH";
    case TCPX_ERR_SYSTEM: return "TCPX_ERR_SYSTEM";
    case TCPX_ERR_ACCESS: return "TCPX_ERR_ACCESS";
    }
    return "TCPX_ERR_UNKNOWN";
}

const char *tcpx_last_error(void) { return t_last; }

void tcpx_clear_error(void) { t_last[0] = '\0'; }

tcpx_status tcpx_set_error(tcpx_status st, const char *fmt, ...)
{
    /* Format aside first: callers may pass tcpx_last_error() itself as an
     * argument, to prefix the detail of a lower layer. */
    char msg[sizeof t_last];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(t_last, msg, sizeof t_last);
    TCPX_DEBUG("%s: %s", tcpx_strerror(st), t_last);
    return st;
}
