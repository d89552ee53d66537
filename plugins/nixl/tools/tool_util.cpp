// tool_util.cpp - see tool_util.h.
#include "tool_util.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tool {

void put(int fd, const std::string &s)
{
    uint32_t n = (uint32_t)s.size();
    if (write(fd, &n, 4) != 4 || (n && write(fd, s.data(), n) != (ssize_t)n)) tool_die("bootstrap write failed");
}

std::string get(int fd, int timeout_s)
{
    alarm((unsigned)timeout_s); // the other process died or hangs: SIGALRM ends this one
    uint32_t n = 0;
    if (recv(fd, &n, 4, MSG_WAITALL) != 4) tool_die("bootstrap read failed (the other process exited?)");
    std::string s(n, '\0');
    if (n && recv(fd, s.data(), n, MSG_WAITALL) != (ssize_t)n) tool_die("bootstrap read failed");
    alarm(0);
    return s;
}

void expect(int fd, const std::string &want)
{
    std::string got = get(fd);
    if (got != want) tool_die("bootstrap: got \"%s\", expected \"%s\"", got.c_str(), want.c_str());
}

uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mem_alloc(Mem &m, size_t size, bool gpu)
{
    m.size = size;
    m.gpu = gpu;
    if (gpu) {
        void *p = nullptr;
        if (tcpx_gpu_open(0, &m.g) || tcpx_gpu_stream_create(m.g, &m.st) || tcpx_gpu_malloc(m.g, size, &p))
            tool_die("GPU memory (%zu bytes): %s", size, tcpx_last_error());
        m.p = (uint8_t *)p;
    } else {
        void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) tool_die("mmap of %zu bytes failed", size);
        m.p = (uint8_t *)p;
    }
}

void mem_free(Mem &m)
{
    if (!m.p) return;
    if (m.gpu) {
        tcpx_gpu_free(m.g, m.p);
        tcpx_gpu_stream_destroy(m.st);
        tcpx_gpu_close(m.g);
    } else {
        munmap(m.p, m.size);
    }
    m = Mem{};
}

void mem_fill(Mem &m, size_t off, size_t n, uint64_t seed)
{
    if (!m.gpu) return tcpx_fill_random_host(m.p + off, n, seed);
    if (tcpx_gpu_fill_random(m.st, m.p + off, n, seed) || tcpx_gpu_stream_sync(m.st))
        tool_die("GPU fill: %s", tcpx_last_error());
}

uint64_t mem_first_bad(Mem &m, size_t off, size_t n, uint64_t seed)
{
    if (!m.gpu) return tcpx_compare_random_host(m.p + off, n, seed);
    uint64_t bad = 0;
    if (tcpx_gpu_compare_random(m.st, m.p + off, n, seed, &bad)) tool_die("GPU compare: %s", tcpx_last_error());
    return bad;
}

} // namespace tool
