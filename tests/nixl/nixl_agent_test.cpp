// nixl_agent_test.cpp - NIXL's own agent (nixlAgent, NIXL 1.4) driving the
// backend "TCPX" between two processes: initiator I and target T (a passive
// target: it registers memory and polls notifications, nothing else).
//
//   1. metadata: getLocalMD / loadRemoteMD over a socketpair; then (with
//      --listener) T's again through NIXL's own socket exchange
//      (fetchRemoteMD from T's listener);
//   2. WRITE and READ of 1, 7, 300, 1000 and 4096 descriptors of random sizes
//      (1 B .. 1 MiB) at random places of three registrations, every one with
//      a notification (a WRITE's with a payload, a READ's empty); T checks
//      every byte of a WRITE when its notification arrives, I every byte of
//      a READ;
//   3. a request posted again after it completed, with new data and a new
//      notification; genNotif both ways;
//   4. releaseXferReq of a 256 MiB WRITE in flight returns at once;
//   5. a descriptor beyond T's registration: refused by the agent; one in a
//      region T deregistered after I loaded its metadata: refused by T, the
//      error comes back from getXferStatus, and T keeps serving;
//   6. invalidateRemoteMD: transfers to T refused, then T's metadata loaded
//      again and a WRITE works;
//   7. T killed in the middle of a 256 MiB READ: getXferStatus fails
//      (NIXL_ERR_REMOTE_DISCONNECT) within the peer timeout, never hangs.
//
//   nixl_agent_test [--mem DRAM|VRAM|mixed] [--listener PORT]
//   (VRAM: both sides' buffers in GPU memory; mixed: I's in GPU, T's host)
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "nixl.h"

#include "tool_util.h"

namespace {

int g_fd = -1;
const char *g_role = "main";
uint64_t g_seed = 1;
std::string g_mem = "DRAM";
int g_port = 0;

} // namespace

void tool_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "[nixl_agent_test/%s] FAIL: ", g_role);
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, " (seed %" PRIu64 ", NIXL_TEST_SEED reproduces)\n", g_seed);
    va_end(ap);
    std::fflush(nullptr);
    _exit(1);
}

