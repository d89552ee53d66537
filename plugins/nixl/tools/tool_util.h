// tool_util.h - what the NIXL test and benchmark programs share: a
// bootstrap channel between their two processes (length-prefixed strings on
// a socket), memory on the host or a GPU filled and checked with the
// reproducible sequences of src/gpu/gpu.h, and a 64-bit mix.
//
// Each program defines tool_die(): print the failure its own way and exit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {
#include "gpu/gpu.h"
}

[[noreturn]] void tool_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

namespace tool {

// Bootstrap: one string each way at a time, bounded by timeout_s.
void put(int fd, const std::string &s);
std::string get(int fd, int timeout_s = 180);
void expect(int fd, const std::string &want);

uint64_t mix(uint64_t a, uint64_t b);

// Host memory (mmap) or GPU memory (device 0, through src/gpu).
struct Mem {
    uint8_t *p = nullptr;
    size_t size = 0;
    bool gpu = false;
    tcpx_gpu *g = nullptr;
    tcpx_gpu_stream *st = nullptr;
    uintptr_t addr() const { return (uintptr_t)p; }
};

void mem_alloc(Mem &m, size_t size, bool gpu);
void mem_free(Mem &m);
void mem_fill(Mem &m, size_t off, size_t n, uint64_t seed);
// The offset (from off) of the first byte that differs from the sequence
// of seed, or UINT64_MAX when all n match.
uint64_t mem_first_bad(Mem &m, size_t off, size_t n, uint64_t seed);

} // namespace tool
