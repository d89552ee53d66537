// nixl_bench.cpp - tcpx-nixl-bench: throughput of NIXL's agent API between
// two processes, backend TCPX and NIXL's other backends (UCX) side by side.
//
// For each backend two processes are started: an initiator I and a target
// T, each a nixlAgent with that backend and one registration (host memory,
// or GPU memory with --mem VRAM). Metadata goes over a socketpair
// (getLocalMD / loadRemoteMD). For each row (operation, descriptors per
// request, block size) I builds one request of `batch` descriptors (block i
// at offset i*size on both sides), posts it twice to warm up, then posts it
// again and waits for it, over and over, until --bytes moved or --seconds
// passed (at least 4 times); GB/s is bytes moved / time (10^9 bytes).
//
// Verification, every row: the destination is first overwritten with other
// data; after the timed posts, for a WRITE one more post carries a
// notification and T checks every byte when it arrives, for a READ I checks
// every byte it read. A mismatch ends the program with an error.
//
// T, waiting, polls getNotifs the whole time (NIXL's UCX backend makes
// progress for a target only then), as nixlbench's target does.
//
//   tcpx-nixl-bench [--backends TCPX,UCX] [--ops write,read] [--mem DRAM|VRAM]
//                   [--sizes 4K,64K,1M,...] [--batches 1,128] [--bytes 512M]
//                   [--seconds 1] [--max-mem 1G] [--inflight 1] [--csv]
//
// NIXL must find both plugins: NIXL_PLUGIN_DIR names one directory holding
// libplugin_TCPX.so and NIXL's own (the build's tests/nixl/plugins is one).
// For UCX over TCP set UCX_TLS=tcp,self (and UCX_NET_DEVICES=lo on loopback).
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "nixl.h"

#include "tool_util.h"

namespace {

const char *g_role = "main";

struct Options {
    std::vector<std::string> backends{"TCPX", "UCX"};
    std::vector<std::string> ops{"write", "read"};
    std::string mem = "DRAM";
    std::vector<size_t> sizes{4096, 16384, 65536, 262144, 1u << 20, 4u << 20, 16u << 20, 64u << 20};
    std::vector<size_t> batches{1, 128};
    size_t bytes = 512u << 20;
    double seconds = 1.0;
    size_t max_mem = 1u << 30;
    int inflight = 1;
    bool csv = false;
};

struct Row {
    std::string op;
    size_t batch, size;
};

struct Result {
    double gbps = 0, us = 0; // us: per request
    uint64_t posts = 0;
    std::string note;       // why there is no figure
};

} // namespace

void tool_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "[tcpx-nixl-bench/%s] error: ", g_role);
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, "\n");
    va_end(ap);
    std::fflush(nullptr);
    _exit(1);
}