namespace {

#define CHECK(c, ...)               \
    do {                            \
        if (!(c)) tool_die(__VA_ARGS__); \
    } while (0)
#define NX(call)                                                                                        \
    do {                                                                                                \
        nixl_status_t st_ = (call);                                                                     \
        if (st_ != NIXL_SUCCESS) tool_die("%s returned %s", #call, nixlEnumStrings::statusStr(st_).c_str()); \
    } while (0)

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::printf("[nixl_agent_test/%s] ", g_role);
    std::vprintf(fmt, ap);
    std::printf("\n");
    std::fflush(stdout);
    va_end(ap);
}

// The bootstrap socket to the other process, and the shared helpers.
void put(const std::string &s) { tool::put(g_fd, s); }
std::string get() { return tool::get(g_fd); }
void expect(const std::string &want) { tool::expect(g_fd, want); }
using tool::Mem;
using tool::mem_alloc;
using tool::mem_fill;
using tool::mem_first_bad;
using tool::mix;

// ---------------------------------------------------------------- sides

constexpr size_t kRegion = 24u << 20, kBig = 256u << 20;
constexpr int kRegions = 3;

struct Side {
    nixlAgent *agent = nullptr;
    nixlBackendH *backend = nullptr;
    nixl_mem_t seg = DRAM_SEG;
    Mem regions[kRegions], big;
    nixl_opt_args_t opt;
    // the other side's regions and big region, as it told us
    uintptr_t peer_base[kRegions + 1] = {};
    nixl_mem_t peer_seg = DRAM_SEG;
};

nixl_reg_dlist_t reg_list(const Side &s, const Mem &m)
{
    nixl_reg_dlist_t l(s.seg);
    l.addDesc(nixlBlobDesc(m.addr(), m.size, 0, ""));
    return l;
}

// listen: run NIXL's listener thread on `port` (0: any; the side that
// fetches metadata needs the thread too, for NIXL's socket exchange).
void make_side(Side &s, const char *name, bool gpu, bool listen, int port)
{
    nixlAgentConfig cfg(true, listen, (uint16_t)port);
    s.agent = new nixlAgent(name, cfg);
    nixl_b_params_t params;
    NX(s.agent->createBackend("TCPX", params, s.backend));
    s.opt.backends.push_back(s.backend);
    s.seg = gpu ? VRAM_SEG : DRAM_SEG;
    for (Mem &r : s.regions) {
        mem_alloc(r, kRegion, gpu);
        NX(s.agent->registerMem(reg_list(s, r), &s.opt));
    }
    mem_alloc(s.big, kBig, gpu);
    NX(s.agent->registerMem(reg_list(s, s.big), &s.opt));
}

// Tell the other side where our regions are; learn where its are.
void swap_layouts(Side &s)
{
    char b[256];
    std::snprintf(b, sizeof b, "%d %" PRIuPTR " %" PRIuPTR " %" PRIuPTR " %" PRIuPTR, (int)s.seg, s.regions[0].addr(),
                  s.regions[1].addr(), s.regions[2].addr(), s.big.addr());
    put(b);
    std::string o = get();
    int seg = 0;
    CHECK(std::sscanf(o.c_str(), "%d %" SCNuPTR " %" SCNuPTR " %" SCNuPTR " %" SCNuPTR, &seg, &s.peer_base[0],
                      &s.peer_base[1], &s.peer_base[2], &s.peer_base[3]) == 5,
          "layout \"%s\"", o.c_str());
    s.peer_seg = (nixl_mem_t)seg;
}

// A list: blocks of random sizes in the three regions, the same on both
// sides (from the seed); I's and T's places independent.
struct Block {
    int lr, rr;
    size_t loff, roff, len;
    uint64_t seed;
};

std::vector<Block> plan(uint64_t salt, size_t n)
{
    std::vector<Block> v(n);
    size_t lcur[kRegions] = {}, rcur[kRegions] = {};
    size_t cap = n > 1000 ? 5000 : n > 100 ? 60000 : 1u << 20;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = mix(g_seed, salt * 1000003 + i);
        Block &b = v[i];
        b.len = 1 + (size_t)(r % cap);
        b.lr = (int)((r >> 20) % kRegions);
        b.rr = (int)((r >> 24) % kRegions);
        b.loff = lcur[b.lr] + (size_t)((r >> 28) % 512);
        b.roff = rcur[b.rr] + (size_t)((r >> 40) % 512);
        lcur[b.lr] = b.loff + b.len;
        rcur[b.rr] = b.roff + b.len;
        CHECK(lcur[b.lr] <= kRegion && rcur[b.rr] <= kRegion, "test bug: plan does not fit");
        b.seed = mix(g_seed, salt * 7777 + i);
    }
    return v;
}

// I's side of a list (local) and T's (remote), as I names them.
nixl_xfer_dlist_t local_descs(Side &s, const std::vector<Block> &v)
{
    nixl_xfer_dlist_t l(s.seg);
    for (const Block &b : v) l.addDesc(nixlBasicDesc(s.regions[b.lr].addr() + b.loff, b.len, 0));
    return l;
}

nixl_xfer_dlist_t remote_descs(Side &s, const std::vector<Block> &v)
{
    nixl_xfer_dlist_t l(s.peer_seg);
    for (const Block &b : v) l.addDesc(nixlBasicDesc(s.peer_base[b.rr] + b.roff, b.len, 0));
    return l;
}

void fill(Side &s, const std::vector<Block> &v, bool initiator, uint64_t salt)
{
    for (const Block &b : v)
        mem_fill(s.regions[initiator ? b.lr : b.rr], initiator ? b.loff : b.roff, b.len, b.seed ^ salt);
}

void check(Side &s, const std::vector<Block> &v, bool initiator, uint64_t salt, const char *what)
{
    for (size_t i = 0; i < v.size(); i++) {
        const Block &b = v[i];
        uint64_t bad = mem_first_bad(s.regions[initiator ? b.lr : b.rr], initiator ? b.loff : b.roff, b.len, b.seed ^ salt);
        CHECK(bad == UINT64_MAX, "%s: block %zu of %zu (%zu bytes) differs at byte %" PRIu64, what, i, v.size(), b.len,
              bad);
    }
}

