/* random.h - unpredictable 64-bit values for tokens, keys and nonces. */
#ifndef TCPX_RANDOM_H
#define TCPX_RANDOM_H

#include <stdint.h>

/* From getrandom(2); falls back to a time/pid mix only if that fails. */
uint64_t tcpx_random_u64(void);

#endif
