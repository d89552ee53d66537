/* blob.h - the two binary blobs that leave the process: connection info and
 * memory descriptors.
 *
 * Both start with magic "TCPX" (little-endian u32 0x58504354), a version byte
 * and a kind byte, have a length fixed by their fields, and end with a
 * CRC-32C of everything before it. Decoders reject any other length, magic,
 * version, kind, checksum or out-of-range field with TCPX_ERR_PROTOCOL.
 *
 * Connection info, version 1:
 *   u32 magic, u8 version=1, u8 kind=1, u16 channels (1..64),
 *   u64 token, u32 handle_size (=128), char transport[32] (NUL padded),
 *   u8 handles[channels + 1][128]   (index 0 is the control endpoint),
 *   u32 crc32c
 * Memory descriptor, version 1 (48 bytes):
 *   u32 magic, u8 version=1, u8 kind=2, u8 mem_kind (0 host, 1 cuda), u8 0,
 *   u64 addr, u64 size, u64 mem id, u64 key, u32 reserved=0, u32 crc32c
 */
#ifndef TCPX_BLOB_H
#define TCPX_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "tcpx_p2p.h"

#define TCPX_BLOB_MAGIC 0x58504354u
#define TCPX_BLOB_VERSION 1
#define TCPX_BLOB_KIND_CONNINFO 1
#define TCPX_BLOB_KIND_MEMDESC 2
#define TCPX_TRANSPORT_NAME_MAX 32

typedef struct tcpx_conninfo {
    uint16_t channels;
    uint64_t token;
    char transport[TCPX_TRANSPORT_NAME_MAX];   /* NUL terminated */
    uint8_t handles[TCPX_MAX_CHANNELS + 1][TCPX_NET_HANDLE_SIZE];
} tcpx_conninfo;

/* Exact encoded size for a channel count. */
size_t tcpx_conninfo_size(unsigned channels);

/* Encode into buf; *len = bytes written. TCPX_ERR_INVALID if cap is too small
 * or the info is out of range. */
tcpx_status tcpx_conninfo_encode(const tcpx_conninfo *ci, void *buf, size_t cap, size_t *len);

/* Decode; TCPX_ERR_PROTOCOL on anything malformed. */
tcpx_status tcpx_conninfo_decode(const void *buf, size_t len, tcpx_conninfo *ci);

#endif
