/* error.h - thread-local error detail behind tcpx_last_error(). */
#ifndef TCPX_ERROR_H
#define TCPX_ERROR_H

#include "tcpx_p2p.h"

/* Record a sentence for tcpx_last_error() and return st, so that error paths
 * read `return tcpx_set_error(TCPX_ERR_INVALID, "size %zu", n);`. */
tcpx_status tcpx_set_error(tcpx_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear the calling thread's error detail. */
void tcpx_clear_error(void);

#endif