namespace {

#define NX(call)                                                                                           \
    do {                                                                                                   \
        nixl_status_t st_ = (call);                                                                        \
        if (st_ != NIXL_SUCCESS) tool_die("%s returned %s", #call, nixlEnumStrings::statusStr(st_).c_str()); \
    } while (0)

size_t parse_size(const char *s)
{
    char *end = nullptr;
    double v = std::strtod(s, &end);
    size_t mult = 1;
    if (end && *end) {
        switch (*end) {
        case 'K': case 'k': mult = 1u << 10; break;
        case 'M': case 'm': mult = 1u << 20; break;
        case 'G': case 'g': mult = 1u << 30; break;
        default: tool_die("bad size \"%s\" (a number with K, M or G)", s);
        }
    }
    if (!(v > 0)) tool_die("bad size \"%s\"", s);
    return (size_t)(v * (double)mult);
}

std::vector<std::string> split(const char *s)
{
    std::vector<std::string> v;
    std::string cur;
    for (const char *p = s;; p++) {
        if (!*p || *p == ',') {
            if (!cur.empty()) v.push_back(cur);
            cur.clear();
            if (!*p) break;
        } else {
            cur += *p;
        }
    }
    return v;
}

std::string human(size_t n)
{
    char b[32];
    if (n >= (1u << 30) && n % (1u << 30) == 0) std::snprintf(b, sizeof b, "%zuG", n >> 30);
    else if (n >= (1u << 20) && n % (1u << 20) == 0) std::snprintf(b, sizeof b, "%zuM", n >> 20);
    else if (n >= 1024 && n % 1024 == 0) std::snprintf(b, sizeof b, "%zuK", n >> 10);
    else std::snprintf(b, sizeof b, "%zu", n);
    return b;
}

Options parse(int argc, char **argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> const char * {
            if (i + 1 >= argc) tool_die("%s needs a value", a.c_str());
            return argv[++i];
        };
        if (a == "--backends") o.backends = split(val());
        else if (a == "--ops") o.ops = split(val());
        else if (a == "--mem") o.mem = val();
        else if (a == "--sizes") {
            o.sizes.clear();
            for (auto &s : split(val())) o.sizes.push_back(parse_size(s.c_str()));
        } else if (a == "--batches") {
            o.batches.clear();
            for (auto &s : split(val())) o.batches.push_back((size_t)std::atol(s.c_str()));
        } else if (a == "--bytes") o.bytes = parse_size(val());
        else if (a == "--seconds") o.seconds = std::atof(val());
        else if (a == "--max-mem") o.max_mem = parse_size(val());
        else if (a == "--inflight") o.inflight = std::atoi(val());
        else if (a == "--csv") o.csv = true;
        else if (a == "--help" || a == "-h") {
            std::printf("usage: tcpx-nixl-bench [--backends TCPX,UCX] [--ops write,read] [--mem DRAM|VRAM]\n"
                        "       [--sizes 4K,64K,1M] [--batches 1,128] [--bytes 512M] [--seconds 1]\n"
                        "       [--max-mem 1G] [--inflight 1] [--csv]\n");
            std::exit(0);
        } else tool_die("unknown argument %s (--help lists them)", a.c_str());
    }
    for (auto &op : o.ops)
        if (op != "write" && op != "read") tool_die("--ops: \"%s\" is not write or read", op.c_str());
    if (o.mem != "DRAM" && o.mem != "VRAM") tool_die("--mem: DRAM or VRAM");
    for (size_t b : o.batches)
        if (!b) tool_die("--batches: 0");
    if (o.inflight < 1 || o.inflight > 64) tool_die("--inflight: 1..64");
    if (o.backends.empty() || o.ops.empty() || o.sizes.empty() || o.batches.empty()) tool_die("an empty list");
    return o;
}

// ------------------------------------------------------------------ sides

struct Side {
    nixlAgent *agent = nullptr;
    nixlBackendH *backend = nullptr;
    nixl_mem_t seg = DRAM_SEG;
    tool::Mem mem;
    nixl_opt_args_t opt;
    uintptr_t peer_base = 0;
};

// Agent, backend, registration, metadata swapped with the other process.
// On a backend that cannot be created (or registers no such memory) the
// reason goes to the other side and both return false.
bool side_open(Side &s, int fd, const char *name, const char *peer, const std::string &backend, bool gpu,
               size_t size, std::string *skip)
{
    s.agent = new nixlAgent(name, nixlAgentConfig());
    nixl_b_params_t params;
    nixl_status_t st = s.agent->createBackend(backend, params, s.backend);
    std::string why;
    if (st != NIXL_SUCCESS) why = "createBackend: " + nixlEnumStrings::statusStr(st);
    s.seg = gpu ? VRAM_SEG : DRAM_SEG;
    if (why.empty()) {
        s.opt.backends.push_back(s.backend);
        tool::mem_alloc(s.mem, size, gpu);
        tool::mem_fill(s.mem, 0, size, 0x5eed);
        nixl_reg_dlist_t l(s.seg);
        l.addDesc(nixlBlobDesc(s.mem.addr(), size, 0, ""));
        st = s.agent->registerMem(l, &s.opt);
        if (st != NIXL_SUCCESS) why = "registerMem: " + nixlEnumStrings::statusStr(st);
    }
    tool::put(fd, why.empty() ? "ok" : why);
    std::string other = tool::get(fd);
    if (!why.empty() || other != "ok") {
        *skip = !why.empty() ? std::string(name) + ": " + why : std::string(peer) + ": " + other;
        tool::put(fd, "closing");
        tool::get(fd);
        return false;
    }
    std::string md;
    NX(s.agent->getLocalMD(md));
    tool::put(fd, md);
    tool::put(fd, std::to_string(s.mem.addr()));
    std::string remote = tool::get(fd);
    s.peer_base = (uintptr_t)std::stoull(tool::get(fd));
    std::string got;
    NX(s.agent->loadRemoteMD(remote, got));
    if (got != peer) tool_die("loadRemoteMD: agent \"%s\", expected \"%s\"", got.c_str(), peer);
    return true;
}

nixl_status_t wait_req(nixlAgent *a, nixlXferReqH *r)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    nixl_status_t st;
    while ((st = a->getXferStatus(r)) == NIXL_IN_PROG)
        if (std::chrono::steady_clock::now() > end) tool_die("a transfer did not complete within 120 s");
    return st;
}