nixl_status_t wait_xfer(nixlAgent *a, nixlXferReqH *req, int timeout_s)
{
    time_t end = time(nullptr) + timeout_s;
    nixl_status_t st;
    while ((st = a->getXferStatus(req)) == NIXL_IN_PROG)
        if (time(nullptr) > end) tool_die("transfer not done within %d s", timeout_s);
    return st;
}

// One transfer, waited for; its status.
nixl_status_t transfer(Side &s, nixl_xfer_op_t op, const nixl_xfer_dlist_t &l, const nixl_xfer_dlist_t &r,
                       const std::string *note)
{
    nixl_opt_args_t o = s.opt;
    if (note) {
        o.hasNotif = true;
        o.notifMsg = *note;
    }
    nixlXferReqH *req = nullptr;
    nixl_status_t st = s.agent->createXferReq(op, l, r, "T", req, &o);
    if (st != NIXL_SUCCESS) return st;
    st = s.agent->postXferReq(req);
    if (st == NIXL_IN_PROG) st = wait_xfer(s.agent, req, 120);
    NX(s.agent->releaseXferReq(req));
    return st;
}

// T: the next notification from I (getNotifs polled, bounded).
std::string next_notif(Side &t, std::vector<std::string> &pending)
{
    time_t end = time(nullptr) + 60;
    while (pending.empty()) {
        nixl_notifs_t n;
        NX(t.agent->getNotifs(n));
        for (auto &kv : n) {
            CHECK(kv.first == "I", "notification from \"%s\"", kv.first.c_str());
            for (auto &m : kv.second) pending.push_back(m);
        }
        CHECK(time(nullptr) < end, "no notification within 60 s");
        usleep(200);
    }
    std::string m = pending.front();
    pending.erase(pending.begin());
    return m;
}

const size_t kCounts[] = {1, 7, 300, 1000, 4096};

// ------------------------------------------------------------------ target

[[noreturn]] void run_target()
{
    g_role = "T";
    Side t;
    make_side(t, "T", g_mem == "VRAM", g_port != 0, g_port);
    std::vector<std::string> pending;
    nixl_blob_t md;
    NX(t.agent->getLocalMD(md));
    put(md);
    std::string imd = get(), name;
    NX(t.agent->loadRemoteMD(imd, name));
    CHECK(name == "I", "loaded \"%s\"", name.c_str());
    swap_layouts(t);
    put("ready");
    uint64_t salt = 10;
    for (size_t n : kCounts)
        for (int write = 1; write >= 0; write--, salt++) {
            std::vector<Block> v = plan(salt, n);
            if (write) {
                std::string note = next_notif(t, pending);
                CHECK(note == "w" + std::to_string(salt), "notification \"%s\" for write %" PRIu64, note.c_str(), salt);
                check(t, v, false, 0, "WRITE at the target");
            } else {
                fill(t, v, false, 0);
                put("filled");
                std::string note = next_notif(t, pending);
                CHECK(note.empty(), "READ's notification \"%s\", expected an empty one", note.c_str());
            }
        }
    say("lists checked");
    std::vector<Block> v = plan(500, 64);
    for (int k = 0; k < 2; k++) {
        std::string note = next_notif(t, pending);
        CHECK(note == "repost" + std::to_string(k), "repost notification \"%s\"", note.c_str());
        check(t, v, false, (uint64_t)k, "reposted WRITE");
        put("checked");
    }
    CHECK(next_notif(t, pending) == "gen-from-I", "genNotif from I");
    NX(t.agent->genNotif("I", "gen-from-T"));
    expect("released");
    NX(t.agent->deregisterMem(reg_list(t, t.regions[2]), &t.opt));
    put("deregistered");
    expect("refused");
    expect("reloaded");
    mem_fill(t.big, 0, kBig, 0xB16);
    put("ready to die " + std::to_string(getpid()));
    for (;;) pause(); // I kills T in here
}

// --------------------------------------------------------------- initiator