uint64_t row_seed(const Row &r, int backend_index)
{
    return tool::mix(tool::mix(r.size, r.batch), (r.op == "write" ? 1 : 2) + 16 * (uint64_t)backend_index);
}

// Every byte of the row's area against its sequence.
std::string check_area(tool::Mem &m, const Row &r, uint64_t seed)
{
    uint64_t bad = tool::mem_first_bad(m, 0, r.batch * r.size, seed);
    if (bad == UINT64_MAX) return "ok";
    char b[160];
    std::snprintf(b, sizeof b, "byte %" PRIu64 " (block %" PRIu64 ") differs", bad, bad / r.size);
    return b;
}

// ----------------------------------------------------------------- target

// T's idle loop: the next command from I, polling getNotifs meanwhile (as
// nixlbench's target does: a backend may progress only when called).
std::string next_command(Side &t, int fd)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(600);
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) return tool::get(fd);
        nixl_notifs_t n;
        NX(t.agent->getNotifs(n));
        if (std::chrono::steady_clock::now() > end) tool_die("no command from I within 600 s");
    }
}

void target(int fd, const std::string &backend, const Options &o, size_t area)
{
    g_role = "T";
    Side t;
    std::string skip;
    if (!side_open(t, fd, "T", "I", backend, o.mem == "VRAM", area, &skip)) return;
    for (;;) {
        std::string cmd = next_command(t, fd);
        if (cmd == "quit") break;
        char op[16];
        size_t batch = 0, size = 0;
        uint64_t seed = 0;
        if (std::sscanf(cmd.c_str(), "row %15s %zu %zu %" SCNu64, op, &batch, &size, &seed) != 4)
            tool_die("bootstrap: \"%s\"", cmd.c_str());
        Row r{op, batch, size};
        // READ: the data I reads; WRITE: something else, overwritten by I.
        tool::mem_fill(t.mem, 0, batch * size, r.op == "read" ? seed : ~seed);
        tool::put(fd, "ready");
        if (r.op == "write") {
            std::string want = "verify " + std::to_string(seed);
            auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
            for (bool seen = false; !seen;) {
                nixl_notifs_t n;
                NX(t.agent->getNotifs(n));
                for (auto &kv : n)
                    for (auto &m : kv.second) seen |= m == want;
                if (std::chrono::steady_clock::now() > end) tool_die("no notification \"%s\" in 120 s", want.c_str());
            }
            tool::put(fd, check_area(t.mem, r, seed));
        }
    }
    tool::put(fd, "bye");
}

// -------------------------------------------------------------- initiator

Result run_row(Side &s, int fd, const Row &r, uint64_t seed, const Options &o)
{
    tool::put(fd, "row " + r.op + " " + std::to_string(r.batch) + " " + std::to_string(r.size) + " " +
                      std::to_string(seed));
    tool::mem_fill(s.mem, 0, r.batch * r.size, r.op == "write" ? seed : ~seed);
    tool::expect(fd, "ready");
    nixl_xfer_dlist_t local(s.seg), remote(s.seg);
    for (size_t i = 0; i < r.batch; i++) {
        local.addDesc(nixlBasicDesc(s.mem.addr() + i * r.size, r.size, 0));
        remote.addDesc(nixlBasicDesc(s.peer_base + i * r.size, r.size, 0));
    }
    nixl_xfer_op_t op = r.op == "write" ? NIXL_WRITE : NIXL_READ;
    std::vector<nixlXferReqH *> reqs((size_t)o.inflight, nullptr);
    for (auto &q : reqs) NX(s.agent->createXferReq(op, local, remote, "T", q, &s.opt));
    auto post = [&](nixlXferReqH *q) {
        nixl_status_t st = s.agent->postXferReq(q);
        if (st < 0) tool_die("postXferReq: %s", nixlEnumStrings::statusStr(st).c_str());
    };
    auto finish = [&](nixlXferReqH *q) {
        nixl_status_t st = wait_req(s.agent, q);
        if (st != NIXL_SUCCESS) tool_die("transfer failed: %s", nixlEnumStrings::statusStr(st).c_str());
    };
    for (int w = 0; w < 2; w++)
        for (auto q : reqs) {
            post(q);
            finish(q);
        }
    const double row_bytes = (double)(r.batch * r.size);
    uint64_t want = std::max<uint64_t>(4, (uint64_t)((double)o.bytes / row_bytes));
    auto t0 = std::chrono::steady_clock::now();
    auto stop = t0 + std::chrono::duration<double>(o.seconds);
    uint64_t posted = 0, done = 0;
    // Up to `inflight` requests out at once, each reposted when it completes.
    for (auto q : reqs) {
        post(q);
        posted++;
    }
    while (done < posted) {
        for (auto q : reqs) {
            finish(q);
            done++;
            if (posted < want && (posted < 4 || std::chrono::steady_clock::now() < stop)) {
                post(q);
                posted++;
            }
            if (done == posted) break;
        }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto q : reqs) NX(s.agent->releaseXferReq(q));
    Result res;
    res.posts = done;
    res.gbps = row_bytes * (double)done / secs / 1e9;
    res.us = secs * 1e6 / (double)done * (double)o.inflight;
    if (r.op == "write") {
        nixl_opt_args_t no = s.opt;
        no.hasNotif = true;
        no.notifMsg = "verify " + std::to_string(seed);
        nixlXferReqH *q = nullptr;
        NX(s.agent->createXferReq(op, local, remote, "T", q, &no));
        post(q);
        finish(q);
        NX(s.agent->releaseXferReq(q));
        std::string v = tool::get(fd);
        if (v != "ok") tool_die("WRITE %zu x %zu: T found %s", r.batch, r.size, v.c_str());
    } else {
        std::string v = check_area(s.mem, r, seed);
        if (v != "ok") tool_die("READ %zu x %zu: %s", r.batch, r.size, v.c_str());
    }
    return res;
}

// Runs every row; writes one line per row to out: "<row index> <GB/s> <us>
// <posts>", or one line "skip <why>" when the backend cannot run here.
void initiator(int fd, int out, const std::string &backend, int bi, const Options &o,
               const std::vector<Row> &rows, size_t area)
{
    g_role = "I";
    Side s;
    std::string skip;
    if (!side_open(s, fd, "I", "T", backend, o.mem == "VRAM", area, &skip)) {
        dprintf(out, "skip %s\n", skip.c_str());
        return;
    }
    for (size_t i = 0; i < rows.size(); i++) {
        Result r = run_row(s, fd, rows[i], row_seed(rows[i], bi), o);
        dprintf(out, "%zu %.6f %.3f %" PRIu64 "\n", i, r.gbps, r.us, r.posts);
    }
    tool::put(fd, "quit");
    tool::expect(fd, "bye");
}