int run_initiator()
{
    g_role = "I";
    Side i;
    make_side(i, "I", g_mem != "DRAM", g_port != 0, 0);
    std::string tmd = get(), name;
    nixl_blob_t md;
    NX(i.agent->getLocalMD(md));
    put(md);
    NX(i.agent->loadRemoteMD(tmd, name));
    CHECK(name == "T", "loaded \"%s\"", name.c_str());
    swap_layouts(i);
    expect("ready");
    if (g_port) { // T's metadata again, through NIXL's own socket exchange
        NX(i.agent->invalidateRemoteMD("T"));
        nixl_opt_args_t o;
        o.ipAddr = "127.0.0.1";
        o.port = g_port;
        NX(i.agent->fetchRemoteMD("T", &o));
        nixl_xfer_dlist_t none(i.peer_seg);
        time_t end = time(nullptr) + 30;
        while (i.agent->checkRemoteMD("T", none) != NIXL_SUCCESS) {
            CHECK(time(nullptr) < end, "fetchRemoteMD: T's metadata did not come");
            usleep(1000);
        }
        say("T's metadata fetched from its listener");
    }
    // 2. lists
    uint64_t salt = 10;
    for (size_t n : kCounts)
        for (int write = 1; write >= 0; write--, salt++) {
            std::vector<Block> v = plan(salt, n);
            if (write) fill(i, v, true, 0);
            else expect("filled");
            std::string note; // (built by appends: "w" + to_string trips a false -Wrestrict in GCC 12)
            if (write) note.append("w").append(std::to_string(salt));
            nixl_status_t st = transfer(i, write ? NIXL_WRITE : NIXL_READ, local_descs(i, v), remote_descs(i, v), &note);
            CHECK(st == NIXL_SUCCESS, "%s of %zu descriptors: %s", write ? "WRITE" : "READ", n,
                  nixlEnumStrings::statusStr(st).c_str());
            if (!write) check(i, v, true, 0, "READ at the initiator");
        }
    say("WRITE and READ lists of 1..4096 descriptors: OK");
    // 3. a request posted twice, with new data and a new notification
    {
        std::vector<Block> v = plan(500, 64);
        nixl_opt_args_t o = i.opt;
        o.hasNotif = true;
        o.notifMsg = "repost0";
        nixlXferReqH *req = nullptr;
        fill(i, v, true, 0);
        NX(i.agent->createXferReq(NIXL_WRITE, local_descs(i, v), remote_descs(i, v), "T", req, &o));
        for (int k = 0; k < 2; k++) {
            if (k) fill(i, v, true, 1);
            nixl_opt_args_t po;
            po.hasNotif = true;
            po.notifMsg = "repost" + std::to_string(k);
            nixl_status_t st = i.agent->postXferReq(req, &po);
            if (st == NIXL_IN_PROG) st = wait_xfer(i.agent, req, 60);
            CHECK(st == NIXL_SUCCESS, "post %d of one request: %s", k, nixlEnumStrings::statusStr(st).c_str());
            expect("checked"); /* T has checked these bytes: the next post may change them */
        }
        NX(i.agent->releaseXferReq(req));
        NX(i.agent->genNotif("T", "gen-from-I"));
        nixl_notifs_t n;
        time_t end = time(nullptr) + 30;
        while (n["T"].empty()) {
            NX(i.agent->getNotifs(n));
            CHECK(time(nullptr) < end, "genNotif from T did not come");
            usleep(200);
        }
        CHECK(n["T"].size() == 1 && n["T"][0] == "gen-from-T", "genNotif from T: \"%s\"", n["T"][0].c_str());
        say("repost and genNotif: OK");
    }
    // 4. releaseXferReq of a 256 MiB WRITE in flight
    nixl_xfer_dlist_t big_l(i.seg), big_r(i.peer_seg);
    big_l.addDesc(nixlBasicDesc(i.big.addr(), kBig, 0));
    big_r.addDesc(nixlBasicDesc(i.peer_base[kRegions], kBig, 0));
    {
        nixlXferReqH *req = nullptr;
        NX(i.agent->createXferReq(NIXL_WRITE, big_l, big_r, "T", req, &i.opt));
        nixl_status_t st = i.agent->postXferReq(req);
        CHECK(st == NIXL_IN_PROG || st == NIXL_SUCCESS, "post of 256 MiB: %s", nixlEnumStrings::statusStr(st).c_str());
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        NX(i.agent->releaseXferReq(req));
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        CHECK(ms < 100, "releaseXferReq of a transfer in flight took %.1f ms", ms);
        put("released");
        say("releaseXferReq in flight: returned after %.2f ms", ms);
    }
    // 5. beyond the registration: the agent refuses; a region T deregistered: T refuses
    {
        nixl_xfer_dlist_t r(i.peer_seg);
        r.addDesc(nixlBasicDesc(i.peer_base[0] + kRegion - 10, 100, 0));
        nixl_xfer_dlist_t l(i.seg);
        l.addDesc(nixlBasicDesc(i.regions[0].addr(), 100, 0));
        nixl_status_t st = transfer(i, NIXL_WRITE, l, r, nullptr);
        CHECK(st != NIXL_SUCCESS && st != NIXL_IN_PROG, "a descriptor beyond T's registration was accepted");
        expect("deregistered");
        nixl_xfer_dlist_t r2(i.peer_seg);
        r2.addDesc(nixlBasicDesc(i.peer_base[2] + 4096, 5000, 0));
        nixl_xfer_dlist_t l2(i.seg);
        l2.addDesc(nixlBasicDesc(i.regions[0].addr(), 5000, 0));
        st = transfer(i, NIXL_WRITE, l2, r2, nullptr);
        CHECK(st == NIXL_ERR_INVALID_PARAM, "WRITE into a region T deregistered: %s, expected NIXL_ERR_INVALID_PARAM",
              nixlEnumStrings::statusStr(st).c_str());
        st = transfer(i, NIXL_READ, l2, r2, nullptr);
        CHECK(st == NIXL_ERR_INVALID_PARAM, "READ of a region T deregistered: %s", nixlEnumStrings::statusStr(st).c_str());
        std::vector<Block> ok = plan(601, 20);
        fill(i, ok, true, 5);
        for (Block &b : ok) b.rr = b.rr == 2 ? 0 : b.rr;
        st = transfer(i, NIXL_WRITE, local_descs(i, ok), remote_descs(i, ok), nullptr);
        CHECK(st == NIXL_SUCCESS, "WRITE after a refusal: %s", nixlEnumStrings::statusStr(st).c_str());
        put("refused");
        say("refusals: OK");
    }
    // 6. invalidateRemoteMD, then load T's metadata again
    {
        NX(i.agent->invalidateRemoteMD("T"));
        std::vector<Block> v = plan(700, 3);
        for (Block &b : v) b.rr = 0;
        nixl_status_t st = transfer(i, NIXL_WRITE, local_descs(i, v), remote_descs(i, v), nullptr);
        CHECK(st != NIXL_SUCCESS && st != NIXL_IN_PROG, "a WRITE to an invalidated agent was accepted");
        std::string name2;
        NX(i.agent->loadRemoteMD(tmd, name2));
        st = transfer(i, NIXL_WRITE, local_descs(i, v), remote_descs(i, v), nullptr);
        CHECK(st == NIXL_SUCCESS, "WRITE after reloading T's metadata: %s", nixlEnumStrings::statusStr(st).c_str());
        put("reloaded");
        say("invalidate and reload: OK");
    }
    // 7. T killed mid-READ
    {
        std::string w = get();
        pid_t tpid = 0;
        CHECK(std::sscanf(w.c_str(), "ready to die %d", &tpid) == 1 && tpid > 0, "bootstrap: \"%s\"", w.c_str());
        nixlXferReqH *req = nullptr;
        NX(i.agent->createXferReq(NIXL_READ, big_l, big_r, "T", req, &i.opt));
        nixl_status_t st = i.agent->postXferReq(req);
        CHECK(st == NIXL_IN_PROG, "READ of 256 MiB: %s", nixlEnumStrings::statusStr(st).c_str());
        usleep(5000); /* bytes are moving */
        CHECK(kill(tpid, SIGKILL) == 0, "kill T");
        time_t t0 = time(nullptr);
        while ((st = i.agent->getXferStatus(req)) == NIXL_IN_PROG) {
            CHECK(time(nullptr) - t0 < 30, "READ from a killed target still in progress after 30 s");
            usleep(1000);
        }
        CHECK(st == NIXL_ERR_REMOTE_DISCONNECT, "READ from a killed target: %s, expected NIXL_ERR_REMOTE_DISCONNECT",
              nixlEnumStrings::statusStr(st).c_str());
        NX(i.agent->releaseXferReq(req));
        say("target killed mid-READ: NIXL_ERR_REMOTE_DISCONNECT after %ld s", (long)(time(nullptr) - t0));
    }
    for (Mem &r : i.regions) NX(i.agent->deregisterMem(reg_list(i, r), &i.opt));
    NX(i.agent->deregisterMem(reg_list(i, i.big), &i.opt));
    delete i.agent;
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        if (!std::strcmp(argv[k], "--mem") && k + 1 < argc) g_mem = argv[++k];
        else if (!std::strcmp(argv[k], "--listener") && k + 1 < argc) g_port = std::atoi(argv[++k]);
        else {
            std::fprintf(stderr, "usage: nixl_agent_test [--mem DRAM|VRAM|mixed] [--listener PORT]\n");
            return 2;
        }
    }
    if (g_mem != "DRAM") { // GPU memory: skip where there is none (asked in a child: CUDA and fork)
        pid_t p = fork();
        if (p == 0) {
            int n = 0;
            _exit(tcpx_gpu_device_count(&n) == TCPX_OK && n > 0 ? 0 : 77);
        }
        int stw = 0;
        waitpid(p, &stw, 0);
        if (!WIFEXITED(stw) || WEXITSTATUS(stw) != 0) {
            std::printf("SKIP: --mem %s needs a CUDA device\n", g_mem.c_str());
            return 77;
        }
    }
    const char *seed = std::getenv("NIXL_TEST_SEED");
    g_seed = seed ? std::strtoull(seed, nullptr, 0) : (uint64_t)time(nullptr) ^ ((uint64_t)getpid() << 20);
    std::printf("[nixl_agent_test/main] seed %" PRIu64 ", memory %s%s\n", g_seed, g_mem.c_str(),
                g_port ? ", T listens for metadata" : "");
    setenv("TCPX_BIND_ADDR", "127.0.0.1", 1);
    setenv("TCPX_PEER_TIMEOUT_MS", "5000", 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) tool_die("socketpair");
    pid_t t = fork();
    if (t == 0) {
        close(sv[0]);
        g_fd = sv[1];
        run_target();
    }
    pid_t i = fork();
    if (i == 0) {
        close(sv[1]);
        g_fd = sv[0];
        _exit(run_initiator());
    }
    // The supervisor: I must exit 0, T must die of the SIGKILL I sends it;
    // a watchdog bounds the whole run.
    close(sv[0]);
    close(sv[1]);
    signal(SIGALRM, [](int) {
        std::fprintf(stderr, "[nixl_agent_test/main] FAIL: not done within 300 s\n");
        kill(0, SIGKILL);
    });
    alarm(300);
    int si = 0, stt = 0;
    waitpid(i, &si, 0);
    if (!WIFEXITED(si) || WEXITSTATUS(si) != 0) {
        kill(t, SIGKILL);
        waitpid(t, &stt, 0);
        std::fprintf(stderr, "[nixl_agent_test/main] FAIL: the initiator %s %d\n",
                     WIFSIGNALED(si) ? "died of signal" : "exited with", WIFSIGNALED(si) ? WTERMSIG(si) : WEXITSTATUS(si));
        return 1;
    }
    waitpid(t, &stt, 0);
    if (!WIFSIGNALED(stt) || WTERMSIG(stt) != SIGKILL) {
        std::fprintf(stderr, "[nixl_agent_test/main] FAIL: the target ended otherwise than killed\n");
        return 1;
    }
    std::printf("[nixl_agent_test/main] PASS\n");
    return 0;
}