// Both processes for one backend; the results by row (empty note: measured).
std::vector<Result> run_backend(const std::string &backend, int bi, const Options &o, const std::vector<Row> &rows,
                                size_t area)
{
    int sv[2], pf[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(pf)) tool_die("socketpair/pipe");
    std::fflush(nullptr);
    pid_t t = fork();
    if (t == 0) {
        close(sv[0]);
        close(pf[0]);
        close(pf[1]);
        target(sv[1], backend, o, area);
        std::fflush(nullptr);
        _exit(0);
    }
    pid_t i = fork();
    if (i == 0) {
        close(sv[1]);
        close(pf[0]);
        initiator(sv[0], pf[1], backend, bi, o, rows, area);
        std::fflush(nullptr);
        _exit(0);
    }
    close(sv[0]);
    close(sv[1]);
    close(pf[1]);
    std::vector<Result> res(rows.size());
    for (auto &r : res) r.note = "not run";
    FILE *in = fdopen(pf[0], "r");
    char line[512];
    while (in && std::fgets(line, sizeof line, in)) {
        size_t idx = 0;
        double gbps = 0, us = 0;
        uint64_t posts = 0;
        if (!std::strncmp(line, "skip ", 5)) {
            line[std::strcspn(line, "\n")] = 0;
            std::fprintf(stderr, "[tcpx-nixl-bench] backend %s does not run here: %s\n", backend.c_str(), line + 5);
            for (auto &r : res) r.note = "cannot run";
        } else if (std::sscanf(line, "%zu %lf %lf %" SCNu64, &idx, &gbps, &us, &posts) == 4 && idx < res.size()) {
            res[idx] = Result{gbps, us, posts, ""};
        }
    }
    if (in) std::fclose(in);
    int ws = 0, ok = 1;
    for (pid_t p : {i, t}) {
        if (waitpid(p, &ws, 0) != p || !WIFEXITED(ws) || WEXITSTATUS(ws)) ok = 0;
    }
    if (!ok) tool_die("backend %s: a process failed (see its error above)", backend.c_str());
    return res;
}

} // namespace

int main(int argc, char **argv)
{
    Options o = parse(argc, argv);
    std::vector<Row> rows;
    std::vector<std::string> skipped;
    size_t area = 0;
    for (const auto &op : o.ops)
        for (size_t b : o.batches)
            for (size_t sz : o.sizes) {
                if (b * sz > o.max_mem) {
                    skipped.push_back(op + " " + std::to_string(b) + "x" + human(sz));
                    continue;
                }
                rows.push_back(Row{op, b, sz});
                area = std::max(area, b * sz);
            }
    if (rows.empty()) tool_die("no row fits in --max-mem %s", human(o.max_mem).c_str());
    std::map<std::string, std::vector<Result>> all;
    for (size_t bi = 0; bi < o.backends.size(); bi++) {
        std::fprintf(stderr, "[tcpx-nixl-bench] backend %s: %zu rows\n", o.backends[bi].c_str(), rows.size());
        all[o.backends[bi]] = run_backend(o.backends[bi], (int)bi, o, rows, area);
    }
    // The table: one line per row, the backends side by side.
    const std::string &first = o.backends[0];
    if (o.csv) {
        std::printf("op,mem,batch,block");
        for (auto &b : o.backends) std::printf(",%s_GBps,%s_us", b.c_str(), b.c_str());
        std::printf("\n");
    } else {
        std::printf("%-6s %-5s %6s %7s", "op", "mem", "batch", "block");
        for (auto &b : o.backends) std::printf(" | %7s GB/s %9s", b.c_str(), "us/req");
        if (o.backends.size() > 1) std::printf(" | %s/%s", first.c_str(), o.backends[1].c_str());
        std::printf("\n");
    }
    for (size_t i = 0; i < rows.size(); i++) {
        const Row &r = rows[i];
        if (o.csv) std::printf("%s,%s,%zu,%zu", r.op.c_str(), o.mem.c_str(), r.batch, r.size);
        else std::printf("%-6s %-5s %6zu %7s", r.op.c_str(), o.mem.c_str(), r.batch, human(r.size).c_str());
        for (auto &b : o.backends) {
            const Result &x = all[b][i];
            if (o.csv) {
                if (x.note.empty()) std::printf(",%.3f,%.1f", x.gbps, x.us);
                else std::printf(",,");
            } else if (x.note.empty()) {
                std::printf(" | %12.3f %9.1f", x.gbps, x.us);
            } else {
                std::printf(" | %22s", x.note.c_str());
            }
        }
        if (!o.csv && o.backends.size() > 1) {
            const Result &a = all[first][i], &b = all[o.backends[1]][i];
            if (a.note.empty() && b.note.empty() && b.gbps > 0) std::printf(" | %6.2fx", a.gbps / b.gbps);
        }
        std::printf("\n");
    }
    for (auto &s : skipped) std::printf("(skipped %s: more than --max-mem %s a side)\n", s.c_str(), human(o.max_mem).c_str());
    std::printf("every row verified: destination overwritten first, every byte checked after\n");
    return 0;
}
